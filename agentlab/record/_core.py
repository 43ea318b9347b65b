"""The base of a run recorder: who runs, under what governance, in which mode, and how its
events are built and emitted.

:class:`~agentlab.record.RunRecorder` adds the run's lifecycle, state, outcome and the
calls; the state, admission and pipeline modules work on this base, so they sit below the
recorder in the import graph.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from agentlab.approval import ApprovalManager, Approver, Policy
from agentlab.errors import PayloadTooLargeError, RecordingError
from agentlab.identity import SecretSource
from agentlab.model import PAYLOAD_FIELDS, EventStats, Grant, canonical, canonical_body
from agentlab.model._ids import Clock, IdFactory
from agentlab.record._calls import CallMode
from agentlab.record._context import frame_var
from agentlab.record._spec import ToolSpec
from agentlab.record._writer import BackgroundWriter
from agentlab.store import Appended, PendingEvent, RunStore

__all__ = ["NO_STATS", "Governance", "Phase", "RunCore", "checkpoint_body", "error_info",
           "note_recorded", "recorded_as"]

NO_STATS = EventStats()
Phase = Literal["read", "draft", "act"]


def error_info(exc: BaseException) -> dict[str, Any]:
    """An exception as the ``ErrorInfo`` fields."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    info: dict[str, Any] = {
        "type": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    attributes = {k: v for k, v in getattr(exc, "__dict__", {}).items()
                  if not k.startswith("_") and (v is None or isinstance(v, str | int | float | bool))}
    if attributes:
        info["attributes"] = dict(list(attributes.items())[:20])
    return info


def checkpoint_body(root: str, writes: list[str], deletes: list[str], normalized: list[str],
                    redacted: list[str]) -> dict[str, Any]:
    """A checkpoint event's fields (without ``kind``), in their stored order."""
    body: dict[str, Any] = {"root": root, "writes": writes}
    if deletes:
        body["deletes"] = deletes
    if normalized:
        body["normalized"] = normalized
    if redacted:
        body["redacted"] = redacted
    return body


def note_recorded(exc: BaseException, event_id: str) -> None:
    """Mark an exception as recorded by ``event_id`` (a failed tool call), so the run's own
    error event for it, if it escapes, refers to that event instead of counting it again."""
    try:
        if getattr(exc, "_agentlab_recorded_as", None) is None:
            exc._agentlab_recorded_as = event_id  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type that takes no attributes
        pass


def recorded_as(exc: BaseException) -> str | None:
    """The event that already recorded this exception, if any."""
    found = getattr(exc, "_agentlab_recorded_as", None)
    return found if isinstance(found, str) else None


@dataclass(slots=True)
class Governance:
    """What a run was given to govern its calls (made by ``record_run``)."""

    grants: tuple[str, ...] = ()
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)
    policy: Policy | None = None
    approver: Approver | None = None
    approval_timeout: timedelta = timedelta(hours=1)
    loaded: list[Grant] | None = None
    """The grant rows, read at the first governed call."""

    @property
    def active(self) -> bool:
        """Whether every tool call (not only scoped or side-effecting ones) is checked."""
        return self.policy is not None


class StateOfRun(Protocol):
    """What the call path needs of the run state."""

    def _write_served(self, values: Mapping[str, Any], deletes: Iterable[str],
                      recorded: bool) -> None: ...


