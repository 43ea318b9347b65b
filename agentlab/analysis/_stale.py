"""Stale state: steps that acted on a value older than it should have been.

Two kinds of evidence, both from recorded tool results:

* **over its freshness bound**: the result reports its own age (``age_s``, ``cache_age_s``,
  ``age_seconds``) and the tool has a declared bound (``freshness={"lookup_*": 1h}``) that
  the age exceeds;
* **a newer value existed**: another call from the same source (same tool, same arguments;
  in this run or in the other runs given) returned a value stamped later (``as_of``,
  ``fetched_at``, ``updated_at``...) and was made before this one, so fresher data was
  there to be had.

Timestamps inside results are compared only with each other, never with the recording
clock: a system's own notion of "now" (a test fixture, a replayed world) may differ from
the wall clock of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

from agentlab.analysis._branch import signature
from agentlab.model import Event, ToolCallEvent
from agentlab.model._freshness import AGE_FIELDS, STAMP_FIELDS, result_age, result_stamp

__all__ = ["AGE_FIELDS", "STAMP_FIELDS", "StaleRead", "stale_reads"]

@dataclass(frozen=True, slots=True)
class StaleRead:
    """A tool result that was stale when the run used it, and why."""

    seq: int
    event_id: str
    tool: str
    reason: Literal["over-bound", "newer-existed"]
    detail: str
    age_s: float | None = None
    bound_s: float | None = None
    newer_run_id: str | None = None
    newer_seq: int | None = None


def _bound(tool: str, freshness: Mapping[str, timedelta]) -> timedelta | None:
    for pattern, bound in freshness.items():
        if fnmatchcase(tool, pattern):
            return bound
    return None


def _calls(events: Iterable[Event]) -> list[ToolCallEvent]:
    return [e for e in events if isinstance(e, ToolCallEvent) and e.status == "ok"]


def stale_reads(
    events: Sequence[Event],
    *,
    freshness: Mapping[str, timedelta] | None = None,
    others: Iterable[Sequence[Event]] = (),
) -> list[StaleRead]:
    """Stale tool results of one run (see the module docstring), in run order.

    ``freshness`` maps tool-name globs to the oldest a value may be; ``others`` are the
    events of other runs whose calls count as sources of fresher values (siblings of the
    same task, say).
    """
    freshness = freshness or {}
    mine = _calls(events)
    pool = [(c, c.run_id) for c in mine]
    for run in others:
        pool.extend((c, c.run_id) for c in _calls(run))
    by_source: dict[Any, list[tuple[ToolCallEvent, str]]] = {}
    for c, rid in pool:
        by_source.setdefault(signature(c), []).append((c, rid))

    out: list[StaleRead] = []
    for call in mine:
        if call.stale is not None:  # found over its bound when it was recorded
            out.append(StaleRead(
                call.seq, call.id, call.tool, "over-bound",
                f"{call.tool} returned a value {_human(call.stale.age_s)} old; its freshness "
                f"bound is {_human(call.stale.bound_s)} (flagged when recorded)",
                age_s=call.stale.age_s, bound_s=call.stale.bound_s))
            continue
        age = result_age(call.result)
        bound = _bound(call.tool, freshness)
        if age is not None and bound is not None and age > bound.total_seconds():
            out.append(StaleRead(
                call.seq, call.id, call.tool, "over-bound",
                f"{call.tool} returned a value {_human(age)} old; its freshness bound is "
                f"{_human(bound.total_seconds())}",
                age_s=age, bound_s=bound.total_seconds()))
            continue
        stamp = result_stamp(call.result)
        if stamp is None:
            continue
        newer = [
            (other, rid) for other, rid in by_source.get(signature(call), [])
            if other is not call and other.ts <= call.ts
            and (s := result_stamp(other.result)) is not None and s > stamp
        ]
        if newer:
            other, rid = max(newer, key=lambda p: result_stamp(p[0].result))  # type: ignore[arg-type,return-value]
            fresher = result_stamp(other.result)
            assert fresher is not None
            where = "earlier in this run" if rid == call.run_id else f"in run {rid[:12]}"
            out.append(StaleRead(
                call.seq, call.id, call.tool, "newer-existed",
                f"{call.tool} returned a value as of {stamp:%Y-%m-%d %H:%M}, but the same call "
                f"{where} had already returned one as of {fresher:%Y-%m-%d %H:%M} "
                f"({_human((fresher - stamp).total_seconds())} newer)",
                age_s=age, newer_run_id=rid, newer_seq=other.seq))
    return out


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
