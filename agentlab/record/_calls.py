"""The part of a run recorder that builds and emits events, and runs tool calls.

Split from :mod:`agentlab.record._run` (which adds the run's lifecycle, state, LLM calls and
outcome) so each module holds one concept. The hot path is ``_call_tool``: the recorded
read-only call, kept to as little work as a recorded call can be.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import orjson

from agentlab.errors import PayloadTooLargeError, RecordingError
from agentlab.identity import scrubbed_logger
from agentlab.model import PAYLOAD_FIELDS, Denial, EventStats, canonical, canonical_body
from agentlab.model._canonical import _default as _json_default
from agentlab.model._freshness import result_age
from agentlab.model._ids import Clock, IdFactory
from agentlab.record._context import Credential, Frame, credential_var, frame_var
from agentlab.record._tool import ToolSpec
from agentlab.record._writer import BackgroundWriter
from agentlab.store import Appended, PendingEvent

__all__ = ["NO_STATS", "RunCore", "error_info", "note_recorded", "recorded_as"]

_TOOL_OK = EventStats(steps=1, tool_calls=1)
_TOOL_ERR = EventStats(steps=1, tool_calls=1, errors=1)
_TOOL_STALE = EventStats(steps=1, tool_calls=1, stale=1)
_NONE = NO_STATS = EventStats()
_FAST_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_orjson_dumps = orjson.dumps
_new_tuple = tuple.__new__


log = scrubbed_logger("agentlab.record")
_warned: set[tuple[str, str]] = set()


def _warn_unrecorded(run_id: str, tool: str) -> None:
    if (run_id, tool) not in _warned:
        _warned.add((run_id, tool))
        log.warning("agentlab: %s called after run %s ended; running it unrecorded", tool, run_id)



def error_info(exc: BaseException) -> dict[str, Any]:
    """An exception as the ``ErrorInfo`` fields."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return {
        "type": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }



def _mark_stale(spec: ToolSpec, body: dict[str, Any], result: Any) -> None:
    """Note a result older than the tool's freshness bound (by the age it reports)."""
    if spec.freshness is None:
        return
    age = result_age(result)
    bound = spec.freshness.total_seconds()
    if age is not None and age > bound:
        body["stale"] = {"age_s": age, "bound_s": bound}


