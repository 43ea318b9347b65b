"""A deterministic scripted model standing in for an LLM (no network).

:func:`scripted_model` is an :func:`agentlab.llm` model call like a real one: it reads
its instruction (the system message) and the exact context it decides on (the user
message, JSON) and answers with a decision, its token counts estimated as
``len(text) // 4``. So every decision is recorded as a model call a replay can serve, and
is a pure function of what the agent's tools returned: a stale account record produces a
wrong decision through the data alone; the model has no notion of "good" or "bad" runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

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
from agentlab.record import ModelReply, llm

__all__ = [
    "MODEL",
    "Classification",
    "Decision",
    "ModelPace",
    "Reply",
    "ScriptedPolicy",
    "scripted_model",
]

MODEL = "scripted-policy"

ModelPace = Callable[[int, int], None]
"""Told the input and output tokens of a model call while it is being answered."""

_pace: ContextVar[ModelPace | None] = ContextVar("agentlab_demo_model_pace", default=None)

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


@llm(model=MODEL, provider="local")
def scripted_model(messages: list[dict[str, Any]]) -> ModelReply:
    """Answer one request the way a model would, from the messages alone: classify the
    ticket, decide its handling from the handbook, or draft the reply."""
    instruction = str(messages[0]["content"])
    prompt = str(messages[1]["content"])
    context = json.loads(prompt)
    ticket = Ticket.model_validate(context["ticket"])
    decision: BaseModel
    if instruction == _CLASSIFY:
        decision = classify_ticket(ticket)
    elif instruction == HANDBOOK:
        decision = decide_handling(Classification.model_validate(context["classification"]),
                                   AccountLookup.model_validate(context["account"]),
                                   Entitlement.model_validate(context["entitlement"]))
    elif instruction == _REPLY:
        issue = context.get("issue")
        decision = compose_reply(ticket, AccountLookup.model_validate(context["account"]),
                                 Entitlement.model_validate(context["entitlement"]),
                                 Decision.model_validate(context["decision"]),
                                 Issue.model_validate(issue) if issue is not None else None)
    else:
        raise ValueError(f"the scripted model has no instruction {instruction[:40]!r}")
    response = decision.model_dump(mode="json")
    answer = json.dumps(response, sort_keys=True)
    input_tokens, output_tokens = (len(instruction) + len(prompt)) // 4, len(answer) // 4
    pace = _pace.get()
    if pace is not None:
        pace(input_tokens, output_tokens)
    return ModelReply(response, input_tokens=input_tokens, output_tokens=output_tokens)


class ScriptedPolicy:
    """The agent's decisions, each asked of the scripted model (a recorded model call);
    ``pace`` is told each call's token counts while it is answered."""

    def __init__(self, *, pace: ModelPace | None = None) -> None:
        self._pace = pace

    def classify(self, ticket: Ticket) -> Classification:
        return Classification.model_validate(self._ask(_CLASSIFY, {"ticket": ticket}))

    def decide(self, ticket: Ticket, classification: Classification, account: AccountLookup,
               entitlement: Entitlement) -> Decision:
        return Decision.model_validate(self._ask(HANDBOOK, {
            "ticket": ticket, "classification": classification, "account": account,
            "entitlement": entitlement}))

    def reply(self, ticket: Ticket, account: AccountLookup, entitlement: Entitlement,
              decision: Decision, issue: Issue | None) -> Reply:
        return Reply.model_validate(self._ask(_REPLY, {
            "ticket": ticket, "account": account, "entitlement": entitlement,
            "decision": decision, "issue": issue}))

    def _ask(self, instructions: str, context: Mapping[str, BaseModel | None]) -> Any:
        data = {k: v.model_dump(mode="json") if v is not None else None
                for k, v in context.items()}
        token = _pace.set(self._pace)
        try:
            return scripted_model([{"role": "system", "content": instructions},
                                   {"role": "user",
                                    "content": json.dumps(data, sort_keys=True)}])
        finally:
            _pace.reset(token)
