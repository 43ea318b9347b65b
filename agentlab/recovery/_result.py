"""What a replay, fork or resume reports: the new run next to the recorded one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentlab.model import (
    Change,
    CheckpointEvent,
    Event,
    LLMCallEvent,
    MessageEvent,
    RunSummary,
    StepEvent,
    ToolCallEvent,
    dumps,
)
from agentlab.record import message_shape, model_signature, nested_in_tools, tool_signature
from agentlab.recovery._modes import Divergence

__all__ = ["Outcome", "ReplayResult", "ResumeResult", "run_shape"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: its status, success and score."""

    status: str
    success: bool | None
    score: float | None

    @classmethod
    def of(cls, summary: RunSummary) -> Outcome:
        return cls(summary.status, summary.success, summary.score)

    def text(self) -> str:
        verdict = {True: "success", False: "failure", None: "no verdict"}[self.success]
        score = f", score {self.score:g}" if self.score is not None else ""
        return f"{self.status} ({verdict}{score})"


def run_shape(events: Sequence[Event]) -> list[tuple[str, ...]]:
    """A run's steps as a replay must reproduce them: each call by its signature, each step
    by its name, each checkpoint by its state's root hash, in order (intents, approvals and
    the run's own lifecycle events are left out: a replay executes nothing)."""
    nested = nested_in_tools(events)
    shape: list[tuple[str, ...]] = []
    for e in events:
        if e.id in nested:
            continue
        if isinstance(e, ToolCallEvent):
            shape.append(("tool_call", tool_signature(e.tool, e.arguments).hex(), e.status))
        elif isinstance(e, LLMCallEvent):
            shape.append(("llm_call", model_signature(e.model, e.messages, e.parameters).hex()))
        elif isinstance(e, StepEvent):
            shape.append(("step", e.name, e.status))
        elif isinstance(e, CheckpointEvent):
            shape.append(("checkpoint", e.root))
        elif isinstance(e, MessageEvent):
            shape.append(message_shape(e.role, e.agent, e.content))
    return shape


@dataclass(frozen=True)
class ReplayResult:
    """A replay or fork run next to the run it was made from."""

    kind: Literal["replay", "fork"]
    mode: Literal["strict", "after_fix"]
    original_run_id: str
    run_id: str
    entry: str | None
    version: str | None
    original: Outcome
    outcome: Outcome
    divergences: list[Divergence] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    state_diff: list[Change] = field(default_factory=list)
    identical: bool = False
    """The new run has the same calls, steps, state hashes and outcome as the recorded one."""
    error: str | None = None
    """The replayed code's own error, if it raised one."""
    fork_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def flipped(self) -> bool:
        """The outcome changed from failure to success or back."""
        return (self.original.success is True) != (self.outcome.success is True)

    @property
    def first_divergence(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "mode": self.mode, "original_run_id": self.original_run_id,
            "run_id": self.run_id, "entry": self.entry, "version": self.version,
            "fork_seq": self.fork_seq,
            "original": _outcome_dict(self.original), "outcome": _outcome_dict(self.outcome),
            "flipped": self.flipped, "identical": self.identical, "error": self.error,
            "counts": dict(self.counts), "notes": list(self.notes),
            "divergences": [d.to_dict() for d in self.divergences],
            "state_diff": [{"op": c.op, "path": c.path, "old": c.old, "new": c.new}
                           for c in self.state_diff],
        }

    def to_text(self) -> str:
        what = "fork" if self.kind == "fork" else f"{self.mode.replace('_', '-')} replay"
        lines = [f"{what} of run {self.original_run_id} recorded as run {self.run_id}"]
        if self.entry:
            lines.append(f"  code     {self.entry}" + (f" {self.version}" if self.version else ""))
        lines.append(f"  before   {self.original.text()}")
        lines.append(f"  after    {self.outcome.text()}"
                     + ("   <- the outcome flipped" if self.flipped else ""))
        if self.error:
            lines.append(f"  error    {self.error}")
        lines.extend(f"  note     {n}" for n in self.notes)
        counts = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n)
        lines.append(f"  calls    {counts or 'none'}"
                     + ("; identical to the record" if self.identical else ""))
        if self.divergences:
            lines.append(f"  divergences ({len(self.divergences)}):")
            for d in self.divergences[:20]:
                lines.append(f"    seq {d.seq if d.seq is not None else '-':>4}  {d.handled:<8} "
                             f"{_before(d)}  ->  {_call(d.actual)}")
            if len(self.divergences) > 20:
                lines.append(f"    ... {len(self.divergences) - 20} more (--json lists all)")
        if self.state_diff:
            lines.append(f"  state at the end ({len(self.state_diff)} changes):")
            for c in self.state_diff[:15]:
                lines.append(f"    {c.op:<6} {c.path or '/'}  {_short(c.old)} -> {_short(c.new)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True)
class ResumeResult:
    """A resumed run: where it was taken up and how it ended."""

    run_id: str
    from_seq: int
    caught_up: int
    """Recorded calls served (not executed again) while the code caught up."""
    outcome: Outcome
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "from_seq": self.from_seq, "caught_up": self.caught_up,
                "outcome": _outcome_dict(self.outcome), "error": self.error}

    def to_text(self) -> str:
        lines = [f"resumed run {self.run_id} after seq {self.from_seq}: {self.caught_up} "
                 "recorded calls served, not executed again",
                 f"  ended    {self.outcome.text()}"]
        if self.error:
            lines.append(f"  error    {self.error}")
        return "\n".join(lines)


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {"status": o.status, "success": o.success, "score": o.score}


def _before(d: Divergence) -> str:
    """What the record had where the code diverged: a call the code replaced, or (for a
    call the code added) the recorded call it came before."""
    e, a = d.expected, d.actual
    if e is not None and a is not None and d.handled != "edited" \
            and (e.get("kind"), e.get("name")) != (a.get("kind"), a.get("name")):
        return f"(new call, before {_call(e)})"
    return _call(e)


def _call(call: dict[str, Any] | None) -> str:
    if not call:
        return "(none)"
    text = f"{call.get('name')}({_short(call.get('arguments'), 60)})"
    return text + f" = {_short(call['value'], 60)}" if "value" in call else text


def _short(value: Any, width: int = 50) -> str:
    text = dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."