class _Prepared(NamedTuple):
    """A call on the full path after governance: what to run it with and record."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    arguments: dict[str, Any]
    intent_id: str | None
    intent: dict[str, Any] | None
    governed: dict[str, Any]
    credential: Credential | None


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


class RunCore:
    """Event building and tool calls; :class:`~agentlab.record.RunRecorder` sets the fields."""

    run_id: str
    writer: BackgroundWriter
    _clock: Clock
    _new_id: IdFactory
    _lazy_ids: bool
    _started: bool
    _ended: bool
    _max_payload: int
    _occurrences: dict[str, int]
    _enqueue: Callable[[PendingEvent], None]
    _governed: bool

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
        body["kind"] = kind
        data = canonical_body(body)
        if len(data) > self._max_payload:
            self._check_sizes(kind, body)
        return PendingEvent(
            self.run_id,
            event_id or self._new_id(),  # always set here: callers use the id
            self._parent_id() if parent_id is False else parent_id,
            (ts_ns if ts_ns is not None else self._clock()) // 1000,
            kind,
            data,
            blobs or None,
            stats,
        )

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
        ev = self._build(kind, body, **kw)
        self.writer.enqueue(ev)
        return str(ev.event_id)

    def _emit_durable(self, kind: str, body: dict[str, Any], **kw: Any) -> Appended:
        ev = self._build(kind, body, **kw)
        return self.writer.write_now([ev])[0]

    # -- tools ------------------------------------------------------------------------------

    def _idempotency_key(self, spec: ToolSpec, arguments: Mapping[str, Any], args_data: bytes) -> str:
        if spec.idempotency_key is not None:
            return str(spec.idempotency_key(arguments))
        # Deterministic under replay: the same call in the same position gets the same key.
        base = f"{self.run_id}|{spec.name}|".encode() + args_data
        digest = hashlib.sha256(base).hexdigest()
        count = self._occurrences.get(digest, 0) + 1
        self._occurrences[digest] = count
        return f"{spec.name}:{digest[:24]}:{count}"

    def _tool_body(self, spec: ToolSpec, call_id: str | None, arguments: dict[str, Any],
                   frame: Frame, t0: int, attempt: int,
                   governed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tool": spec.name, "arguments": arguments, "duration_ms": (self._clock() - t0) / 1e6,
        }
        if governed:
            body.update(governed)
        if call_id is not None:
            body["call_id"] = call_id
        if attempt > 1:
            body["attempt"] = attempt
        if frame.reads:
            body["reads"] = sorted(frame.reads)
        return body

    def _retry_or_raise(self, spec: ToolSpec, exc: BaseException, attempt: int) -> float:
        if attempt > spec.retries or not isinstance(exc, spec.retry_on):
            raise exc
        delay = float(spec.backoff_s * (2 ** (attempt - 1)))
        self._emit("retry", {"target": spec.name, "attempt": attempt, "error": error_info(exc),
                             "delay_s": delay}, stats=EventStats(retries=1))
        return delay

    def _before(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> _Prepared:
        """Arguments, governance and the write-ahead intent of a call on the full path."""
        arguments = spec.arguments(args, kwargs)
        key: str | None = None
        if spec.side_effect:
            key = self._idempotency_key(spec, arguments, canonical(arguments)[0])
        governed: dict[str, Any] = {}
        cred: Credential | None = None
        if spec.scope is not None or spec.side_effect or self._governed:
            from agentlab.record._governed import admit, validate_edit

            adm = admit(self, spec, arguments, key,  # type: ignore[arg-type]
                        lambda: spec.arguments(args, kwargs))
            governed, cred = adm.fields, adm.credential
            if adm.edited is not None:
                try:
                    args, kwargs = validate_edit(spec, fn, args, adm.edited)
                except ValueError as exc:
                    from agentlab.record._governed import refuse

                    raise refuse(self, spec, adm.edited,  # type: ignore[arg-type]
                                 Denial(code="invalid_edit", reason=str(exc),
                                        rule=governed.get("policy_rule")),
                                 governed) from None
                arguments = spec.arguments(args, kwargs)
                from agentlab.record._governed import admit_edit

                adm = admit_edit(self, spec, arguments, adm)  # type: ignore[arg-type]
                governed, cred = adm.fields, adm.credential
        if key is None:
            return _Prepared(args, kwargs, arguments, None, None, governed, cred)
        intent_id = self._new_id()
        intent = {"tool": spec.name, "call_id": intent_id, "arguments": arguments,
                  "idempotency_key": key, **governed}
        return _Prepared(args, kwargs, arguments, intent_id, intent, governed, cred)

    def _after(self, spec: ToolSpec, body: dict[str, Any], event_id: str, parent: str | None,
               t0: int, intent: dict[str, Any] | None, failed: bool) -> None:
        stats = _TOOL_ERR if failed else (_TOOL_STALE if "stale" in body else _TOOL_OK)
        if intent is None:
            self._emit("tool_call", body, event_id=event_id, parent_id=parent, ts_ns=t0,
                       stats=stats)
            return
        body["side_effect"] = True
        body["intent_id"] = intent["call_id"]
        body["idempotency_key"] = intent["idempotency_key"]
        ev = self._build("tool_call", body, event_id=event_id, parent_id=parent, ts_ns=t0,
                         stats=stats)
        try:
            self.writer.write_now([ev])
        except RecordingError:
            raise
        except Exception as exc:
            # The action has run: its result must not be lost, nor the caller told it failed
            # (it might do it again). Queue the record for the writer to retry.
            log.warning("agentlab: result of %s in run %s not committed yet (%s); queued "
                        "for retry", spec.name, self.run_id, exc)
            self.writer.enqueue(ev)

    def _call_tool(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        if self._ended:  # a thread or task that outlived its run
            _warn_unrecorded(self.run_id, spec.name)
            return fn(*args, **kwargs)
        if spec.governed or self._governed:
            return self._call_tool_full(spec, fn, args, kwargs)
        # The hot path for read-only tools: about as little work as a recorded call can be.
        params = spec.params
        if kwargs or spec.signature is not None or spec.skip_first or len(args) > len(params):
            arguments = spec.arguments(args, kwargs)
        elif len(args) == 1:
            arguments = {params[0]: args[0]}
        else:
            arguments = dict(zip(params, args, strict=False))
        parent = frame_var.get()
        frame = Frame(None if self._lazy_ids else self._new_id(), self._new_id)
        token = frame_var.set(frame)
        clock = self._clock
        t0 = clock()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            frame_var.reset(token)
            body = self._tool_body(spec, None, arguments, frame, t0, 1)
            body["status"] = "error"
            body["error"] = error_info(exc)
            self._after(spec, body, frame.event_id,
                        parent.event_id if parent is not None else None, t0, None, True)
            note_recorded(exc, frame.event_id)
            raise
        t1 = clock()
        frame_var.reset(token)
        body = {"kind": "tool_call", "tool": spec.name, "arguments": arguments,
                "result": result, "duration_ms": (t1 - t0) / 1e6}
        if frame.reads:
            body["reads"] = sorted(frame.reads)
        try:
            # orjson writes NaN and Infinity as null: only then can the fast bytes be wrong.
            # (An escaped NUL survives in the bytes; the writer repairs it off this path.)
            data = _orjson_dumps(body, default=_json_default, option=_FAST_OPTS)
            if b"null" in data:
                data = canonical_body(body)
        except (TypeError, ValueError):
            data = canonical_body(body)
        if len(data) > self._max_payload:
            self._check_sizes("tool_call", body)
        self._enqueue(_new_tuple(PendingEvent, (
            self.run_id, frame._id, parent.event_id if parent is not None else None,
            t0 // 1000, "tool_call", data, None, _TOOL_OK,
        )))
        return result

    def _call_tool_full(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> Any:
        """Governed and side-effecting tools (write-ahead), and tools with retries."""
        p = self._before(spec, fn, args, kwargs)
        parent = self._parent_id()
        if p.intent is not None:
            self._emit_durable("tool_intent", dict(p.intent), event_id=p.intent_id, stats=_NONE)
        event_id = self._new_id()
        frame = Frame(event_id)
        t0 = self._clock()
        attempt = 1
        cred_token = credential_var.set(p.credential)
        try:
            while True:
                token = frame_var.set(frame)
                try:
                    result = fn(*p.args, **p.kwargs)
                    break
                except Exception as exc:
                    frame_var.reset(token)
                    delay = self._retry_or_raise(spec, exc, attempt)
                    attempt += 1
                    if delay:
                        time.sleep(delay)
                    continue
                finally:
                    if frame_var.get() is frame:
                        frame_var.reset(token)
        except BaseException as exc:
            body = self._tool_body(spec, p.intent_id, p.arguments, frame, t0, attempt,
                                   p.governed)
            body["status"] = "error"
            body["error"] = error_info(exc)
            self._after(spec, body, event_id, parent, t0, p.intent, True)
            note_recorded(exc, event_id)
            raise
        finally:
            credential_var.reset(cred_token)
        body = self._tool_body(spec, p.intent_id, p.arguments, frame, t0, attempt, p.governed)
        body["result"] = result
        _mark_stale(spec, body, result)
        self._after(spec, body, event_id, parent, t0, p.intent, False)
        return result

    async def _call_tool_async(self, spec: ToolSpec, fn: Callable[..., Any],
                               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._ended:
            _warn_unrecorded(self.run_id, spec.name)
            return await fn(*args, **kwargs)
        # Governance may wait for a human: off the event loop, in the caller's context.
        p = await asyncio.to_thread(self._before, spec, fn, args, kwargs)
        parent = self._parent_id()
        event_id = self._new_id()
        if p.intent is not None:
            ev = self._build("tool_intent", dict(p.intent), event_id=p.intent_id, stats=_NONE)
            await asyncio.to_thread(self.writer.write_now, [ev])
        frame = Frame(event_id)
        token = frame_var.set(frame)
        cred_token = credential_var.set(p.credential)
        t0 = self._clock()
        attempt = 1
        try:
            while True:
                try:
                    result = await fn(*p.args, **p.kwargs)
                    break
                except Exception as exc:
                    # As on the sync path: a retry belongs to the enclosing step.
                    frame_var.reset(token)
                    delay = self._retry_or_raise(spec, exc, attempt)
                    token = frame_var.set(frame)
                    attempt += 1
                    if delay:
                        await asyncio.sleep(delay)
        except BaseException as exc:
            body = self._tool_body(spec, p.intent_id, p.arguments, frame, t0, attempt,
                                   p.governed)
            body["status"] = "error"
            body["error"] = error_info(exc)
            await self._after_async(spec, body, event_id, parent, t0, p.intent, True)
            note_recorded(exc, event_id)
            raise
        finally:
            credential_var.reset(cred_token)
            if frame_var.get() is frame:
                frame_var.reset(token)
        body = self._tool_body(spec, p.intent_id, p.arguments, frame, t0, attempt, p.governed)
        body["result"] = result
        _mark_stale(spec, body, result)
        await self._after_async(spec, body, event_id, parent, t0, p.intent, False)
        return result

    async def _after_async(self, spec: ToolSpec, body: dict[str, Any], event_id: str,
                           parent: str | None, t0: int, intent: dict[str, Any] | None,
                           failed: bool) -> None:
        if intent is None:
            self._after(spec, body, event_id, parent, t0, intent, failed)
        else:
            await asyncio.to_thread(self._after, spec, body, event_id, parent, t0, intent, failed)
