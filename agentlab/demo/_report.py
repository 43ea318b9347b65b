"""What governance did in a run, as lines of text: the grants its calls ran under, each
approval (who decided, how, through which channel) and each refused call."""

from __future__ import annotations

from agentlab.model import ToolCallEvent
from agentlab.store import RunStore

__all__ = ["governance_lines"]


def governance_lines(store: RunStore, run_id: str) -> list[str]:
    """The run's grants, approvals and denials, one per line, for a terminal.

    >>> print("\\n".join(governance_lines(store, run_id)))   # doctest: +SKIP
    """
    calls = [e for e in store.events(run_id, kinds=["tool_call"]) if isinstance(e, ToolCallEvent)]
    grants = sorted({c.grant for c in calls if c.grant})
    lines = [f"grants     {', '.join(grants) or '-'}"]
    requests = store.approvals(run_id=run_id)
    if not requests:
        lines.append("approvals  -")
    for i, req in enumerate(requests):
        head = "approvals " if i == 0 else " " * 10
        if req.action is None:
            decided = f"{req.status} without a decision"
        else:
            decided = f"{req.action} by {req.decided_by} via {req.channel}"
        why = f": {req.reason}" if req.reason else ""
        lines.append(f"{head} {req.tool} ({req.rule}) {decided}{why}")
    denied = [c for c in calls if c.status == "denied" and c.denial is not None]
    if not denied:
        lines.append("denials    -")
    for i, call in enumerate(denied):
        assert call.denial is not None
        head = "denials   " if i == 0 else " " * 10
        lines.append(f"{head} {call.tool} ({call.denial.code}): {call.denial.reason}")
    return lines
