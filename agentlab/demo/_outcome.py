"""The outcome check: did the run's actions do what the ground truth requires?

It looks past everything the agent saw: it reads the account's true, current record from
the CRM, applies the handbook to it, and compares with what the run's actions did, as the
systems acknowledged them (the issue the tracker opened, the priority the helpdesk set, the
draft it saved). Judging the acknowledgements rather than re-reading the systems means a
replay whose side effects were answered by stubs is judged the same way as the live run.
The score is the share of checks passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentlab.demo._handbook import Handling, handling
from agentlab.demo.systems import Category, Entitlement, Systems, Ticket

__all__ = ["Check", "OutcomeReport", "Truth", "check_outcome", "truth_of"]


class Check(BaseModel):
    """One comparison of what the run did with what it should have done."""

    model_config = ConfigDict(frozen=True)

    name: str
    expected: str | None
    actual: str | None
    ok: bool


class OutcomeReport(BaseModel):
    """All checks of a run, with the overall success and score."""

    model_config = ConfigDict(frozen=True)

    checks: list[Check]
    success: bool
    score: float

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]


class Truth(BaseModel):
    """What is really the case for a ticket, and the handling the handbook requires for it."""

    model_config = ConfigDict(frozen=True)

    ticket: Ticket
    category: Category
    account_name: str
    plan: str
    entitlement: Entitlement
    required: Handling


def truth_of(systems: Systems, ticket_id: str) -> Truth:
    """The ticket as it is now, its account's true plan (from the CRM) and what the handbook
    requires: what the outcome check and the support lead judge the agent against."""
    ticket = systems.helpdesk.ticket(ticket_id, auth=systems.bearer("helpdesk"))
    account = systems.crm.get(ticket.account_id)
    entitlement = systems.entitlements.lookup(account.plan, auth=systems.bearer("crm"))
    category = systems.categories[ticket_id]
    return Truth(ticket=ticket, category=category, account_name=account.name,
                 plan=account.plan, entitlement=entitlement,
                 required=handling(category, entitlement))


def _check(name: str, expected: str | None, actual: str | None) -> Check:
    return Check(name=name, expected=expected, actual=actual, ok=expected == actual)


def _quote(name: str, phrase: str, body: str | None) -> Check:
    found = phrase if body is not None and phrase in body else None
    return Check(name=name, expected=phrase, actual=found, ok=found is not None)


def check_outcome(systems: Systems, ticket_id: str, done: Mapping[str, Any]) -> OutcomeReport:
    """Compare what the run did to the ticket with the handbook applied to the truth.

    ``done`` holds the acknowledgements of the run's actions, as the run state keeps them:
    ``issue`` (the issue opened, or None), ``priority`` (the ticket's priority after the
    run) and ``reply`` (the draft's ``body`` and ``draft_version``, None when unsaved).
    """
    truth = truth_of(systems, ticket_id)
    entitlement, required = truth.entitlement, truth.required
    issue = done.get("issue")
    reply = done.get("reply") or {}
    body = reply.get("body") if reply.get("draft_version") is not None else None
    checks = [
        _quote("reply quotes the support tier", f"{entitlement.tier} support", body),
        _quote("reply quotes the response time", f"{entitlement.sla_hours}-hour response", body),
        _check("issue project", required.project, issue["project"] if issue else None),
        _check("ticket priority", required.priority, done.get("priority")),
    ]
    passed = sum(c.ok for c in checks)
    return OutcomeReport(checks=checks, success=passed == len(checks),
                         score=round(passed / len(checks), 4))
