"""The mode of a resumed run: catch up with the record, then go on live.

A resumed run re-runs the agent's code from the start, under the same run id. Until the
code has done everything the record holds, nothing is executed and nothing is written
again: each call is served from the record, and every event the code emits (steps,
checkpoints, phases, calls) is matched with the next recorded one and dropped, so the run's
record continues exactly where it stopped. A checkpoint must rebuild the recorded state
(same root hash) and each call must be the recorded one: otherwise the code is not the
code that recorded the run, and the resume stops with
:class:`~agentlab.errors.ReplayDivergence`.

At the frontier the run goes live. A side effect whose intent was recorded without a
result (the process died while it ran) is not executed blindly: the tool's ``reconcile``
hook says whether it took effect, and without one the resume stops for a human
(:class:`~agentlab.errors.ResumeBlockedError`). A run that ended in an error resumes from
just before the call whose failure ended it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentlab.errors import ReplayDivergence
from agentlab.model import (
    CheckpointEvent,
    ErrorEvent,
    Event,
    LLMCallEvent,
    PhaseEvent,
    RunEndedEvent,
    StepEvent,
    ToolCallEvent,
    ToolIntentEvent,
)
from agentlab.record._calls import LIVE_PLAN, ModelCall, Plan, Reconcile, Serve, ToolCall
from agentlab.record._recorded import (
    RecordedRun,
    describe_call,
    model_signature,
    nested_in_tools,
    tool_signature,
)

__all__ = ["CatchUp"]

_STREAM_KINDS = frozenset({"checkpoint", "step", "phase", "tool_call", "llm_call", "error"})
"""What the code emits again while it catches up (intents, approvals, retries and the run's
own lifecycle events are not re-emitted by served calls)."""


def _stream(recorded: RecordedRun) -> tuple[list[Event], ToolCallEvent | None]:
    """The events the code will emit again, in order, and the failed call that ended the
    run (resumed from just before it), if any."""
    inside = nested_in_tools(recorded.events)
    events = [e for e in recorded.events if e.id not in inside]
    cut = len(events)
    failed: ToolCallEvent | None = None
    ended = next((i for i in range(len(events) - 1, -1, -1)
                  if isinstance(events[i], RunEndedEvent)), None)
    if ended is not None:  # an errored run: drop its final error and what led to it
        last_error = next((i for i in range(ended - 1, -1, -1)
                           if isinstance(events[i], ErrorEvent)), None)
        cut = last_error if last_error is not None else ended
        if last_error is not None:
            err = events[last_error]
            assert isinstance(err, ErrorEvent)
            at = next((i for i, e in enumerate(events) if e.id == err.recorded_as), None)
            if at is not None:
                cause = events[at]
                failed = cause if isinstance(cause, ToolCallEvent) else None
                cut = at
    # Only what came after the last resume's own events matters for kinds: the stream is
    # every re-emittable event before the cut.
    return [e for e in events[:cut] if e.kind in _STREAM_KINDS], failed


class CatchUp:
    """See the module docstring."""

    live = False

    def __init__(self, recorded: RecordedRun) -> None:
        self.recorded = recorded
        self._stream, failed = _stream(recorded)
        self._pos = 0
        self._broken = False
        results = recorded.results()
        intents = recorded.intents()
        # Side effects started and never finished; and the failed one that ended the run.
        self._open: dict[str, ToolIntentEvent] = {
            k: i for k, i in intents.items() if k not in results}
        if failed is not None and failed.idempotency_key in intents:
            self._open[failed.idempotency_key] = intents[failed.idempotency_key]
        self.served = 0

    @property
    def caught_up(self) -> bool:
        return self._broken or self._pos >= len(self._stream)

    @property
    def remaining(self) -> int:
        return max(0, len(self._stream) - self._pos)

    def _peek(self) -> Event | None:
        return None if self.caught_up else self._stream[self._pos]

    def _diverge(self, expected: Event | None, actual: dict[str, Any], why: str) -> ReplayDivergence:
        self._broken = True  # what the run records from here on is written, not compared
        return ReplayDivergence(
            expected.seq if expected is not None else None,
            _describe(expected), actual, why=why,
            hint="resume needs the code that recorded the run; to run other code against "
                 "it use agentlab replay --after-fix, or fork it")

    def plan_tool(self, call: ToolCall) -> Plan:
        nxt = self._peek()
        if nxt is None:
            if call.key is not None and call.key in self._open:
                intent = self._open.pop(call.key)
                return Plan(Reconcile(intent), "recorded", intent)
            return LIVE_PLAN
        actual = describe_call("tool_call", call.name, call.arguments)
        if not isinstance(nxt, ToolCallEvent):
            raise self._diverge(nxt, actual, "the record has no call here")
        if tool_signature(nxt.tool, nxt.arguments) != tool_signature(call.name, call.arguments) \
                and not self._edited_match(nxt, call):
            raise self._diverge(nxt, actual, "another call than the recorded one")
        self.served += 1
        return Plan(Serve(nxt), "recorded", nxt)

    def _edited_match(self, recorded: ToolCallEvent, call: ToolCall) -> bool:
        """A recorded call an approver edited matches the arguments the agent asked for."""
        for rc in self.recorded.calls:
            if rc.event.id == recorded.id:
                return rc.signature == tool_signature(call.name, call.arguments)
        return False

    def plan_model(self, call: ModelCall) -> Plan:
        nxt = self._peek()
        if nxt is None:
            return LIVE_PLAN
        actual = describe_call("llm_call", call.model, call.messages)
        if not isinstance(nxt, LLMCallEvent) or model_signature(
                nxt.model, nxt.messages, nxt.parameters) != model_signature(
                call.model, call.messages, call.parameters):
            raise self._diverge(nxt, actual, "another model request than the recorded one")
        self.served += 1
        return Plan(Serve(nxt), "recorded", nxt)

    def model_noted(self, call: ModelCall) -> None:
        nxt = self._peek()
        if nxt is None:
            return
        if not isinstance(nxt, LLMCallEvent) or nxt.model != call.model:
            raise self._diverge(nxt, describe_call("llm_call", call.model, call.messages),
                                "another model call than the recorded one")

    def recorded_as(self, kind: str, body: dict[str, Any]) -> str | None:
        if kind not in _STREAM_KINDS:
            return None
        nxt = self._peek()
        if nxt is None:
            return None
        if nxt.kind != kind or not _same(nxt, body):
            raise self._diverge(nxt, {"kind": kind, "name": _name(kind, body),
                                      "arguments": None},
                                "the code emitted something else than the record holds here")
        self._pos += 1
        return nxt.id

    def state_edits(self) -> Mapping[str, Any] | None:
        return None

    def finish(self, error: BaseException | None) -> None:
        if error is None and not self.caught_up:
            raise self._diverge(self._peek(), {"kind": "end", "name": "of the code"},
                                "the code ended before doing everything the record holds")


def _same(event: Event, body: dict[str, Any]) -> bool:
    if isinstance(event, CheckpointEvent):
        return event.root == body.get("root")
    if isinstance(event, StepEvent):
        return event.name == body.get("name")
    if isinstance(event, PhaseEvent):
        return event.phase == body.get("phase")
    if isinstance(event, ToolCallEvent):
        return event.tool == body.get("tool")
    if isinstance(event, LLMCallEvent):
        return event.model == body.get("model")
    return True


def _name(kind: str, body: dict[str, Any]) -> Any:
    return body.get("name") or body.get("tool") or body.get("model") or body.get("phase") \
        or body.get("root")


def _describe(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    body = event.model_dump(exclude={"id", "run_id", "seq", "parent_id", "ts", "hash"})
    name = _name(event.kind, body)
    args = body.get("arguments") if event.kind == "tool_call" else None
    return describe_call(event.kind, str(name), args)
