"""A failed run as the culprit analysis reads it: its steps, who took each, what each said
and passed, what it was expected to do, and where its values came from.

Built once per explanation and handed to every check (``agentlab.analysis._checks``); all
of it is derived from the events alone, so a run imported from another format, with no
siblings and no declared freshness, is read the same way as one recorded here.

Three notions recur:

* a **step** is anything that can be a culprit: a tool call, a model call, a named step,
  a user's or an agent's message (not the system prompt);
* the **decision** behind a tool call is the step that asked for it: the model call or
  the agent's message just before it (in a chat of several agents, the last message of
  the agent the call is attributed to); a call made by the agent's own code, with no
  model call around it, is its own decision. Evidence about a call's inputs lands on its
  decision, since that is where the call was chosen;
* the **final answer** is what the agent last told the user: its last message, or the
  text of its last model response that asked for no tool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from agentlab.analysis._values import ValueIndex, text_key
from agentlab.model import (
    ApprovalEvent,
    Event,
    ExpectationEvent,
    ExpectedAction,
    LLMCallEvent,
    MessageEvent,
    RunStartedEvent,
    StepEvent,
    ToolCallEvent,
    dumps,
    expected_actions,
)

__all__ = ["Expectations", "RunView", "expectations_of"]

_STEP_KINDS = ("tool_call", "llm_call", "step", "message")


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a correct run does: the side-effecting calls it makes, in order (None: not
    stated), and values its final answer states (None: not stated)."""

    actions: list[ExpectedAction] | None = None
    outputs: list[Any] | None = None

    @property
    def stated(self) -> bool:
        return self.actions is not None or self.outputs is not None


def expectations_of(events: Sequence[Event]) -> Expectations:
    """A run's expectations: its ``expectation`` events (the last one that states actions
    wins; outputs add up), or, for runs imported before expectations were events, the
    ``expected_actions`` / ``expected_outputs`` of the run's metadata."""
    actions: list[ExpectedAction] | None = None
    outputs: list[Any] | None = None
    for e in events:
        if isinstance(e, ExpectationEvent):
            if e.actions is not None:
                actions = list(e.actions)
            if e.outputs is not None:
                outputs = (outputs or []) + [o for o in e.outputs if o not in (outputs or [])]
    if actions is None and outputs is None:
        started = next((e for e in events if isinstance(e, RunStartedEvent)), None)
        meta = started.metadata if started is not None and started.metadata else {}
        # Old imports listed reads among the expected actions and marked no call as a
        # side effect: their actions can only be held against a run that tells writes apart.
        tells_writes = any(isinstance(e, ToolCallEvent) and e.side_effect for e in events)
        if isinstance(meta.get("expected_actions"), list) and tells_writes:
            try:
                actions = expected_actions(meta["expected_actions"])
            except ValueError:
                actions = None
        if isinstance(meta.get("expected_outputs"), list):
            outputs = list(meta["expected_outputs"])
    return Expectations(actions, outputs if outputs else (None if outputs is None else []))


_DECISION_LOOKBACK = 20
"""How many model calls back a call's decision is looked for by its arguments: a decision
is recent, and a bound keeps explaining a long run linear."""


