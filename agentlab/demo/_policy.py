"""A deterministic scripted policy standing in for the model (no network, no LLM).

Each decision is a pure function of the data the agent's tools returned, and is recorded
as an LLM call of model ``scripted-policy``: the messages carry the instructions and the
exact context it decided on, the response carries the decision, and token counts are
estimated as ``len(text) // 4``. A stale account record therefore produces a wrong
decision through the data alone; the policy has no notion of "good" or "bad" runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from agentlab.demo._handbook import HANDBOOK, handling
from agentlab.demo.systems import (
    AccountLookup,
    Category,
    Entitlement,
    Issue,
    Priority,
    Ticket,
)
from agentlab.record import RunRecorder

__all__ = ["MODEL", "Classification", "Decision", "Reply", "ScriptedPolicy"]

MODEL = "scripted-policy"

_CLASSIFY = "Classify the support ticket as outage, bug or question; cite the signals."
_REPLY = ("Draft the reply to the customer: quote their support tier and response time, "
          "and the issue key.")

# Word-bounded, so "download" is not "down".
_SIGNALS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("outage", (r"outage", r"down", r"5\d\d", r"unavailable", r"all requests")),
    ("bug", (r"bug", r"out of order", r"wrong", r"incorrect")),
)


class Classification(BaseModel):
    """What kind of ticket it is, and the words that said so."""

    model_config = ConfigDict(frozen=True)

    category: Category
    signals: list[str]


class Decision(BaseModel):
    """How to handle the ticket, and why."""

    model_config = ConfigDict(frozen=True)

    open_issue: bool
    project: str | None
    priority: Priority
    rationale: str


class Reply(BaseModel):
    """The reply text and the entitlement facts it quotes."""

    model_config = ConfigDict(frozen=True)

    body: str
    plan: str
    tier: str
    sla_hours: int
    issue_key: str | None


def classify_ticket(ticket: Ticket) -> Classification:
    """The category of the first signal group that matches the ticket's text."""
    text = f"{ticket.subject}\n{ticket.body}".lower()
    for category, patterns in _SIGNALS:
        found = [m.group(0) for p in patterns for m in re.finditer(rf"\b{p}\b", text)]
        if found:
            return Classification(category=category, signals=sorted(set(found)))
    return Classification(category="question", signals=[])


def decide_handling(classification: Classification, account: AccountLookup,
                    entitlement: Entitlement) -> Decision:
    """Apply the handbook to the account and entitlement the tools returned."""
    rule = handling(classification.category, entitlement)
    escalation = "included" if entitlement.engineering_escalation else "not included"
    target = f"issue in {rule.project}" if rule.project else "no issue"
    rationale = (
        f"{account.name} is on the {account.plan} plan ({entitlement.tier} support, "
        f"{entitlement.sla_hours}h response, engineering escalation {escalation}); "
        f"{classification.category} ticket: {target}, priority {rule.priority}."
    )
    return Decision(open_issue=rule.open_issue, project=rule.project, priority=rule.priority,
                    rationale=rationale)


def _hours(n: int) -> str:
    return "1 hour" if n == 1 else f"{n} hours"


def compose_reply(ticket: Ticket, account: AccountLookup, entitlement: Entitlement,
                  decision: Decision, issue: Issue | None) -> Reply:
    """The reply draft, quoting the entitlement of the plan the account lookup returned."""
    first_name = ticket.requester.split()[0]
    plan = (f"Your {account.name} account is on our {entitlement.plan.title()} plan, which "
            f"includes {entitlement.tier} support with a {entitlement.sla_hours}-hour "
            f"response time ({entitlement.coverage}).")
    within = _hours(entitlement.sla_hours)
    if issue is not None and issue.project == "ENG":
        action = (f"We have escalated this to our engineering on-call team as {issue.key} "
                  f"with {decision.priority} priority; you will hear from us within {within}.")
    elif issue is not None:
        action = (f"We have logged this with our support team as {issue.key}; you will hear "
                  f"from us within {within}.")
    else:
        action = f"A support specialist will follow up within {within}."
    body = (f"Hi {first_name},\n\nThank you for reporting \"{ticket.subject}\". {plan} "
            f"{action}\n\nBest regards,\nCustomer Support")
    return Reply(body=body, plan=entitlement.plan, tier=entitlement.tier,
                 sla_hours=entitlement.sla_hours,
                 issue_key=issue.key if issue is not None else None)


class ScriptedPolicy:
    """The scripted "model" of one run: every decision is recorded as an LLM call."""

    def __init__(self, run: RunRecorder) -> None:
        self._run = run

    def classify(self, ticket: Ticket) -> Classification:
        decision = classify_ticket(ticket)
        self._record(_CLASSIFY, {"ticket": ticket}, decision)
        return decision

    def decide(self, ticket: Ticket, classification: Classification, account: AccountLookup,
               entitlement: Entitlement) -> Decision:
        decision = decide_handling(classification, account, entitlement)
        self._record(HANDBOOK, {"ticket": ticket, "classification": classification,
                                "account": account, "entitlement": entitlement}, decision)
        return decision

    def reply(self, ticket: Ticket, account: AccountLookup, entitlement: Entitlement,
              decision: Decision, issue: Issue | None) -> Reply:
        reply = compose_reply(ticket, account, entitlement, decision, issue)
        self._record(_REPLY, {"ticket": ticket, "account": account, "entitlement": entitlement,
                              "decision": decision, "issue": issue}, reply)
        return reply

    def _record(self, instructions: str, context: Mapping[str, BaseModel | None],
                decision: BaseModel) -> None:
        data = {k: v.model_dump(mode="json") if v is not None else None
                for k, v in context.items()}
        prompt = json.dumps(data, sort_keys=True)
        response = decision.model_dump(mode="json")
        answer = json.dumps(response, sort_keys=True)
        self._run.llm_call(
            MODEL,
            messages=[{"role": "system", "content": instructions},
                      {"role": "user", "content": prompt}],
            response=response,
            input_tokens=(len(instructions) + len(prompt)) // 4,
            output_tokens=len(answer) // 4,
        )
