"""Branch points: where two runs of the same task part ways, and where a run leaves the
expected action sequence.

Steps are aligned by signature (kind, tool, canonical arguments), in order. The first
position whose signatures differ is the branch point. Aligned steps before it that had the
same signature but returned different results are reported too: a tool result that
differed while the calls were still identical is the usual cause of the branch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentlab.model import Event, ExpectedAction, ToolCallEvent, dumps, expected_actions

__all__ = ["Divergence", "Signature", "divergence_from_expected", "first_divergence", "signature"]


@dataclass(frozen=True, slots=True)
class Signature:
    """What a step did, independent of when and with which result."""

    kind: str
    name: str
    arguments: str
    """Canonical JSON of the arguments."""


def signature(e: ToolCallEvent) -> Signature:
    return Signature(e.kind, e.tool, dumps(e.arguments).decode())


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first position where two step sequences differ (``None`` on the side that ended)."""

    index: int
    a: Signature | None
    b: Signature | None
    a_seq: int | None = None
    b_seq: int | None = None
    differing_results: list[tuple[int, int, Signature]] = field(default_factory=list)
    """(seq in a, seq in b, signature) of earlier aligned calls whose results differed."""


def _calls(events: Sequence[Event], keep: Callable[[ToolCallEvent], bool] | None
           ) -> list[ToolCallEvent]:
    return [e for e in events if isinstance(e, ToolCallEvent) and (keep is None or keep(e))]


def first_divergence(
    a: Sequence[Event],
    b: Sequence[Event],
    *,
    keep: Callable[[ToolCallEvent], bool] | None = None,
    calls_only: bool = True,
) -> Divergence | None:
    """Where the tool calls of run ``a`` and run ``b`` part ways (None: they never do).

    ``keep`` selects the calls to align (all tool calls by default; e.g. only side effects).
    With ``calls_only=False``, two runs whose calls never part but whose results differ
    give a divergence past their last call (``a`` and ``b`` None, ``a_seq`` None) that
    carries the differing results.
    """
    ca, cb = _calls(a, keep), _calls(b, keep)
    differing: list[tuple[int, int, Signature]] = []
    for i in range(max(len(ca), len(cb))):
        ea = ca[i] if i < len(ca) else None
        eb = cb[i] if i < len(cb) else None
        sa = signature(ea) if ea is not None else None
        sb = signature(eb) if eb is not None else None
        if sa != sb:
            return Divergence(i, sa, sb, ea.seq if ea else None, eb.seq if eb else None,
                              differing)
        assert ea is not None and eb is not None and sa is not None
        if (ea.status, dumps(ea.result)) != (eb.status, dumps(eb.result)):
            differing.append((ea.seq, eb.seq, sa))
    if differing and not calls_only:
        # the calls never part, but results differ: a divergence past the last call
        return Divergence(len(ca), None, None, None, None, differing)
    return None


def divergence_from_expected(
    events: Sequence[Event],
    expected: Sequence[ExpectedAction | Mapping[str, Any]],
    *,
    keep: Callable[[ToolCallEvent], bool] | None = None,
) -> Divergence | None:
    """Where a run's tool calls leave an expected sequence of actions
    (:class:`ExpectedAction` or ``{"name", "arguments" | "kwargs"}`` mappings; the run is side
    ``a``, the expected sequence side ``b``, with no seq numbers)."""
    calls = _calls(events, keep)
    gold = expected_actions(list(expected))
    for i in range(max(len(calls), len(gold))):
        sa = signature(calls[i]) if i < len(calls) else None
        sb = (Signature("tool_call", gold[i].name, dumps(gold[i].arguments).decode())
              if i < len(gold) else None)
        if sa != sb:
            return Divergence(i, sa, sb, calls[i].seq if i < len(calls) else None, None)
    return None
