"""The demo's story: three governed runs, recorded side by side so they can be compared.

1. The good run: ticket T-1001 with fresh account data; the support lead approves the Jira
   issue and the reply draft; it succeeds.
2. The bad run: T-1001 again, but the account cache serves Acme's record from before its
   upgrade. The lead *edits* the issue the agent files (SUP/normal to ENG/urgent, an
   override), yet the stale record still shapes the ticket's priority and the reply: the
   outcome check fails it, and the stale lookup is where it parts from the good run.
3. The rejected run: T-1004 reads like a question, so the agent tries to lower its
   priority; the lead *rejects* that (a denied call), and the run fails for the issue it
   never filed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from agentlab.approval import ApprovalManager, Approver, announce
from agentlab.demo._agent import APPROVAL_WAIT, DEMO_TICKET, run_triage
from agentlab.demo.systems import Scenario
from agentlab.model import ApprovalRequest
from agentlab.store import RunStore

__all__ = ["REJECTED_TICKET", "DemoResult", "run_demo", "waiting_approver"]

REJECTED_TICKET = "T-1004"

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The ids of the three runs :func:`run_demo` recorded."""

    good_run_id: str
    bad_run_id: str
    """The stale-cache run, whose Jira issue the lead edited."""
    rejected_run_id: str
    """The run whose priority drop the lead rejected."""

    @property
    def run_ids(self) -> tuple[str, str, str]:
        return (self.good_run_id, self.bad_run_id, self.rejected_run_id)


def waiting_approver(say: Say, *, answer_hint: str = "",
                     wait: timedelta = APPROVAL_WAIT) -> Approver:
    """An approver that shows each request and leaves the decision to a human elsewhere
    (the CLI, a notebook); the run waits for it up to ``wait``. ``answer_hint`` is added
    to the command shown (e.g. ``" --store demo.db"``)."""
    minutes = f"{wait.total_seconds() / 60:g} minutes"

    def ask(request: ApprovalRequest, manager: ApprovalManager) -> None:
        say(f"  approval {request.id} needed: {request.tool}({request.arguments}) "
            f"(rule {request.rule})")
        say(f"    answer from another terminal within {minutes}: agentlab approve "
            f"{request.id} --as NAME{answer_hint}   (or reject / edit)")
        announce(request, manager)

    return ask


def run_demo(
    store: RunStore,
    *,
    out: Say | None = None,
    approver: Approver | None = None,
    approval_timeout: timedelta = APPROVAL_WAIT,
) -> DemoResult:
    """Record the good, the bad (stale cache, edited) and the rejected run; their ids.

    The good and bad runs share the task id ``ticket:T-1001``. Approval requests go to
    ``approver`` (default: the scripted support lead, who decides at once; pass
    :func:`waiting_approver` to let a human decide); undecided after ``approval_timeout``,
    a call is refused.

    >>> result = run_demo(open_store("demo.db"), out=print)   # doctest: +SKIP
    """
    say = out or (lambda line: None)

    def triage(scenario: Scenario, ticket_id: str) -> str:
        return run_triage(store, scenario=scenario, ticket_id=ticket_id, out=out,
                          approver=approver, approval_timeout=approval_timeout)

    say("Good run: the cache entry was invalidated by Acme's upgrade; the lookup reads the CRM.")
    good = triage("fresh", DEMO_TICKET)
    say("Bad run: the cache still holds Acme's record from before the upgrade and serves it.")
    bad = triage("stale", DEMO_TICKET)
    say(f"Rejected run: {REJECTED_TICKET} reads like a question, so the agent wants to lower "
        "its priority.")
    rejected = triage("fresh", REJECTED_TICKET)
    return DemoResult(good_run_id=good, bad_run_id=bad, rejected_run_id=rejected)
