"""Approvals of a pydantic-ai agent's tool calls as pydantic-ai deferred tools (for the
pydantic-ai adapter, :mod:`agentlab.integrations.pydantic_ai`, which re-exports the public
names).

A call that needs a person's approval (an agentlab policy rule ``approve``, or a tool
pydantic-ai marks ``requires_approval=True``) asks through agentlab's gate, keyed on the
model's tool-call id. With :func:`defer_approval` as the run's approver, a call of a
governed toolset does not wait for the decision: it raises pydantic-ai's
``ApprovalRequired``, so the agent's run ends with ``DeferredToolRequests`` (each call's
metadata names its agentlab request) and the recorded run can be paused
(``run.pause(...)``). The decision is taken through agentlab (CLI, widget, API); the agent
then goes on either way pydantic-ai offers:

- in a new process, ``record_run(run_id=..., resume=True)`` runs the agent again: the
  record serves the model and the tools up to the deferred call, which meets the gate
  again and finds its decision;
- in the same process, ``agent.run(message_history=..., deferred_tool_results=...)`` with
  :func:`deferred_results`.

Either way the gate applies the decision where the call runs: it checks the decision's
MAC, decider and binding to this exact call, consumes it once, runs an edit's arguments,
and records a rejection as a denied call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved

from agentlab.approval import ApprovalManager, announce
from agentlab.errors import ConfigError, RecordingError
from agentlab.model import ApprovalRequest
from agentlab.record import current_run

__all__ = ["APPROVAL_RULE", "AwaitApproval", "defer_approval", "deferred_results",
           "may_defer"]

APPROVAL_RULE = "pydantic-ai:requires_approval"
"""The rule name of an approval that pydantic-ai's ``requires_approval`` asked for."""

may_defer: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentlab_pydantic_ai_may_defer", default=False)
"""Set while a governed toolset's call passes the gate: the approver may defer it."""


class AwaitApproval(BaseException):
    """Raised by :func:`defer_approval` out of the gate (a BaseException, so that nothing
    between the gate and the toolset takes it for the tool's failure)."""

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(request.id)
        self.request = request


def defer_approval(request: ApprovalRequest, manager: ApprovalManager) -> None:
    """The run's approver for pydantic-ai agents whose runs pause: a call of a governed
    toolset that needs approval is deferred (pydantic-ai's ``ApprovalRequired``; the agent
    needs ``output_type=[..., DeferredToolRequests]``) instead of waiting. Elsewhere (an
    agentlab ``@tool`` called by the agent's own code) it only says where to answer, as
    :func:`agentlab.announce` does, and the call waits."""
    if may_defer.get():
        raise AwaitApproval(request)
    announce(request, manager)


def approval_ids(requests: DeferredToolRequests) -> dict[str, str]:
    """The agentlab approval request of each deferred call, by tool-call id."""
    out: dict[str, str] = {}
    for call in requests.approvals:
        meta = requests.metadata.get(call.tool_call_id) or {}
        request_id = meta.get("agentlab_approval")
        if not isinstance(request_id, str):
            raise ConfigError(
                f"deferred call {call.tool_name} ({call.tool_call_id}) has no agentlab "
                "approval request: it was deferred outside agentlab; wrap the agent's tools "
                "with governed_tools(...) and give the run approver=defer_approval")
        out[call.tool_call_id] = request_id
    if requests.calls:
        names = sorted(c.tool_name for c in requests.calls)
        raise ConfigError(f"deferred calls {names} wait for an external result, not an "
                          "approval; agentlab decides approvals only")
    return out


def deferred_results(requests: DeferredToolRequests, *,
                     manager: ApprovalManager | None = None) -> DeferredToolResults | None:
    """pydantic-ai's ``DeferredToolResults`` for ``requests`` once agentlab decided every
    call, else None (some still wait: pause the run, or wait and ask again).

    Every decided call is handed back to pydantic-ai as approved (``ToolApproved``) so that
    it reaches the governed toolset, whose gate applies the agentlab decision there: an
    approval runs the call once, an edit runs the edited arguments, a rejection is recorded
    as a denied call and the model gets the toolset's denial answer; a request that expired
    unanswered is asked again (a new request), as for any agentlab call. Each
    call's metadata (``ctx.tool_call_metadata``) holds ``agentlab_approval`` (the request
    id), ``agentlab_decision`` (approved, edited, rejected or expired) and
    ``agentlab_decided_by``.
    """
    ids = approval_ids(requests)
    if manager is None:
        run = current_run()
        if run is None:
            raise RecordingError("deferred_results() reads agentlab's decisions inside the "
                                 "recorded run (record_run), or pass manager=")
        manager = run.approvals
    decided: dict[str, ApprovalRequest] = {}
    for call_id, request_id in ids.items():
        req = manager.get(request_id)
        if req.status == "pending":
            return None
        decided[call_id] = req
    metadata: dict[str, dict[str, Any]] = {}
    for call_id, req in decided.items():
        earlier: Mapping[str, Any] = requests.metadata.get(call_id) or {}
        metadata[call_id] = {**earlier, "agentlab_decision": req.status,
                             "agentlab_decided_by": req.decided_by}
    return DeferredToolResults(approvals={call_id: ToolApproved() for call_id in decided},
                               metadata=metadata)
