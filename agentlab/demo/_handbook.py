"""The support handbook: how a ticket must be handled, given what it is and the support
the customer's plan includes.

It is the one statement of the rules. The scripted policy applies it to what its tools
returned; the outcome check applies it to the ground truth. So a run goes wrong only when
the data the agent saw was wrong, which is the point of the demo.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems import Category, Entitlement, Priority

__all__ = ["HANDBOOK", "Handling", "handling"]

HANDBOOK = """\
Support handbook.
1. An outage or a bug gets an issue: in ENG when the customer's plan includes engineering
   escalation, otherwise in the SUP backlog. A question gets no issue.
2. Priority follows the response SLA of the plan. Outage: urgent within 1 hour, high
   within 8 hours, otherwise normal. Bug: high within 8 hours, otherwise normal.
   Question: low on a 24-hour SLA, otherwise normal.
3. The reply quotes the customer's support tier and response time, and the issue key."""


class Handling(BaseModel):
    """What the handbook requires for a ticket: where its issue goes and its priority."""

    model_config = ConfigDict(frozen=True)

    open_issue: bool
    project: str | None
    priority: Priority


def _priority(category: Category, sla_hours: int) -> Priority:
    if category == "outage":
        return "urgent" if sla_hours <= 1 else "high" if sla_hours <= 8 else "normal"
    if category == "bug":
        return "high" if sla_hours <= 8 else "normal"
    return "low" if sla_hours >= 24 else "normal"


def handling(category: Category, entitlement: Entitlement) -> Handling:
    """The handling the handbook requires for a ``category`` ticket under ``entitlement``."""
    open_issue = category in ("outage", "bug")
    project = ("ENG" if entitlement.engineering_escalation else "SUP") if open_issue else None
    return Handling(open_issue=open_issue, project=project,
                    priority=_priority(category, entitlement.sla_hours))