@dataclass
class RunView:
    """See the module docstring."""

    events: Sequence[Event]
    expected: Expectations = field(default_factory=Expectations)

    @classmethod
    def of(cls, events: Sequence[Event], expected: Expectations | None = None) -> RunView:
        return cls(events, expected if expected is not None else expectations_of(events))

    # -- the run's parts --------------------------------------------------------------------

    @cached_property
    def by_seq(self) -> dict[int, Event]:
        return {e.seq: e for e in self.events}

    @cached_property
    def by_id(self) -> dict[str, Event]:
        return {e.id: e for e in self.events}

    @cached_property
    def started(self) -> RunStartedEvent | None:
        return next((e for e in self.events if isinstance(e, RunStartedEvent)), None)

    @cached_property
    def steps(self) -> list[Event]:
        """Every event that can be a culprit, in order."""
        return [e for e in self.events if e.kind in _STEP_KINDS
                and not (isinstance(e, MessageEvent) and e.role == "system")]

    @cached_property
    def calls(self) -> list[ToolCallEvent]:
        return [e for e in self.events if isinstance(e, ToolCallEvent)]

    def agent_of(self, e: Event) -> str | None:
        """Who took the step: the event's agent, else the run's."""
        if e.agent is not None:
            return e.agent
        if isinstance(e, MessageEvent) and e.role == "user":
            return "user"
        return self.started.agent_name if self.started is not None else None

    @cached_property
    def participants(self) -> frozenset[str]:
        """The names of the run's agents and tools, as value keys: a name that takes part
        in the run is never an answer it gives."""
        names = {e.agent for e in self.events if e.agent} | {c.tool for c in self.calls}
        return frozenset(text_key(n) for n in names)

    @cached_property
    def participant_words(self) -> frozenset[str]:
        """The participants' names with underscores read as spaces."""
        return frozenset(p.replace("_", " ") for p in self.participants)

    @cached_property
    def multi_agent(self) -> bool:
        return len({e.agent for e in self.steps if e.agent is not None}) > 1

    # -- decisions ------------------------------------------------------------------------

    @cached_property
    def _decisions(self) -> dict[int, Event]:
        out: dict[int, Event] = {}
        last_model: Event | None = None
        last_by_agent: dict[str | None, Event] = {}
        for e in self.events:
            if isinstance(e, LLMCallEvent):
                last_model = e
            elif isinstance(e, MessageEvent):
                if e.role == "user":
                    last_model = None  # a new turn: the next call is decided after it
                elif e.role == "assistant":
                    last_by_agent[e.agent] = e
            elif isinstance(e, ToolCallEvent) and not e.in_tool:
                if e.agent is not None and e.agent in last_by_agent:
                    out[e.seq] = last_by_agent[e.agent]
                elif last_model is not None and (e.parent_id is None
                                                 or e.parent_id == last_model.parent_id):
                    out[e.seq] = last_model
                elif last_model is not None and (source := self._argued_by(e)) is not None:
                    out[e.seq] = source
        return out

    def _argued_by(self, call: ToolCallEvent) -> Event | None:
        """The latest model call before ``call`` (in the same turn) whose response holds
        one of the call's argument values: in an agent that decides in one step and acts
        in another, that is the decision the call carries out."""
        wanted = [v.key for v in self.values.at(call.seq, "arguments").values()
                  if v.specificity >= 0.5]
        if not wanted:
            return None
        looked = 0
        for e in reversed(self.events[: self._index[call.seq]]):
            if isinstance(e, MessageEvent) and e.role == "user":
                return None
            if isinstance(e, LLMCallEvent):
                held = self.values.at(e.seq, "output")
                if any(k in held for k in wanted):
                    return e
                looked += 1
                if looked >= _DECISION_LOOKBACK:
                    return None
        return None

    @cached_property
    def _index(self) -> dict[int, int]:
        return {e.seq: i for i, e in enumerate(self.events)}

    def decision(self, e: Event) -> Event:
        """The step that chose ``e`` (itself for anything but a tool call asked for by a
        model call or an agent's message)."""
        return self._decisions.get(e.seq, e) if isinstance(e, ToolCallEvent) else e

    # -- what was said --------------------------------------------------------------------

    @cached_property
    def final_answer(self) -> Event | None:
        """What the agent last told the user (see the module docstring), or None."""
        for e in reversed(self.events):
            if isinstance(e, MessageEvent) and e.role == "assistant" and _said(e.content):
                return e
            if isinstance(e, LLMCallEvent) and _response_text(e.response) \
                    and not _asked_tools(e.response):
                return e
        return None

    def said(self, e: Event) -> Any:
        """The words of a message or a model response (what a value check reads)."""
        if isinstance(e, MessageEvent):
            return e.content
        if isinstance(e, LLMCallEvent):
            return _response_text(e.response) or e.response
        if isinstance(e, StepEvent):
            return e.output
        return None

    # -- values ---------------------------------------------------------------------------

    @cached_property
    def values(self) -> ValueIndex:
        """Where each value of the run appears (expectations are never read: they are
        the answer, not part of the run)."""
        index = ValueIndex()
        shown: set[bytes] = set()
        for e in self.events:
            if isinstance(e, LLMCallEvent) and e.messages:
                # what the model was shown was given to it: each message once (a prompt
                # repeats the whole conversation on every call)
                fresh = []
                for m in e.messages:
                    key = dumps(m)
                    if key not in shown:
                        shown.add(key)
                        fresh.append(m)
                if fresh:
                    index.add(e.seq, "input", fresh)
            for part, content in self.parts(e):
                index.add(e.seq, part, content)
        return index

    def parts(self, e: Event) -> Iterator[tuple[Any, Any]]:
        """An event's content by part (see :class:`~agentlab.analysis._values.Holding`)."""
        if isinstance(e, RunStartedEvent):
            if e.task_input is not None:
                yield "input", e.task_input
        elif isinstance(e, MessageEvent):
            yield ("output" if e.role == "assistant" else "input"), e.content
        elif isinstance(e, LLMCallEvent):
            if e.response is not None:
                yield "output", e.response
        elif isinstance(e, ToolCallEvent):
            if e.arguments:
                yield "arguments", e.arguments
            if e.result is not None:
                yield "result", e.result
            elif e.error is not None:
                yield "result", e.error.message
        elif isinstance(e, StepEvent):
            if e.output is not None:
                yield "output", e.output
        elif isinstance(e, ApprovalEvent) and e.arguments is not None:
            yield "input", e.arguments

    def address(self, e: Event) -> str:
        """``seq N`` and, for an imported event, where it was in its file."""
        return f"seq {e.seq}" + (f" ({e.source})" if e.source else "")

    def name(self, e: Event) -> str:
        if isinstance(e, ToolCallEvent):
            return e.tool
        if isinstance(e, MessageEvent):
            return f"{e.agent or e.role} message"
        if isinstance(e, LLMCallEvent):
            return e.model
        return str(getattr(e, "name", None) or e.kind)


def _said(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content.replace("TERMINATE", "").strip())
    return content is not None


def _response_text(response: Any) -> str | None:
    if isinstance(response, str):
        return response if response.strip() else None
    if isinstance(response, dict):
        for key in ("content", "text", "answer", "message"):
            v = response.get(key)
            if isinstance(v, str) and v.strip():
                return v
    return None


def _asked_tools(response: Any) -> bool:
    return isinstance(response, dict) and bool(response.get("tool_calls"))
