"""The vocabulary of the call path: a call on its way through the stages, the plan a run's
mode makes for it, and the mode itself.

Every tool call passes the same stages (:mod:`agentlab.record._pipeline`): bind its
arguments, *plan*, admit, write the intent, execute, record. Only planning differs between
a recording and a replay: the run's :class:`CallMode` decides, per call, how it is admitted
(live governance, the facts the record holds, or a check that asks nobody) and how it is
executed (live, served from the record, answered by a stub, or reconciled after a crash).
Everything else — scopes, grants, policies, approvals, the write-ahead intent, redaction,
the recorded event — is the same code whatever the mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agentlab.model import LLMCallEvent, ToolCallEvent, ToolIntentEvent
from agentlab.record._context import Credential
from agentlab.record._spec import ModelSpec, ToolSpec

__all__ = [
    "LIVE",
    "LIVE_PLAN",
    "RECORDING",
    "Admission",
    "CallMode",
    "Execution",
    "Live",
    "ModelCall",
    "Plan",
    "Reconcile",
    "Recording",
    "Serve",
    "Stub",
    "ToolCall",
    "replayed_marker",
]


@dataclass(slots=True)
class ToolCall:
    """One tool call on its way through the stages; each stage fills in what it learns."""

    spec: ToolSpec
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    arguments: dict[str, Any]
    key: str | None = None
    """The idempotency key (side-effecting calls)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """What admission decided, recorded on the call: scope, grant, credential, rule..."""
    credential: Credential | None = None
    intent_id: str | None = None
    replayed: dict[str, Any] | None = None
    compensates: int | None = None
    nested: bool = False
    """Made inside another tool call: the tool's own doing, not the agent's."""
    gate_key: str | None = None
    """The key an approval request of a governed call is filed under (the idempotency key
    for a side effect; counted for every governed call, so a resumed run that serves
    earlier calls numbers later ones as the recording did)."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(slots=True)
class ModelCall:
    """One model call: the request as it will be recorded and compared."""

    spec: ModelSpec
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    model: str
    messages: list[Any]
    parameters: dict[str, Any]
    replayed: dict[str, Any] | None = None
    nested: bool = False

    @property
    def name(self) -> str:
        return self.model


class Live:
    """Execute the call: run the function (with its retries)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LIVE"


LIVE = Live()

_NOTHING: Any = object()


@dataclass(frozen=True, slots=True)
class Serve:
    """Do not execute: answer with what ``event`` recorded (its result, error or denial),
    or with ``value`` when a fork substitutes one."""

    event: ToolCallEvent | LLMCallEvent
    value: Any = _NOTHING
    source: Literal["record", "edit"] = "record"

    @property
    def substitutes(self) -> bool:
        return self.value is not _NOTHING


@dataclass(frozen=True, slots=True)
class Stub:
    """Do not execute: answer with what ``fn`` returns for the same arguments."""

    fn: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """The call's intent was recorded and its result was not (the process died in
    between): ask the tool's ``reconcile`` hook whether it took effect; execute it under
    the same intent only if it did not."""

    intent: ToolIntentEvent
    failed_seq: int | None = None
    """Set when the call's failure ended the run (its error is recorded at this seq): it
    finished, but whether it took effect before failing is not known."""


Execution = Live | Serve | Stub | Reconcile
Admission = Literal["live", "recorded", "checked"]
"""``live``: scope, grant and secret, policy, approval; ``recorded``: the facts the record
holds for the call (nothing re-resolved, nobody asked); ``checked``: scope, grant and
policy without resolving a secret or asking anyone (a stub acts on nothing)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How one call is admitted and executed; ``recorded`` is the event whose facts a
    ``recorded`` admission takes."""

    execution: Execution
    admission: Admission = "live"
    recorded: ToolCallEvent | ToolIntentEvent | LLMCallEvent | None = None


LIVE_PLAN = Plan(LIVE)


def replayed_marker(plan: Plan) -> dict[str, Any] | None:
    """What a call records about where its answer came from, when it was not executed."""
    ex = plan.execution
    if isinstance(ex, Serve):
        return {"source": ex.source, "seq": ex.event.seq}
    if isinstance(ex, Stub):
        marker: dict[str, Any] = {"source": "stub"}
        if plan.recorded is not None:
            marker["seq"] = plan.recorded.seq
        return marker
    return None


class CallMode(Protocol):
    """How a run carries out its calls. Recording executes them all; a replay, fork or
    resume serves what the record holds and decides what to do where the code now differs.
    """

    live: bool
    """True only for a plain recording, whose read-only calls may take the fast path."""

    def plan_tool(self, call: ToolCall) -> Plan: ...

    def plan_model(self, call: ModelCall) -> Plan: ...

    def model_noted(self, call: ModelCall) -> None:
        """A model call the agent made itself and reported with ``run.llm_call``: it
        cannot be served, only compared."""

    def recorded_as(self, kind: str, body: dict[str, Any]) -> str | None:
        """The id of the recorded event that already stands for this one (it is then not
        written again: a resumed run catching up), or None to write it."""

    def state_edits(self) -> Mapping[str, Any] | None:
        """Asked after each checkpoint: state paths (``"a/b"``) to set now, or None (a
        fork that edits the state at a checkpoint)."""

    def served_state(self, event: ToolCallEvent | LLMCallEvent
                     ) -> tuple[dict[str, Any], list[str], bool] | None:
        """What a call served from the record wrote to the run state when it ran (values,
        deleted keys, and whether the record being continued already holds it), or None."""

    def finish(self, error: BaseException | None) -> None:
        """The agent's code has returned (or raised ``error``)."""


class Recording:
    """The mode of an ordinary run: every call executes live."""

    live = True

    def plan_tool(self, call: ToolCall) -> Plan:
        return LIVE_PLAN

    def plan_model(self, call: ModelCall) -> Plan:
        return LIVE_PLAN

    def model_noted(self, call: ModelCall) -> None:
        return None

    def recorded_as(self, kind: str, body: dict[str, Any]) -> str | None:
        return None

    def state_edits(self) -> Mapping[str, Any] | None:
        return None

    def served_state(self, event: ToolCallEvent | LLMCallEvent
                     ) -> tuple[dict[str, Any], list[str], bool] | None:
        return None

    def finish(self, error: BaseException | None) -> None:
        return None

    def __repr__(self) -> str:
        return "RECORDING"


RECORDING = Recording()

