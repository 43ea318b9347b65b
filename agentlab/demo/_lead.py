"""Dana, the support lead, scripted: who answers the demo's approval requests when no human
is asked to (``agentlab demo --auto-approve``, or :func:`~agentlab.demo.run_demo` by default).

She judges a request by what is true, not by what the agent saw: the account's current
plan in the CRM, what the ticket really is, and the handbook applied to both.

- ``create_issue``: approved when project and priority are what the handbook requires;
  otherwise she *edits* them to what it requires (an override); an issue for a ticket that
  needs none is rejected.
- ``set_priority``: a drop below what the handbook requires is *rejected*; else approved.
- a rollback's undo (``undo:...``): approved; she asked for the rollback.
- anything else (the reply draft, while drafting): approved; a draft is read again before
  it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentlab.approval import ApprovalManager
from agentlab.demo._names import LEAD
from agentlab.demo._outcome import Truth, truth_of
from agentlab.demo.systems import PRIORITY_RANK, Systems
from agentlab.model import ApprovalRequest

__all__ = ["CHANNEL", "ScriptedLead"]

CHANNEL = "demo"
"""The channel the scripted lead's decisions are recorded under."""


class ScriptedLead:
    """An :class:`~agentlab.approval.Approver` deciding at once, as the support lead would.

    ``systems`` are the run's systems, where she looks the truth up; ``out`` is told each
    decision. ``checks=False`` is an approver in a hurry (an on-call engineer at night): the
    request is approved as shown, so whatever the agent got wrong goes through.
    """

    def __init__(self, systems: Systems, *, out: Callable[[str], None] | None = None,
                 by: str = LEAD, checks: bool = True) -> None:
        self._systems = systems
        self._out = out
        self.by = by
        self.checks = checks

    def __repr__(self) -> str:
        return f"ScriptedLead(by={self.by!r}, checks={self.checks})"

    def __call__(self, request: ApprovalRequest, manager: ApprovalManager) -> None:
        args = request.arguments
        if not self.checks:
            self._say(request, "approves", "as shown")
            manager.approve(request.id, by=self.by, channel=CHANNEL,
                            reason="looks right as shown")
            return
        if request.tool.startswith("undo:"):
            self._say(request, "approves", "")
            manager.approve(request.id, by=self.by, channel=CHANNEL,
                            reason="undoing what the rolled-back run did")
            return
        truth = truth_of(self._systems, str(args["ticket_id"]))
        if request.tool == "create_issue":
            self._issue(request, manager, args, truth)
        elif request.tool == "set_priority":
            self._priority(request, manager, args, truth)
        else:
            self._say(request, "approves", "")
            manager.approve(request.id, by=self.by, channel=CHANNEL,
                            reason="a draft only: it is read again before it is sent")

    def _issue(self, request: ApprovalRequest, manager: ApprovalManager, args: dict[str, Any],
               truth: Truth) -> None:
        required = truth.required
        if not required.open_issue:
            reason = f"{truth.ticket.ticket_id} needs no issue: the handbook files none for it"
            self._say(request, "rejects", "")
            manager.reject(request.id, by=self.by, channel=CHANNEL, reason=reason)
            return
        if (args["project"], args["priority"]) == (required.project, required.priority):
            self._say(request, "approves", "")
            manager.approve(request.id, by=self.by, channel=CHANNEL,
                            reason="project and priority follow the handbook")
            return
        e = truth.entitlement
        facts = (f"{truth.account_name} is on the {truth.plan} plan ({e.tier} support, "
                 f"{e.sla_hours}h response)")
        edited = {**args, "project": required.project, "priority": required.priority,
                  "description": f"{args['description']}\n\nCorrected by {self.by}: {facts}."}
        change = (f"project {args['project']} -> {required.project}, "
                  f"priority {args['priority']} -> {required.priority}")
        self._say(request, "edits", change)
        manager.edit(request.id, edited, by=self.by, channel=CHANNEL,
                     reason=f"{facts}: the handbook sends this to {required.project} at "
                     f"{required.priority}")

    def _priority(self, request: ApprovalRequest, manager: ApprovalManager,
                  args: dict[str, Any], truth: Truth) -> None:
        required = truth.required.priority
        if PRIORITY_RANK[args["priority"]] < PRIORITY_RANK[required]:
            reason = (f"{truth.ticket.ticket_id} is an {truth.category} for "
                      f"{truth.account_name} ({truth.plan} plan): it stays at least "
                      f"{required}, not {args['priority']}")
            self._say(request, "rejects", "")
            manager.reject(request.id, by=self.by, channel=CHANNEL, reason=reason)
            return
        self._say(request, "approves", "")
        manager.approve(request.id, by=self.by, channel=CHANNEL,
                        reason="the new priority follows the handbook")

    def _say(self, request: ApprovalRequest, verb: str, detail: str) -> None:
        if self._out is not None:
            self._out(f"    {self.by} {verb} {request.tool} ({request.rule})"
                      + (f": {detail}" if detail else ""))
