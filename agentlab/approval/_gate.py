"""The gate a call passes through when its policy asks for a human: ask, wait, check, claim.

Fail closed everywhere: no approver, an approver that raises, expiry, a decision that is not
authentic, made by someone who may not decide (the agent itself, a revoked approver, one the
rule does not name, a keyed approver without their valid signature), not bound to this exact
call, or already consumed: all refuse the call with the reason recorded. The decider is
judged here, where the call runs, and not only where the decision was made: a process that
holds agentlab's signing key can write a decision row with a valid MAC, but not an approver's
signature.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from agentlab.approval._manager import ApprovalManager, binding_for
from agentlab.identity import default_redactor, scrubbed_logger
from agentlab.model import ApprovalRequest, Denial, Phase

__all__ = ["Approver", "GateResult", "announce", "auto_approve", "pass_through_gate"]

log = scrubbed_logger("agentlab.approval")


class Approver(Protocol):
    """A front end told about a new request. It may decide at once through the manager
    (a script, a console prompt) or return and let the decision come from elsewhere (a
    widget, the CLI, another process); the agent then waits for it."""

    def __call__(self, request: ApprovalRequest, manager: ApprovalManager) -> None: ...


def announce(request: ApprovalRequest, manager: ApprovalManager) -> None:
    """An approver that only says where to answer: the CLI, a notebook, the Python API."""
    import shlex

    where = default_redactor().scrub_text(str(manager.store.url))
    log.warning(
        "agentlab: %s waits for approval %s (rule %s); answer with "
        "`agentlab approve %s --as NAME --store %s` (or reject / edit)",
        request.tool, request.id, request.rule, request.id, shlex.quote(where),
    )


def auto_approve(by: str = "auto-approver") -> Approver:
    """An approver that approves everything at once (tests, demos; channel ``auto``)."""

    def approve(request: ApprovalRequest, manager: ApprovalManager) -> None:
        manager.approve(request.id, by=by, channel="auto", reason="approved automatically")

    return approve


@dataclass(frozen=True, slots=True)
class GateResult:
    """How the gate ended: the request (if one was made), a denial, and the arguments to
    run with when the approver edited them."""

    request: ApprovalRequest | None
    denial: Denial | None
    edited: dict[str, Any] | None = None
    reclaimed: bool = False
    """The decision was consumed by the run's earlier process (which then died) and is
    used again: that process may have recorded it already."""


def _reclaimable(req: ApprovalRequest, consumer: str, before_us: int | None) -> bool:
    if before_us is None or req.consumed_by != consumer or req.consumed_at is None:
        return False
    return int(req.consumed_at.timestamp() * 1_000_000) < before_us


def pass_through_gate(
    manager: ApprovalManager,
    approver: Approver | None,
    *,
    run_id: str,
    call_key: str,
    tool: str,
    arguments: Mapping[str, Any],
    current_arguments: Callable[[], Mapping[str, Any]],
    grant: str | None,
    scope: str | None,
    rule: str,
    phase: Phase | None,
    timeout: timedelta,
    consumer: str,
    approvers: Sequence[str] | None = None,
    reclaim_before_us: int | None = None,
) -> GateResult:
    """Ask for approval of one call and wait; see the module docstring for the checks.

    ``current_arguments`` re-reads the call's arguments just before the decision is used,
    so an argument object mutated after approval no longer matches its binding.
    ``reclaim_before_us`` lets a resumed run use a decision that its own earlier process
    consumed before this one took the run up (at that time) and then died before the call
    ran: the caller passes it only when the run has no intent for the call, so the
    decision has run nothing yet. A decision consumed later, by a concurrent resumer, is
    never taken twice.
    """
    req = manager.request(run_id=run_id, call_key=call_key, tool=tool, arguments=arguments,
                          grant=grant, scope=scope, rule=rule, phase=phase, timeout=timeout,
                          approvers=approvers)

    def deny(code: Any, reason: str, *, withdraw: bool = False) -> GateResult:
        if withdraw:
            manager.withdraw(req.id, reason)
        return GateResult(manager.get(req.id), Denial(code=code, reason=reason, rule=rule,
                                                      grant=grant))

    if req.status == "pending":
        if approver is None:
            return deny("no_approver", f"{tool} needs approval (rule {rule}) and the run has "
                        "no approver; pass approver= to record_run", withdraw=True)
        try:
            approver(req, manager)
        except Exception as exc:
            return deny("approver_error", f"the approver raised {type(exc).__name__}: {exc}",
                        withdraw=True)
        try:
            req = manager.wait(req.id)
        except BaseException:
            # Interrupted (Ctrl-C, a cancelled task): nobody will run this call now, so the
            # request must not stay answerable.
            manager.withdraw(req.id, "the waiting run was interrupted")
            raise
    if req.status == "expired":
        return deny("approval_expired", f"no decision on approval {req.id} before it expired "
                    f"at {req.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    if req.status == "rejected":
        return GateResult(req, Denial(code="rejected", rule=rule, grant=grant,
                                      reason=f"rejected by {req.decided_by} via {req.channel}: "
                                      f"{req.reason}"))
    if not manager.authentic(req):
        return deny("binding", f"approval {req.id} does not carry agentlab's MAC (written "
                    "by hand?); not honoured")
    problem = manager.decision_problem(req)
    if problem is not None:
        return deny("decider", problem)
    now = binding_for(run_id, req.call_key, tool, current_arguments(), grant,
                      int(req.expires_at.timestamp() * 1_000_000))
    if not hmac.compare_digest(now, req.binding):
        return deny("binding", f"the call no longer matches what approval {req.id} was "
                    "given for (tool, arguments, grant or run changed); not run")
    reclaimed = False
    if not manager.consume(req.id, by=consumer):
        if not _reclaimable(manager.get(req.id), consumer, reclaim_before_us):
            return deny("consumed", f"approval {req.id} was already used by "
                        f"{manager.get(req.id).consumed_by}; a decision runs its call once")
        reclaimed = True
    return GateResult(manager.get(req.id), None,
                      dict(req.edited_arguments) if req.status == "edited" and
                      req.edited_arguments is not None else None, reclaimed)
