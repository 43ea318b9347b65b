"""The events of a run: one pydantic model per kind, tagged by a literal ``kind``.

An event is an envelope (id, run, sequence number, parent, time, hash) plus the fields of
its kind. The store keeps the kind fields as the event's canonical *body*; payload fields
(arguments, results, messages, state) larger than a few hundred bytes live in
content-addressed blobs and are resolved when the event is read.

These models describe and validate recorded data; the recorder's hot path builds plain
dicts of the same shape and a test checks that they validate here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PAYLOAD_FIELDS",
    "ApprovalEvent",
    "CheckpointEvent",
    "CodeRef",
    "Denial",
    "ErrorEvent",
    "ErrorInfo",
    "Event",
    "EventBase",
    "ExpectationEvent",
    "ExpectedAction",
    "GovernanceRef",
    "LLMCallEvent",
    "MessageEvent",
    "PhaseEvent",
    "Replayed",
    "RetryEvent",
    "RunEndedEvent",
    "RunKind",
    "RunResumedEvent",
    "RunStartedEvent",
    "Staleness",
    "StepEvent",
    "ToolCallEvent",
    "ToolIntentEvent",
    "expected_actions",
]

Phase = Literal["read", "draft", "act"]
RunStatus = Literal["running", "succeeded", "failed", "errored"]
DenialCode = Literal[
    "no_grant", "scope", "expired", "revoked", "workflow", "principal", "secret",
    "policy", "phase", "rejected", "approval_expired", "no_approver", "approver_error",
    "binding", "consumed", "invalid_edit", "decider",
]
ApprovalAction = Literal["approve", "reject", "edit"]
RunKind = Literal["replay", "fork", "rollback"]
"""What made a run that is not an ordinary recording: a replay of another run, a fork of
one, or the rollback of one's side effects (its ``parent_run_id``)."""


class ErrorInfo(BaseModel):
    """An exception as recorded: its type, message and (redacted) traceback."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str
    message: str
    traceback: str | None = None
    attributes: dict[str, Any] | None = Field(
        None, description="The exception's own simple attributes (a status code, say), so a "
        "replay can raise it again as the agent saw it.")


class Denial(BaseModel):
    """Why a tool call was refused before it ran, and which rule or grant said so."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: DenialCode
    reason: str
    rule: str | None = None
    grant: str | None = None


class CodeRef(BaseModel):
    """The code a run executed: an importable entry point, its version and, when the code
    lives in a git working tree, the commit (and whether the tree had local changes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entry: str | None = Field(None, description="Importable 'module:qualname' of the agent.")
    version: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None


class GovernanceRef(BaseModel):
    """What a run was given to govern its calls, as far as it can be written down: the
    grants it may act through and the names of its policy's rules (a policy is code; a
    recovery of the run must be given it again, and refuses to act without it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    grants: list[str] = Field(default_factory=list)
    policy: list[str] | None = Field(None, description="The policy's rule names, in order; "
                                     "absent when the run had no policy.")


class Replayed(BaseModel):
    """Set on a call a replay, fork or resume did not execute: where its result came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Literal["record", "stub", "edit"] = Field(
        description="record: served from the recorded run; stub: answered by a stub, the "
        "tool never ran; edit: the value a fork substituted.")
    seq: int | None = Field(None, description="The call's seq in the recorded run.")


class EventBase(BaseModel):
    """Fields every event carries. ``seq`` and ``hash`` are assigned by the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Time-ordered unique id (UUIDv7) of the event.")
    run_id: str
    seq: int = Field(ge=1, description="Position in the run, from 1, without gaps.")
    parent_id: str | None = Field(None, description="Id of the enclosing step, if any.")
    ts: datetime = Field(description="When the step started (or the event happened), UTC.")
    hash: str = Field(description="Hash chain value after this event (hex SHA-256).")
    duration_ms: float | None = None
    reads: list[str] = Field(default_factory=list, description="State keys read by the step.")
    normalized: list[str] = Field(
        default_factory=list,
        description="JSON pointers of values changed by the portability rule.",
    )
    redacted: list[str] = Field(
        default_factory=list,
        description="JSON pointers of strings in which secrets were replaced by a marker.",
    )
    in_tool: bool = Field(
        False, description="Recorded inside a tool call: the tool's own doing, which a "
        "replay that serves the tool does not do again.")
    agent: str | None = Field(
        None, description="In a run of several agents: the one that took this step (absent: "
        "the run's own agent).")
    source: str | None = Field(
        None, description="Where an imported event came from in its file (e.g. "
        "'history[3]', 'traj[12]'), so a finding can be checked against the original.")


