"""Lineage of the run state: for each key, the steps that wrote it and the steps that read it.

Writes come from checkpoints (each lists the keys it changed; its parent is the step or tool
call during which the assignment happened). Reads come from the ``reads`` the recorder puts
on each step, tool call and LLM call: the keys read through ``run.state[...]`` while it ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agentlab.model import CheckpointEvent, Event

__all__ = ["Access", "KeyLineage", "lineage"]


@dataclass(frozen=True, slots=True)
class Access:
    """One read or write of a key: where in the run (``seq``) and by which step."""

    seq: int
    """The checkpoint's seq for a write (when the new value was recorded); the reading
    event's seq for a read."""
    event_id: str
    """The step, tool call or LLM call that read or wrote (for a top-level write: the
    checkpoint itself)."""
    kind: str
    name: str
    """Tool name, step name or model; ``"run"`` for a top-level write."""


@dataclass(frozen=True, slots=True)
class KeyLineage:
    key: str
    writes: list[Access] = field(default_factory=list)
    reads: list[Access] = field(default_factory=list)

    def last_write_before(self, seq: int) -> Access | None:
        """The latest write recorded before ``seq`` (what a reader at ``seq`` could see)."""
        found = [w for w in self.writes if w.seq < seq]
        return found[-1] if found else None


def _name(e: Event) -> str:
    if e.kind in ("tool_call", "tool_intent"):
        return e.tool
    if e.kind == "step":
        return e.name
    if e.kind == "llm_call":
        return e.model
    return e.kind


def lineage(events: Sequence[Event]) -> dict[str, KeyLineage]:
    """Per state key, its writes and reads in run order (keys sorted)."""
    by_id = {e.id: e for e in events}
    out: dict[str, KeyLineage] = {}

    def entry(key: str) -> KeyLineage:
        if key not in out:
            out[key] = KeyLineage(key)
        return out[key]

    for e in events:
        if isinstance(e, CheckpointEvent):
            writer = by_id.get(e.parent_id) if e.parent_id else None
            access = (Access(e.seq, writer.id, writer.kind, _name(writer)) if writer is not None
                      else Access(e.seq, e.id, "checkpoint", "run"))
            for key in [*e.writes, *e.deletes]:
                entry(key).writes.append(access)
        for key in e.reads:
            entry(key).reads.append(Access(e.seq, e.id, e.kind, _name(e)))
    return dict(sorted(out.items()))
