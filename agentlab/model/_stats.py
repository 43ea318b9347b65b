"""How each event moves its run's summary counters: one rule for recording and importing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["EventStats", "event_stats"]

_STEP_KINDS = frozenset({"llm_call", "tool_call", "step", "message"})


class EventStats(NamedTuple):
    steps: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    errors: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    denials: int = 0
    approvals: int = 0
    overrides: int = 0
    stale: int = 0
    unpriced: int = 0
    """Model calls recorded without a cost (``cost_usd`` absent, and not served from the
    record): their cost is unknown, not zero."""

    def __add__(self, other: tuple[Any, ...]) -> EventStats:
        return EventStats(*(a + b for a, b in zip(self, other, strict=True)))


ZERO = EventStats()


def event_stats(kind: str, body: Mapping[str, Any]) -> EventStats:
    """The summary increments for one event of ``kind`` with these body fields."""
    if kind == "retry":
        return EventStats(retries=1)
    if kind == "error":
        return ZERO if body.get("recorded_as") else EventStats(errors=1)
    if kind == "approval":
        # An override is a human changing what the agent would have done: an edit or a
        # rejection. A request that got no decision is neither.
        action = body.get("action")
        return EventStats(approvals=1 if action else 0,
                          overrides=1 if action in ("edit", "reject") else 0)
    if kind not in _STEP_KINDS:
        return ZERO
    failed = 1 if body.get("status") == "error" and kind != "step" else 0
    cost = body.get("cost_usd") or 0.0
    if kind == "llm_call":
        return EventStats(
            steps=1,
            llm_calls=1,
            errors=failed,
            cost_usd=float(cost),
            input_tokens=int(body.get("input_tokens") or 0),
            output_tokens=int(body.get("output_tokens") or 0),
            # served from the record on a replay: it cost nothing, not an unknown sum
            unpriced=1 if body.get("cost_usd") is None and not body.get("replayed") else 0,
        )
    if kind == "tool_call":
        denied = 1 if body.get("status") == "denied" else 0
        return EventStats(steps=1, tool_calls=1, errors=failed, cost_usd=float(cost),
                          denials=denied, stale=1 if body.get("stale") else 0)
    return EventStats(steps=1)
