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
    MessageEvent,
    PhaseEvent,
    RunEndedEvent,
    RunResumedEvent,
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
from agentlab.store import RunStore

__all__ = ["CatchUp", "resume_mode"]

_STREAM_KINDS = frozenset({"checkpoint", "step", "phase", "tool_call", "llm_call", "error",
                           "message", "expectation"})
"""What the code emits again while it catches up (intents, approvals, retries and the run's
own lifecycle events are not re-emitted by served calls)."""


def resume_mode(store: RunStore, run_id: str, *, catch_up: bool) -> tuple[CatchUp | None, str]:
    """How a resumed run goes on, and the reason its ``run_resumed`` gives: catching up
    (the code runs again from the start), or, with ``catch_up=False``, live at once, for code
    that keeps its own place and continues where it stopped (a LangGraph graph resumed from
    its checkpoint): nothing is served and nothing is matched; the code itself must not do
    again what the record holds (an adapter keys its calls so that it does not)."""
    if not catch_up:
        return None, ("continued live: the code goes on from where it stopped; nothing is "
                      "served from the record")
    mode = CatchUp(RecordedRun.load(store, run_id))
    return mode, (f"catching up: {mode.remaining} recorded events are served, not "
                  "executed again; live from there")


def _stream(recorded: RecordedRun) -> tuple[list[Event], ToolCallEvent | None]:
    """The events the code will emit again, in order, and the failed call to reconcile now
    (the one whose failure ended the last attempt), if any.

    The record is read as attempts, split at each ``run_resumed``: an attempt that was
    killed counts whole; one that ended in an error counts up to the failure that ended it
    (the call that raised, found through the error's ``recorded_as`` and, for a call made
    inside a tool, the agent's own call around it), because the next attempt did that
    again. Events made inside tools are the tools' doing and are not emitted again."""
    events = recorded.events
    inside = nested_in_tools(events)
    by_id = {e.id: e for e in events}
    attempts: list[list[Event]] = [[]]
    for e in events:
        if isinstance(e, RunResumedEvent):
            attempts.append([])
        else:
            attempts[-1].append(e)
    stream: list[Event] = []
    failed: ToolCallEvent | None = None
    for attempt in attempts:
        cut, cause = _cut(attempt, inside, by_id)
        stream.extend(e for e in attempt[:cut] if e.kind in _STREAM_KINDS and e.id not in inside)
        failed = cause
    return stream, failed


def _cut(attempt: list[Event], inside: set[str],
         by_id: dict[str, Event]) -> tuple[int, ToolCallEvent | None]:
    """Where an attempt's events stop counting, and the call whose failure ended it."""
    ended = next((i for i in range(len(attempt) - 1, -1, -1)
                  if isinstance(attempt[i], RunEndedEvent)), None)
    if ended is None:  # killed: everything it recorded counts
        return len(attempt), None
    error_at = next((i for i in range(ended - 1, -1, -1)
                     if isinstance(attempt[i], ErrorEvent)), None)
    if error_at is None:
        return ended, None
    err = attempt[error_at]
    assert isinstance(err, ErrorEvent)
    cause = by_id.get(err.recorded_as) if err.recorded_as else None
    while cause is not None and cause.id in inside and cause.parent_id is not None:
        cause = by_id.get(cause.parent_id)  # up to the agent's own call around it
    at = next((i for i, e in enumerate(attempt) if cause is not None and e.id == cause.id),
              None)
    if at is None:
        return error_at, None
    return at, cause if isinstance(cause, ToolCallEvent) else None