class RunStartedEvent(EventBase):
    """The first event of every run: what ran, for whom, on which input."""

    kind: Literal["run_started"] = "run_started"
    workflow: str
    agent_name: str
    agent_version: str | None = None
    task_id: str | None = None
    task_input: Any = None
    owner: str | None = None
    team: str | None = None
    phase: Phase | None = None
    parent_run_id: str | None = None
    fork_seq: int | None = None
    run_kind: RunKind | None = None
    replay_mode: Literal["strict", "after_fix"] | None = None
    code: CodeRef | None = None
    governance: GovernanceRef | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RunEndedEvent(EventBase):
    """The last event of a run: how it ended and how well it did."""

    kind: Literal["run_ended"] = "run_ended"
    status: RunStatus
    success: bool | None = None
    score: float | None = None
    error: ErrorInfo | None = None


class LLMCallEvent(EventBase):
    """A model call: model, messages, response, tokens and cost."""

    kind: Literal["llm_call"] = "llm_call"
    model: str
    provider: str | None = None
    messages: list[Any] = Field(default_factory=list)
    parameters: dict[str, Any] | None = Field(
        None, description="The request's other arguments (temperature, tools...).")
    response: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cost_source: Literal["provider", "price_table", "unknown"] = "unknown"
    status: Literal["ok", "error"] = "ok"
    error: ErrorInfo | None = None
    replayed: Replayed | None = None
    reported: bool = Field(
        False, description="Reported after the agent made the call itself (run.llm_call): "
        "a replay can compare it, not serve it.")


class ToolIntentEvent(EventBase):
    """Write-ahead record of a side-effecting call, committed before it executes."""

    kind: Literal["tool_intent"] = "tool_intent"
    tool: str
    call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str
    attempt: int = 1
    grant: str | None = None
    credential: str | None = Field(
        None, description="Keyed fingerprint (HMAC-SHA256) of the secret the call used.")
    scope: str | None = None
    phase: Phase | None = None
    policy_rule: str | None = None
    approval: str | None = None
    compensates: int | None = Field(
        None, description="In a rollback run: the seq of the parent run's action this undoes.")


class Staleness(BaseModel):
    """A result older than its tool's declared freshness bound, as found at record time."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    age_s: float
    bound_s: float


class ToolCallEvent(EventBase):
    """A finished tool call with its structured result or error, or a call refused before it
    ran (``status="denied"`` with the reason in ``denial``)."""

    kind: Literal["tool_call"] = "tool_call"
    tool: str
    call_id: str | None = Field(
        None,
        description="Id shared by the intent and result of a side-effecting call (or a "
        "framework's tool-call id); absent on read-only calls, whose id is the event id.",
    )
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    status: Literal["ok", "error", "denied"] = "ok"
    error: ErrorInfo | None = None
    denial: Denial | None = None
    side_effect: bool = False
    intent_id: str | None = Field(None, description="The tool_intent event this completes.")
    idempotency_key: str | None = None
    attempt: int = 1
    grant: str | None = None
    credential: str | None = Field(
        None, description="Keyed fingerprint (HMAC-SHA256) of the secret the call used.")
    scope: str | None = None
    phase: Phase | None = None
    policy_rule: str | None = None
    approval: str | None = None
    cost_usd: float | None = None
    stale: Staleness | None = Field(
        None, description="Set when the result reported an age over the tool's freshness bound.")
    replayed: Replayed | None = None
    compensates: int | None = Field(
        None, description="In a rollback run: the seq of the parent run's action this undoes.")
    reconciled: bool | None = Field(
        None, description="Set on a call a resumed run found started and not finished: True "
        "when its reconcile hook found it had taken effect (the result is the hook's), False "
        "when it had not (the call was executed then, under the same intent).")


class ApprovalEvent(EventBase):
    """A human decision on a tool call, as the run consumed it (or the reason none came)."""

    kind: Literal["approval"] = "approval"
    request_id: str
    tool: str
    action: ApprovalAction | None = Field(
        None, description="approve, reject or edit; absent when no decision arrived.")
    by: str | None = None
    channel: str | None = None
    reason: str | None = None
    arguments: dict[str, Any] | None = Field(
        None, description="The arguments as edited by the approver (an override).")
    rule: str | None = None


class PhaseEvent(EventBase):
    """The run moved to another phase: read/classify, draft/recommend, or act."""

    kind: Literal["phase"] = "phase"
    phase: Phase
    previous: Phase | None = None


class RunResumedEvent(EventBase):
    """A process took the run up again (after a crash, a restart or a long approval)."""

    kind: Literal["run_resumed"] = "run_resumed"
    from_seq: int
    reason: str | None = None


class CheckpointEvent(EventBase):
    """The run state after a change: a content-addressed root and the keys written."""

    kind: Literal["checkpoint"] = "checkpoint"
    root: str = Field(description="Hash of the state's root node.")
    writes: list[str] = Field(default_factory=list, description="Top-level keys changed.")
    deletes: list[str] = Field(default_factory=list)


class RetryEvent(EventBase):
    """A failed attempt that will be retried."""

    kind: Literal["retry"] = "retry"
    target: str
    attempt: int
    error: ErrorInfo
    delay_s: float = 0.0


class ErrorEvent(EventBase):
    """An error raised inside the run, handled or not."""

    kind: Literal["error"] = "error"
    error: ErrorInfo
    handled: bool = False
    recorded_as: str | None = Field(
        None, description="The event that already recorded (and counted) this exception, "
        "e.g. the tool call it escaped from; such an error is not counted twice.")


class MessageEvent(EventBase):
    """A message of the conversation: a user's turn, the assistant's words to the user, or
    one participant's message in a chat of several agents (``agent`` names it)."""

    kind: Literal["message"] = "message"
    role: Literal["user", "assistant", "system"]
    content: Any = None


