"""How a replay or fork plans each call against the recorded run.

Three ways to go through the record, chosen by the operation:

* **strict** (did the code change?): the n-th call the code makes must be the record's n-th
  call (kind, name, canonical arguments); it is then served from the record. Anything else
  stops the replay with :class:`~agentlab.errors.ReplayDivergence` naming the seq.
* **after a fix**: a call identical to the next recorded one (or to one further on, the
  calls skipped in between being *missing*) is served from the record; a call the record
  does not hold is a divergence, handled by its kind. A read-only call (or a model call)
  runs live only when live reads are allowed; a side-effecting call is **never** executed
  live: a stub answers for it (the caller's, else the tool's own ``stub=``) or the replay
  stops. Forks may allow side effects explicitly; they then go through live governance.
* **fork at step k**: strict before k (the record must be reproduced up to the fork
  point), the edited value at k, after-a-fix from there.

Every divergence is kept, with what the record had and what the code did, for the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentlab.errors import ReplayDivergence
from agentlab.model import LLMCallEvent, ToolCallEvent
from agentlab.record import (
    LIVE_PLAN,
    ModelCall,
    Plan,
    RecordedCall,
    RecordedRun,
    Serve,
    Stub,
    ToolCall,
    describe_call,
    message_shape,
    model_signature,
    tool_signature,
)

__all__ = ["Divergence", "ForkPoint", "ReplayMode", "Strategy"]

Strategy = Literal["strict", "after_fix"]
Handling = Literal["served", "live", "stub", "refused", "missing", "edited", "noted"]


@dataclass(frozen=True, slots=True)
class Divergence:
    """A point where the replayed code and the record part: ``expected`` is the recorded
    call at ``seq`` (None if the code made a call past the record's end), ``actual`` the
    call the code made (None for a recorded call the code never made), ``handled`` what
    the replay did about it."""

    seq: int | None
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    handled: Handling

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "expected": self.expected, "actual": self.actual,
                "handled": self.handled}


@dataclass(frozen=True, slots=True)
class ForkPoint:
    """Where a fork parts from the record: the recorded call at ``seq`` answers with
    ``value`` (a substituted result or response), or, when ``state`` is given, the state
    paths are set to these values right after the ``checkpoint``-th checkpoint."""

    seq: int
    value: Any = None
    has_value: bool = False
    state: Mapping[str, Any] | None = None
    checkpoint: int | None = None
    """1-based ordinal, among the run's checkpoints, after which ``state`` is applied."""


class ReplayMode:
    """The call mode of a replay or fork run (see the module docstring)."""

    live = False

    def __init__(self, recorded: RecordedRun, *, strategy: Strategy, live_reads: bool = False,
                 stubs: Mapping[str, Callable[..., Any]] | None = None,
                 allow_side_effects: bool = False, fork: ForkPoint | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.recorded = recorded
        self.calls: list[RecordedCall] = recorded.calls
        self.strategy = strategy
        self.live_reads = live_reads
        self.stubs = dict(stubs or {})
        self.allow_side_effects = allow_side_effects
        self.fork = fork
        self.forked = fork is None
        """Past the fork point (a plain replay is 'past' it from the start)."""
        self.pos = 0
        self.divergences: list[Divergence] = []
        self.counts = {"served": 0, "live": 0, "stub": 0, "edited": 0}
        self.notes: list[str] = []
        self.stopped: ReplayDivergence | None = None
        """The divergence that stopped the replay: raised again at every later call and at
        the end, even if the agent caught it."""
        self.shape: list[tuple[str, ...]] = []
        """The steps and checkpoints the code emitted, to compare with the record's."""
        self._replaced: list[int] = []
        """Recorded calls passed over because the same tool was called with other arguments
        in their place; a later identical call still finds them."""
        self._progress = progress
        self._checkpoints = 0
        self._applying = False
        self._edited_keys: set[str] = set()

    # -- the CallMode protocol ----------------------------------------------------------------

    def plan_tool(self, call: ToolCall) -> Plan:
        if self.stopped is not None:
            raise self.stopped
        spec = call.spec
        if call.nested:  # inside a tool that runs live (or a stub): the tool's own doing
            return self._nested(call.name, spec.side_effect, spec.stub,
                                lambda: describe_call("tool_call", call.name, call.arguments))
        sig = tool_signature(call.name, call.arguments)
        return self._plan(sig, lambda: describe_call("tool_call", call.name, call.arguments),
                          "tool_call", spec.side_effect, call.name, spec.stub)

    def plan_model(self, call: ModelCall) -> Plan:
        if self.stopped is not None:
            raise self.stopped

        def actual() -> dict[str, Any]:
            return describe_call("llm_call", call.model,
                                 {"messages": call.messages, **call.parameters})

        if call.nested:
            return self._nested(call.model, False, None, actual)
        sig = model_signature(call.model, call.messages, call.parameters)
        return self._plan(sig, actual, "llm_call", False, call.model, None)

    def model_noted(self, call: ModelCall) -> None:
        # The agent asked the model itself (run.llm_call): compared, never served.
        if self.stopped is not None:
            raise self.stopped
        sig = model_signature(call.model, call.messages, None)
        at = self._find(lambda rc: isinstance(rc.event, LLMCallEvent) and model_signature(
            rc.event.model, rc.event.messages, None) == sig)
        if at is not None:
            self._take(at)
            return
        actual = describe_call("llm_call", call.model, {"messages": call.messages})
        if self._strict_now():
            self._stop(actual, "another model request than the recorded one")
        self._note(self.pos, actual, "noted")

    def recorded_as(self, kind: str, body: dict[str, Any]) -> str | None:
        if body.get("in_tool"):
            return None
        if kind == "step":
            self.shape.append(("step", str(body.get("name")), str(body.get("status", "ok"))))
        elif kind == "message":
            self.shape.append(message_shape(body["role"], body.get("agent"), body.get("content")))
        elif kind == "checkpoint":
            self.shape.append(("checkpoint", str(body.get("root"))))
            self._checkpoints += 1
            if self._applying:
                self._applying = False
                return None
            rewritten = self._edited_keys.intersection(body.get("writes") or ())
            if rewritten:
                self.notes.append(
                    f"the code wrote {', '.join(sorted(rewritten))} again after the fork's "
                    "state edit, replacing it: to edit what the code decides on, fork at "
                    "(or after) the checkpoint that writes it")
                self._edited_keys -= rewritten
        return None

    def state_edits(self) -> Mapping[str, Any] | None:
        """Asked after each checkpoint: the state paths a fork sets now, once."""
        f = self.fork
        if f is None or f.state is None or self.forked or f.checkpoint != self._checkpoints:
            return None
        self.forked = True
        self.counts["edited"] += 1
        self._edited_keys = {path.strip("/").split("/", 1)[0] for path in f.state}
        self._applying = True  # the next checkpoint is the edit itself
        after = self.recorded.checkpoints()[self._checkpoints - 1]
        self.divergences.append(Divergence(
            after.seq, {"kind": "checkpoint", "name": f"state after seq {after.seq}",
                        "arguments": {"writes": after.writes}},
            {"kind": "state", "name": "set", "arguments": dict(f.state)}, "edited"))
        return f.state

    def served_state(self, event: ToolCallEvent | LLMCallEvent
                     ) -> tuple[dict[str, Any], list[str], bool] | None:
        written = self.recorded.state_written_in(event)
        return None if written is None else (*written, False)

    def finish(self, error: BaseException | None) -> None:
        if self.stopped is not None and error is not self.stopped:
            raise self.stopped
        if error is not None:
            return
        if self.fork is not None and not self.forked:
            raise self._divergence(None, None, "the code ended before reaching the fork point "
                                   f"(seq {self.fork.seq})")
        missing = self.calls[self.pos:]
        if missing and self._strict_now():
            raise self._divergence(missing[0], None, "the code ended without making this call")
        for rc in missing:
            self.divergences.append(Divergence(rc.seq, rc.describe(), None, "missing"))
        self.pos = len(self.calls)

    @property
    def shape_matches(self) -> bool:
        """The code emitted the record's steps (names, statuses) and checkpoints (state
        roots), in order."""
        return self.shape == self.recorded.shape()

    # -- planning -----------------------------------------------------------------------------

    def _strict_now(self) -> bool:
        return self.strategy == "strict" or not self.forked

    def _find(self, same: Callable[[RecordedCall], bool]) -> int | None:
        """Where the recorded call that ``same`` accepts is: the current position under a
        strict comparison; after a fix also a call passed over as replaced, or one ahead."""
        if self.pos < len(self.calls) and same(self.calls[self.pos]):
            return self.pos
        if self._strict_now():
            return None
        for at in self._replaced:
            if same(self.calls[at]):
                return at
        return next((i for i in range(self.pos + 1, len(self.calls)) if same(self.calls[i])),
                    None)

    def _take(self, at: int) -> None:
        """Serve the recorded call at ``at``; calls passed over to reach it are missing."""
        if at in self._replaced:
            self._replaced.remove(at)
            return
        for rc in self.calls[self.pos:at]:
            self.divergences.append(Divergence(rc.seq, rc.describe(), None, "missing"))
        self.pos = at + 1
        if self._progress is not None:
            self._progress(self.pos, len(self.calls))

    def _plan(self, sig: bytes, actual: Callable[[], dict[str, Any]], kind: str,
              side_effect: bool, name: str, own_stub: Callable[..., Any] | None) -> Plan:
        f = self.fork
        if f is not None and not self.forked and f.state is None and self.pos < len(self.calls) \
                and self.calls[self.pos].seq == f.seq:
            rc = self.calls[self.pos]
            if rc.signature != sig:
                raise self._divergence(rc, actual(), "the code does not reach the fork point")
            self.forked = True
            self._take(self.pos)
            self.counts["edited"] += 1
            self.divergences.append(Divergence(rc.seq, rc.describe(),
                                               {**actual(), "value": f.value}, "edited"))
            return Plan(Serve(rc.event, f.value, "edit"), "recorded", rc.event)
        at = self._find(lambda rc: rc.signature == sig)
        if at is not None:
            rc = self.calls[at]
            self._take(at)
            self.counts["served"] += 1
            return Plan(Serve(rc.event), "recorded", rc.event)
        if self._strict_now():
            self._stop(actual(), "another call than the recorded one")
        expected = self.calls[self.pos] if self.pos < len(self.calls) else None
        plan = self._handle(expected, actual(), side_effect, name, own_stub)
        if expected is not None and (expected.kind, expected.name) == (kind, name):
            # The same tool (or model) with other arguments: it takes the recorded call's
            # place, which is then not missing (unless a later call is identical to it).
            self._replaced.append(self.pos)
            self.pos += 1
        return plan

    def _nested(self, name: str, side_effect: bool, own_stub: Callable[..., Any] | None,
                actual: Callable[[], dict[str, Any]]) -> Plan:
        """A call made inside a tool that runs live or is stubbed: not in the agent's
        record. A read runs (its tool does); a side effect is stubbed or refused."""
        if not side_effect:
            return LIVE_PLAN
        stub = self.stubs.get(name) or own_stub
        if stub is not None:
            return Plan(Stub(stub), "checked")
        if self.allow_side_effects:
            return LIVE_PLAN
        raise self._divergence(None, actual(), "a side effect made inside a tool is never "
                               "executed in a replay", hint=f"give {name} a stub")

    def _handle(self, expected: RecordedCall | None, actual: dict[str, Any], side_effect: bool,
                name: str, own_stub: Callable[..., Any] | None) -> Plan:
        if side_effect:
            stub = self.stubs.get(name) or own_stub
            if stub is not None:
                self._note(self.pos, actual, "stub")
                self.counts["stub"] += 1
                return Plan(Stub(stub), "checked",
                            expected.event if expected is not None else None)
            if self.allow_side_effects:
                self._note(self.pos, actual, "live")
                self.counts["live"] += 1
                return LIVE_PLAN
            self._note(self.pos, actual, "refused")
            raise self._divergence(
                expected, actual, "a side-effecting call the record does not hold is never "
                "executed in a replay",
                hint=f"give it a stub (stubs={{{name!r}: fn}} or @tool(stub=...))"
                     + (", or fork with --allow-side-effects" if self.fork else ""))
        if name in self.stubs:
            self._note(self.pos, actual, "stub")
            self.counts["stub"] += 1
            return Plan(Stub(self.stubs[name]), "checked",
                        expected.event if expected is not None else None)
        if self.live_reads:
            self._note(self.pos, actual, "live")
            self.counts["live"] += 1
            return LIVE_PLAN
        self._note(self.pos, actual, "refused")
        raise self._divergence(expected, actual, "a read the record does not hold",
                               hint="allow it to run live with --live-reads (live_reads=True)")

    # -- bookkeeping --------------------------------------------------------------------------

    def _note(self, at: int, actual: dict[str, Any], handled: Handling) -> None:
        rc = self.calls[at] if at < len(self.calls) else None
        self.divergences.append(Divergence(rc.seq if rc else None,
                                           rc.describe() if rc else None, actual, handled))

    def _stop(self, actual: dict[str, Any], why: str) -> None:
        expected = self.calls[self.pos] if self.pos < len(self.calls) else None
        self._note(self.pos, actual, "refused")
        hint = ("the code before the fork point must reproduce the record"
                if self.fork is not None and not self.forked else
                "replay with --after-fix to run changed code against the record")
        raise self._divergence(expected, actual, why, hint=hint)

    def _divergence(self, expected: RecordedCall | None, actual: dict[str, Any] | None,
                    why: str, *, hint: str = "") -> ReplayDivergence:
        stop = ReplayDivergence(expected.seq if expected is not None else None,
                                expected.describe() if expected is not None else None,
                                actual, why=why, hint=hint)
        if self.stopped is None:
            self.stopped = stop
        return stop
