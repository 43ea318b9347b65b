"""Policies and durable approvals: who decides whether a tool call runs. No UI here.

The front ends (CLI, notebook widget, Python API) all decide through
:class:`ApprovalManager`; the recorder passes each call the policy marks ``approve``
through :func:`pass_through_gate`.
"""

from agentlab.approval._gate import Approver, GateResult, announce, auto_approve, pass_through_gate
from agentlab.approval._manager import DEFAULT_TIMEOUT, ApprovalManager, binding_for
from agentlab.approval._policy import PHASE_ONLY, Policy, PolicyAction, PolicyDecision, Rule

__all__ = [
    "DEFAULT_TIMEOUT",
    "PHASE_ONLY",
    "ApprovalManager",
    "Approver",
    "GateResult",
    "Policy",
    "PolicyAction",
    "PolicyDecision",
    "Rule",
    "announce",
    "auto_approve",
    "binding_for",
    "pass_through_gate",
]