class ExpectedAction(BaseModel):
    """A call a correct run makes: the tool and the arguments it must be given (arguments
    left out are not checked)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


def expected_actions(actions: Any) -> list[ExpectedAction]:
    """Expected actions from what a caller or a file gives: :class:`ExpectedAction` objects
    or mappings with ``name`` and ``arguments`` (``kwargs`` is read as ``arguments``, as
    benchmark files spell it). Raises ValueError naming the entry that is neither."""
    out: list[ExpectedAction] = []
    for i, a in enumerate(actions):
        if isinstance(a, ExpectedAction):
            out.append(a)
            continue
        if not isinstance(a, Mapping) or not isinstance(a.get("name"), str):
            raise ValueError(f"expected action {i} ({a!r}) is not a mapping with a 'name'")
        args = a.get("arguments", a.get("kwargs")) or {}
        if not isinstance(args, Mapping):
            raise ValueError(f"expected action {i} ({a['name']}): arguments must be a mapping")
        out.append(ExpectedAction(name=a["name"], arguments=dict(args)))
    return out


class ExpectationEvent(EventBase):
    """What a correct run does, stated before or during the run (or by an importer that
    knows the task's gold answer): the side-effecting calls it makes, in order, and the
    values its final answer states. ``explain`` holds the run against them."""

    kind: Literal["expectation"] = "expectation"
    actions: list[ExpectedAction] | None = Field(
        None, description="The side-effecting calls a correct run makes, in order; absent: "
        "not stated (an empty list: it makes none).")
    outputs: list[Any] | None = Field(
        None, description="Values a correct final answer states.")
    note: str | None = None


class StepEvent(EventBase):
    """A named unit of agent work that groups nested steps (plan, decide, reply...)."""

    kind: Literal["step"] = "step"
    name: str
    status: Literal["ok", "error"] = "ok"
    error: ErrorInfo | None = None
    output: Any = None


Event = Annotated[
    RunStartedEvent
    | RunEndedEvent
    | LLMCallEvent
    | ToolIntentEvent
    | ToolCallEvent
    | CheckpointEvent
    | RetryEvent
    | ErrorEvent
    | StepEvent
    | MessageEvent
    | ExpectationEvent
    | ApprovalEvent
    | PhaseEvent
    | RunResumedEvent,
    Field(discriminator="kind"),
]

PAYLOAD_FIELDS: frozenset[str] = frozenset(
    {"task_input", "metadata", "messages", "response", "arguments", "result", "output",
     "content", "actions", "outputs"}
)
"""Body fields that may be moved to content-addressed blobs when large."""