class RunCore:
    """Who runs, under what, in which mode; event building. Fields are set by
    :class:`~agentlab.record.RunRecorder`."""

    run_id: str
    store: RunStore
    writer: BackgroundWriter
    workflow: str
    agent: str
    phase: Phase | None
    governance: Governance
    approvals: ApprovalManager
    mode: CallMode
    state: StateOfRun
    _clock: Clock
    _new_id: IdFactory
    _lazy_ids: bool
    _started: bool
    _ended: bool
    _max_payload: int
    _occurrences: dict[str, int]
    _enqueue: Callable[[PendingEvent], None]
    _governed: bool
    _taken_up_us: int | None
    """When this process took up a resumed run (None for a new run)."""

    def _parent_id(self) -> str | None:
        frame = frame_var.get()
        return frame.event_id if frame is not None else None

    def _build(
        self,
        kind: str,
        body: dict[str, Any],
        *,
        event_id: str | None = None,
        parent_id: str | Literal[False] | None = False,
        ts_ns: int | None = None,
        stats: EventStats | None = None,
        blobs: dict[str, bytes] | None = None,
    ) -> PendingEvent:
        self._require_active()
        frame = frame_var.get()
        return self._assemble(
            kind, body, event_id or self._new_id(),  # always set here: callers use the id
            self._parent_id() if parent_id is False else parent_id,
            (ts_ns if ts_ns is not None else self._clock()) // 1000,
            frame is not None and frame.inside_tool, stats, blobs)

    def _assemble(self, kind: str, body: dict[str, Any], event_id: str, parent_id: str | None,
                  ts_us: int, in_tool: bool, stats: EventStats | None,
                  blobs: dict[str, bytes] | None) -> PendingEvent:
        """The event from its body and the fields :meth:`_build` fixed on the caller (a
        deferred checkpoint has them fixed at assignment and its body made on the writer)."""
        body["kind"] = kind
        if in_tool:
            body["in_tool"] = True
        data = canonical_body(body)
        if len(data) > self._max_payload:
            self._check_sizes(kind, body)
        return PendingEvent(self.run_id, event_id, parent_id, ts_us, kind, data, blobs or None,
                            stats)

    def _require_active(self) -> None:
        if self._ended or not self._started:
            state = "has ended" if self._ended else "has not started (use it in a with block)"
            raise RecordingError(f"run {self.run_id} {state}; nothing can be recorded in it now")

    def _check_sizes(self, kind: str, body: Mapping[str, Any]) -> None:
        """Raise as the store would: a payload field over the limit, or the rest of the body
        (errors, tracebacks...) over it once payloads are moved to blobs."""
        for name in PAYLOAD_FIELDS.intersection(body):
            size = len(canonical(body[name])[0])
            if size > self._max_payload:
                raise PayloadTooLargeError(f"{kind} {name}", size, self._max_payload)
        rest = len(canonical({k: v for k, v in body.items() if k not in PAYLOAD_FIELDS})[0])
        if rest > self._max_payload:
            raise PayloadTooLargeError(f"{kind} event (fields other than payloads)", rest,
                                       self._max_payload)

    def _emit(self, kind: str, body: dict[str, Any], **kw: Any) -> str:
        if not self.mode.live:
            frame = frame_var.get()
            if frame is not None and frame.inside_tool:
                body["in_tool"] = True  # the mode must know it is a tool's own doing
            already = self.mode.recorded_as(kind, body)
            if already is not None:
                return already
        ev = self._build(kind, body, **kw)
        self.writer.enqueue(ev)
        return str(ev.event_id)

    def _emit_durable(self, kind: str, body: dict[str, Any], **kw: Any) -> Appended:
        ev = self._build(kind, body, **kw)
        return self.writer.write_now([ev])[0]

    def _emit_checkpoint(self, root: str, writes: list[str], deletes: list[str],
                         blobs: dict[str, bytes], normalized: list[str],
                         redacted: list[str]) -> None:
        self._emit("checkpoint", checkpoint_body(root, writes, deletes, normalized, redacted),
                   blobs=blobs, stats=NO_STATS)

    def _idempotency_key(self, spec: ToolSpec, arguments: Mapping[str, Any], args_data: bytes) -> str:
        if spec.idempotency_key is not None:
            return str(spec.idempotency_key(arguments))
        # Deterministic under replay: the same call in the same position gets the same key.
        base = f"{self.run_id}|{spec.name}|".encode() + args_data
        digest = hashlib.sha256(base).hexdigest()
        count = self._occurrences.get(digest, 0) + 1
        self._occurrences[digest] = count
        return f"{spec.name}:{digest[:24]}:{count}"

    def flush(self) -> None:
        """Wait until everything recorded so far is committed; raise if the store refused
        any of this run's events."""
        self.writer.flush()
        self.writer.check([self.run_id])