class CatchUp:
    """See the module docstring."""

    live = False

    def __init__(self, recorded: RecordedRun) -> None:
        self.recorded = recorded
        self._stream, failed = _stream(recorded)
        self._pos = 0
        self.stopped: ReplayDivergence | None = None
        """The divergence that stopped the resume: from then on nothing is served and
        nothing runs live, even if the agent caught it."""
        results = recorded.results()
        intents = recorded.intents()
        # Side effects started and never finished; and the failed one that ended the run.
        self._open: dict[str, tuple[ToolIntentEvent, int | None]] = {
            k: (i, None) for k, i in intents.items() if k not in results}
        if failed is not None and failed.idempotency_key in intents:
            self._open[failed.idempotency_key] = (intents[failed.idempotency_key], failed.seq)
        self.served = 0

    @property
    def caught_up(self) -> bool:
        return self._pos >= len(self._stream)

    @property
    def remaining(self) -> int:
        return max(0, len(self._stream) - self._pos)

    def _peek(self) -> Event | None:
        return None if self.caught_up else self._stream[self._pos]

    def _diverge(self, expected: Event | None, actual: dict[str, Any], why: str) -> ReplayDivergence:
        if self.stopped is None:
            self.stopped = ReplayDivergence(
                expected.seq if expected is not None else None,
                _describe(expected), actual, why=why,
                hint="resume needs the code that recorded the run; to run other code "
                     "against it use agentlab replay --after-fix, or fork it")
        return self.stopped

    def plan_tool(self, call: ToolCall) -> Plan:
        if self.stopped is not None:
            raise self.stopped
        if call.nested:  # inside a tool running live (at the frontier): the tool's doing
            return LIVE_PLAN
        nxt = self._peek()
        if nxt is None:
            if call.key is not None and call.key in self._open:
                intent, failed_seq = self._open.pop(call.key)
                return Plan(Reconcile(intent, failed_seq), "recorded", intent)
            return LIVE_PLAN
        if not isinstance(nxt, ToolCallEvent):
            raise self._diverge(nxt, describe_call("tool_call", call.name, call.arguments),
                                "the record has no call here")
        if tool_signature(nxt.tool, nxt.arguments) != tool_signature(call.name, call.arguments) \
                and not self._edited_match(nxt, call):
            raise self._diverge(nxt, describe_call("tool_call", call.name, call.arguments),
                                "another call than the recorded one")
        self.served += 1
        return Plan(Serve(nxt), "recorded", nxt)

    def _edited_match(self, recorded: ToolCallEvent, call: ToolCall) -> bool:
        """A recorded call an approver edited matches the arguments the agent asked for."""
        for rc in self.recorded.calls:
            if rc.event.id == recorded.id:
                return rc.signature == tool_signature(call.name, call.arguments)
        return False

    def plan_model(self, call: ModelCall) -> Plan:
        if self.stopped is not None:
            raise self.stopped
        nxt = self._peek()
        if nxt is None or call.nested:
            return LIVE_PLAN
        if not isinstance(nxt, LLMCallEvent) or model_signature(
                nxt.model, nxt.messages, nxt.parameters) != model_signature(
                call.model, call.messages, call.parameters):
            raise self._diverge(nxt, describe_call("llm_call", call.model, call.messages),
                                "another model request than the recorded one")
        self.served += 1
        return Plan(Serve(nxt), "recorded", nxt)

    def model_noted(self, call: ModelCall) -> None:
        if self.stopped is not None:
            raise self.stopped
        nxt = self._peek()
        if nxt is None:
            return
        if not isinstance(nxt, LLMCallEvent) or nxt.model != call.model:
            raise self._diverge(nxt, describe_call("llm_call", call.model, call.messages),
                                "another model call than the recorded one")

    def recorded_as(self, kind: str, body: dict[str, Any]) -> str | None:
        if kind not in _STREAM_KINDS or self.stopped is not None or body.get("in_tool"):
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

    def served_state(self, event: ToolCallEvent | LLMCallEvent
                     ) -> tuple[dict[str, Any], list[str], bool] | None:
        written = self.recorded.state_written_in(event)
        return None if written is None else (*written, True)

    def finish(self, error: BaseException | None) -> None:
        if self.stopped is not None and error is not self.stopped:
            raise self.stopped  # the agent caught it and went on: the resume still failed
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
    if isinstance(event, MessageEvent):
        return event.role == body.get("role") and event.agent == body.get("agent")
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
