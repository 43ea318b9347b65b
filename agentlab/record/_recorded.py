"""A recorded run as a replay reads it: its calls in order, each with a signature that a
live call is compared with.

A call's signature is its kind, its name (tool or model) and the canonical bytes of its
arguments (for a model: messages and parameters) *as the record holds them*: normalised
by the portability rule and scrubbed of secrets. A live call is brought to the same form
before it is compared, so a secret in an argument never makes two equal calls differ.

Calls nested inside a tool call are not the agent's: a replay that serves the outer call
never makes them, so they are left out. A call whose arguments an approver edited is
compared by the arguments the agent asked for (the request's), since that is what the
agent's code will ask for again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentlab.errors import ApprovalNotFoundError, IntegrityError
from agentlab.identity import default_redactor
from agentlab.model import (
    ApprovalEvent,
    CheckpointEvent,
    Event,
    LLMCallEvent,
    MessageEvent,
    RunStartedEvent,
    RunSummary,
    StepEvent,
    ToolCallEvent,
    ToolIntentEvent,
    canonical,
    loads,
)
from agentlab.store import RunStore

__all__ = ["RecordedCall", "RecordedRun", "describe_call", "message_shape", "model_signature",
           "nested_in_tools", "tool_signature"]


def _scrubbed(data: bytes) -> bytes:
    redactor = default_redactor()
    if not redactor.might_contain(data):
        return data
    scrubbed, paths = redactor.scrub(loads(data))
    return canonical(scrubbed)[0] if paths else data


def tool_signature(name: str, arguments: Mapping[str, Any]) -> bytes:
    """What a tool call is compared by: its name and canonical, scrubbed arguments."""
    return b"tool_call\x00" + name.encode() + b"\x00" + _scrubbed(canonical(dict(arguments))[0])


def message_shape(role: str, agent: str | None, content: Any) -> tuple[str, ...]:
    """What a message is compared by in a replay: who said it and its scrubbed content."""
    data = b"message\x00" + _scrubbed(canonical(content)[0])
    return ("message", role, agent or "", hashlib.sha256(data).hexdigest())


def model_signature(model: str, messages: Sequence[Any],
                    parameters: Mapping[str, Any] | None) -> bytes:
    """What a model call is compared by: the model, the messages and the parameters."""
    data = canonical([list(messages), dict(parameters or {})])[0]
    return b"llm_call\x00" + model.encode() + b"\x00" + _scrubbed(data)


def describe_call(kind: str, name: str, arguments: Any) -> dict[str, Any]:
    """A call as errors and reports show it: its arguments as the record would hold them
    (portable, and scrubbed of secrets, since errors are printed and logged)."""
    data = canonical(arguments)[0]
    redactor = default_redactor()
    shown = redactor.scrub(loads(data))[0] if redactor.might_contain(data) else loads(data)
    return {"kind": kind, "name": name, "arguments": shown}


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call of the recorded run, in order, with what a live call is compared by."""

    position: int
    event: ToolCallEvent | LLMCallEvent
    signature: bytes
    requested: dict[str, Any] | None = None
    """For a call an approver edited: the arguments the agent asked for."""

    @property
    def seq(self) -> int:
        return self.event.seq

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def name(self) -> str:
        ev = self.event
        return ev.tool if isinstance(ev, ToolCallEvent) else ev.model

    def describe(self) -> dict[str, Any]:
        ev = self.event
        if isinstance(ev, ToolCallEvent):
            args: Any = self.requested if self.requested is not None else ev.arguments
        else:
            args = {"messages": ev.messages, **(ev.parameters or {})}
        return describe_call(self.kind, self.name, args)


def _tool_writes(events: Sequence[Event]) -> dict[str, list[CheckpointEvent]]:
    """The checkpoints written inside tool calls, under the outermost (agent-level) call."""
    inside = nested_in_tools(events)
    nested = [e for e in events if isinstance(e, CheckpointEvent) and e.id in inside]
    if not nested:
        return {}
    parents = {e.id: e.parent_id for e in events}
    tools = {e.id for e in events if e.kind == "tool_call"}
    out: dict[str, list[CheckpointEvent]] = {}
    for cp in nested:
        outer, cur, hops = None, cp.parent_id, 0
        while cur is not None and hops < 256:
            if cur in tools:
                outer = cur
            cur, hops = parents.get(cur), hops + 1
        if outer is not None:
            out.setdefault(outer, []).append(cp)
    return out


