"""Policies and durable approvals: who decides whether a tool call runs. No UI here.

The front ends (CLI, notebook widget, Python API) all decide through
:class:`ApprovalManager`; the recorder passes each call the policy marks ``approve`` through
:func:`pass_through_gate`. Who may decide (approvers, their groups and keys) is kept in the
store by :func:`add_approver` and :func:`revoke_approver`.
"""

from agentlab.approval._approvers import (
    ApproverAdded,
    ApproverState,
    add_approver,
    approver_history,
    approver_state,
    approver_states,
    revoke_approver,
)
from agentlab.approval._gate import Approver, GateResult, announce, auto_approve, pass_through_gate
from agentlab.approval._manager import DEFAULT_TIMEOUT, ApprovalManager, binding_for
from agentlab.approval._policy import PHASE_ONLY, Policy, PolicyAction, PolicyDecision, Rule

__all__ = [
    "DEFAULT_TIMEOUT",
    "PHASE_ONLY",
    "ApprovalManager",
    "Approver",
    "ApproverAdded",
    "ApproverState",
    "GateResult",
    "Policy",
    "PolicyAction",
    "PolicyDecision",
    "Rule",
    "add_approver",
    "announce",
    "approver_history",
    "approver_state",
    "approver_states",
    "auto_approve",
    "binding_for",
    "pass_through_gate",
    "revoke_approver",
]