def nested_in_tools(events: Sequence[Event]) -> set[str]:
    """Ids of events that happened inside a tool call (the tool's own doing): marked
    ``in_tool`` when recorded (so even those of a tool whose own event was never written,
    its process killed, are known), or under a tool call by their parents."""
    parents = {e.id: e.parent_id for e in events}
    tools = {e.id for e in events if e.kind == "tool_call"}
    inside: set[str] = {e.id for e in events if e.in_tool}
    for e in events:
        p = e.parent_id
        seen = 0
        while p is not None and seen < 256:
            if p in tools:
                inside.add(e.id)
                break
            p = parents.get(p)
            seen += 1
    return inside


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A stored run read for replay: verified, its calls indexed."""

    summary: RunSummary
    started: RunStartedEvent
    events: list[Event]
    calls: list[RecordedCall]
    store: RunStore
    tool_writes: dict[str, list[CheckpointEvent]]
    """Checkpoints written inside each agent-level tool call, by the call's event id."""
    """The agent's calls in the order they were made (by start time: concurrent calls are
    recorded as they finish, and a replay meets them as they start)."""

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @classmethod
    def load(cls, store: RunStore, run_id: str, *, verify: bool = True) -> RecordedRun:
        """Read and index a run. A run whose hash chain, summary or blobs do not check out
        raises :class:`~agentlab.errors.IntegrityError`: a replay never trusts a tampered
        record, and a corrupted one is not a divergence."""
        summary = store.run(run_id)  # a unique prefix names the run, as on the command line
        run_id = summary.run_id
        if verify:
            try:
                events = store.verified_events(run_id)
            except IntegrityError as exc:
                raise IntegrityError(f"{exc}; a record that does not check out is not "
                                     "replayed (see `agentlab verify`)") from None
        else:
            events = store.events(run_id)
        if not events or not isinstance(events[0], RunStartedEvent):
            raise IntegrityError(f"run {run_id} does not begin with run_started")
        calls = sorted(index_calls(store, events), key=lambda rc: (rc.event.ts, rc.event.seq))
        return cls(summary, events[0], events,
                   [RecordedCall(i, rc.event, rc.signature, rc.requested)
                    for i, rc in enumerate(calls)], store, _tool_writes(events))

    def state_written_in(self, call: ToolCallEvent | LLMCallEvent) -> tuple[dict[str, Any],
                                                                           list[str]] | None:
        """What a recorded tool call wrote to the run state while it ran (its keys' values
        after its last checkpoint, and the keys it deleted), or None when it wrote nothing:
        a replay that serves the call applies it, as the tool would have."""
        written = self.tool_writes.get(call.id)
        if not written:
            return None
        keys = {k for c in written for k in c.writes}
        deleted = [k for c in written for k in c.deletes if k not in keys]
        state = self.store.state_at(self.run_id, written[-1].seq)
        return {k: state[k] for k in keys if k in state}, deleted

    def shape(self) -> list[tuple[str, ...]]:
        """The agent's steps (name, status) and checkpoints (state root), in order: what a
        replay of unchanged code emits again."""
        inside = nested_in_tools(self.events)
        out: list[tuple[str, ...]] = []
        for e in self.events:
            if e.id in inside:
                continue
            if isinstance(e, StepEvent):
                out.append(("step", e.name, e.status))
            elif isinstance(e, CheckpointEvent):
                out.append(("checkpoint", e.root))
            elif isinstance(e, MessageEvent):
                out.append(message_shape(e.role, e.agent, e.content))
        return out

    def checkpoints(self) -> list[CheckpointEvent]:
        """The agent's own checkpoints (not those written inside a tool), in order."""
        inside = nested_in_tools(self.events)
        return [e for e in self.events if isinstance(e, CheckpointEvent) and e.id not in inside]

    def grants_used(self) -> list[str]:
        """The grants the run's calls went through, in first-use order."""
        names = (getattr(e, "grant", None) for e in self.events)
        return list(dict.fromkeys(n for n in names if n))

    def intents(self) -> dict[str, ToolIntentEvent]:
        """The side effects whose intent was recorded, by idempotency key."""
        return {e.idempotency_key: e for e in self.events if isinstance(e, ToolIntentEvent)}

    def results(self) -> dict[str, ToolCallEvent]:
        """The recorded results of side effects, by idempotency key."""
        return {e.idempotency_key: e for e in self.events
                if isinstance(e, ToolCallEvent) and e.idempotency_key is not None}


def index_calls(store: RunStore, events: Sequence[Event]) -> Iterable[RecordedCall]:
    """The agent's calls of a run in order (see the module docstring)."""
    inside = nested_in_tools(events)
    edits = {e.request_id for e in events
             if isinstance(e, ApprovalEvent) and e.action == "edit"}
    position = 0
    for e in events:
        if e.id in inside:
            continue
        if isinstance(e, ToolCallEvent):
            requested = _requested(store, e.approval) if e.approval in edits else None
            args = requested if requested is not None else e.arguments
            yield RecordedCall(position, e, tool_signature(e.tool, args), requested)
        elif isinstance(e, LLMCallEvent):
            yield RecordedCall(position, e, model_signature(e.model, e.messages, e.parameters))
        else:
            continue
        position += 1


def _requested(store: RunStore, request_id: str | None) -> dict[str, Any] | None:
    if request_id is None:
        return None
    try:
        return dict(store.approval(request_id).arguments)
    except (ApprovalNotFoundError, KeyError):  # an imported run: the request rows stayed home
        return None
