"""The call path: every tool and model call passes the same named stages.

    bind → plan → admit → intent → execute → record

*bind* turns the call into arguments (and an idempotency key for side effects); *plan* asks
the run's mode how to admit and execute it (:mod:`agentlab.record._calls`); *admit* runs
governance (:mod:`agentlab.record._admission`); *intent* commits the write-ahead record of a
side effect about to execute; *execute* runs the function, serves the recorded result,
calls a stub or reconciles an interrupted call; *record* writes the call's event. A replay
swaps only what *plan* returns, so admission and recording are the same code in every mode.

A read-only, ungoverned call in a plain recording skips all that for the fast path
(:func:`call_read_only`): one serialisation and a queue append.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import orjson

from agentlab.errors import RecordingError, ResumeBlockedError
from agentlab.identity import scrubbed_logger
from agentlab.model import Denial, EventStats, LLMCallEvent, canonical, canonical_body
from agentlab.model._canonical import _default as _json_default
from agentlab.model._freshness import result_age
from agentlab.record._admission import (
    admit,
    admit_checked,
    admit_edit,
    admit_recorded,
    credential_for_grant,
    refuse,
    validate_edit,
)
from agentlab.record._calls import (
    LIVE,
    LIVE_PLAN,
    Plan,
    Reconcile,
    Serve,
    Stub,
    ToolCall,
    replayed_marker,
)
from agentlab.record._context import (
    Credential,
    Frame,
    credential_var,
    external_call_id_var,
    frame_var,
)
from agentlab.record._core import NO_STATS, RunCore, error_info, note_recorded
from agentlab.record._serve import served_value
from agentlab.record._spec import NOT_APPLIED, ToolSpec, return_type
from agentlab.store import PendingEvent

__all__ = ["call_read_only", "call_tool", "call_tool_async", "warn_unrecorded"]

_TOOL_OK = EventStats(steps=1, tool_calls=1)
_TOOL_ERR = EventStats(steps=1, tool_calls=1, errors=1)
_TOOL_STALE = EventStats(steps=1, tool_calls=1, stale=1)
_FAST_OPTS = orjson.OPT_STRICT_INTEGER  # the stored form: keys in the agent's order
_orjson_dumps = orjson.dumps
_new_tuple = tuple.__new__

log = scrubbed_logger("agentlab.record")
_warned: set[tuple[str, str]] = set()


def warn_unrecorded(run_id: str, tool: str) -> None:
    if (run_id, tool) not in _warned:
        _warned.add((run_id, tool))
        log.warning("agentlab: %s called after run %s ended; running it unrecorded", tool, run_id)


# -- the fast path --------------------------------------------------------------------------

def call_read_only(run: RunCore, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
    """A read-only, ungoverned call in a plain recording: about as little work as a
    recorded call can be."""
    params = spec.params
    if kwargs or spec.signature is not None or spec.skip_first or len(args) > len(params):
        arguments = spec.arguments(args, kwargs)
    elif len(args) == 1:
        arguments = {params[0]: args[0]}
    else:
        arguments = dict(zip(params, args, strict=False))
    parent = frame_var.get()
    frame = Frame(None if run._lazy_ids else run._new_id(), run._new_id, True)  # inside_tool
    token = frame_var.set(frame)
    clock = run._clock
    t0 = clock()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        frame_var.reset(token)
        call = ToolCall(spec, fn, args, kwargs, arguments)
        _record(run, call, frame.event_id, parent.event_id if parent is not None else None,
                t0, frame, 1, failed=exc)
        raise
    t1 = clock()
    frame_var.reset(token)
    body = {"kind": "tool_call", "tool": spec.name, "arguments": arguments,
            "result": result, "duration_ms": (t1 - t0) / 1e6}
    if parent is None:
        parent_id = None
    else:
        parent_id = parent.event_id
        if parent.inside_tool:
            body["in_tool"] = True
    if (external_id := external_call_id_var.get()) is not None:
        body["call_id"] = external_id
    if frame.reads:
        body["reads"] = sorted(frame.reads)
    try:
        # orjson writes NaN and Infinity as null: only then can the fast bytes be wrong.
        # (An escaped NUL survives in the bytes; the writer repairs it off this path.)
        data = _orjson_dumps(body, default=_json_default, option=_FAST_OPTS)
        if data.rfind(b"null") >= 0:  # the same test as ``in``, at half the cost here
            data = canonical_body(body)
    except (TypeError, ValueError):
        data = canonical_body(body)
    if len(data) > run._max_payload:
        run._check_sizes("tool_call", body)
    run._enqueue(_new_tuple(PendingEvent, (
        run.run_id, frame._id, parent_id, t0 // 1000, "tool_call", data, None, _TOOL_OK,
    )))
    return result


# -- the stages -----------------------------------------------------------------------------

def _bind(run: RunCore, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> ToolCall:
    call = ToolCall(spec, fn, args, kwargs, spec.arguments(args, kwargs))
    frame = frame_var.get()
    call.nested = frame is not None and frame.inside_tool
    if spec.side_effect:
        call.key = call.gate_key = run._idempotency_key(spec, call.arguments,
                                                        canonical(call.arguments)[0])
    elif spec.scope is not None or run._governed:
        call.gate_key = run._idempotency_key(spec, call.arguments, canonical(call.arguments)[0])
    return call


def _plan(run: RunCore, call: ToolCall) -> Plan:
    plan = LIVE_PLAN if run.mode.live else run.mode.plan_tool(call)
    call.replayed = replayed_marker(plan)
    return plan


def _admit(run: RunCore, call: ToolCall, plan: Plan) -> None:
    """Admission as the plan asks; a refusal is recorded and raised (ToolDeniedError)."""
    spec = call.spec
    if plan.admission == "recorded":
        assert plan.recorded is not None and not isinstance(plan.recorded, LLMCallEvent)
        ex = plan.execution
        adm = admit_recorded(run, spec, call.arguments, plan.recorded, call.replayed,
                             substituted=isinstance(ex, Serve) and ex.substitutes)
        recorded_args = plan.recorded.arguments
        if recorded_args != call.arguments:  # an approver edited the call in the record
            call.arguments = dict(recorded_args)
        call.fields = adm.fields
        return
    if plan.admission == "checked":
        call.fields = admit_checked(run, spec, call.arguments).fields
        return
    if spec.scope is None and not spec.side_effect and not run._governed:
        return
    args, kwargs = call.args, call.kwargs
    adm = admit(run, spec, call.arguments, call.gate_key, lambda: spec.arguments(args, kwargs))
    if adm.edited is not None:
        try:
            call.args, call.kwargs = validate_edit(spec, call.fn, args, adm.edited)
        except ValueError as exc:
            raise refuse(run, spec, adm.edited, Denial(
                code="invalid_edit", reason=str(exc), rule=adm.fields.get("policy_rule")),
                adm.fields) from None
        call.arguments = spec.arguments(call.args, call.kwargs)
        adm = admit_edit(run, spec, call.arguments, adm)
    call.fields, call.credential = adm.fields, adm.credential


def _intent(run: RunCore, call: ToolCall) -> dict[str, Any] | None:
    """The write-ahead intent of a side effect about to execute: built here, committed by
    the caller before the action runs."""
    if call.key is None:
        return None
    call.intent_id = run._new_id()
    intent = {"tool": call.name, "call_id": call.intent_id, "arguments": call.arguments,
              "idempotency_key": call.key, **call.fields}
    if call.compensates is not None:
        intent["compensates"] = call.compensates
    return intent


def _retry_or_raise(run: RunCore, spec: ToolSpec, exc: BaseException, attempt: int) -> float:
    if attempt > spec.retries or not isinstance(exc, spec.retry_on):
        raise exc
    delay = float(spec.backoff_s * (2 ** (attempt - 1)))
    run._emit("retry", {"target": spec.name, "attempt": attempt, "error": error_info(exc),
                        "delay_s": delay}, stats=EventStats(retries=1))
    return delay


class _Attempts:
    """How many times the live function ran (for the recorded ``attempt``)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 1


def _run_live(run: RunCore, call: ToolCall, frame: Frame, attempts: _Attempts) -> Any:
    while True:
        token = frame_var.set(frame)
        try:
            return call.fn(*call.args, **call.kwargs)
        except Exception as exc:
            frame_var.reset(token)
            delay = _retry_or_raise(run, call.spec, exc, attempts.n)
            attempts.n += 1
            if delay:
                time.sleep(delay)
        finally:
            if frame_var.get() is frame:
                frame_var.reset(token)


def _reconciled(run: RunCore, call: ToolCall, ex: Reconcile) -> Any:
    """The result of an interrupted call that took effect, or NOT_APPLIED."""
    hook = call.spec.reconcile
    call.intent_id = ex.intent.call_id
    if hook is None:
        what = (f"failed with the error that ended the run (seq {ex.failed_seq}), perhaps "
                "after taking effect" if ex.failed_seq is not None else
                "has no recorded result: the process died while it ran")
        raise ResumeBlockedError(
            f"{call.name} (idempotency key {call.key}, intent at seq {ex.intent.seq}) {what}; "
            "the tool has no reconcile hook to ask whether it took effect: check the system "
            "by hand, then give the tool reconcile= (@tool(..., reconcile=fn)) before "
            "resuming again")
    outcome = hook(dict(call.arguments), str(call.key))
    call.fields["reconciled"] = outcome is not NOT_APPLIED
    return outcome


def _execute(run: RunCore, call: ToolCall, plan: Plan, frame: Frame, attempts: _Attempts) -> Any:
    ex = plan.execution
    if ex is LIVE:
        return _run_live(run, call, frame, attempts)
    if isinstance(ex, Serve):
        return served_value(ex, return_type(call.fn))
    if isinstance(ex, Stub):
        return ex.fn(*call.args, **call.kwargs)
    assert isinstance(ex, Reconcile)
    outcome = _reconciled(run, call, ex)
    if outcome is NOT_APPLIED:
        return _run_live(run, call, frame, attempts)
    return outcome


def _record(run: RunCore, call: ToolCall, event_id: str, parent: str | None, t0: int,
            frame: Frame, attempt: int, *, result: Any = None,
            failed: BaseException | None = None, durable: bool = False) -> None:
    """The call's event: its result or error, what admission decided, where it came from."""
    body: dict[str, Any] = {"tool": call.name, "arguments": call.arguments,
                            "duration_ms": (run._clock() - t0) / 1e6}
    if call.fields:
        body.update(call.fields)
    if call.intent_id is not None:
        body["call_id"] = call.intent_id
    elif (external_id := external_call_id_var.get()) is not None:
        body["call_id"] = external_id
    if attempt > 1:
        body["attempt"] = attempt
    if frame.reads:
        body["reads"] = sorted(frame.reads)
    if call.replayed is not None:
        body["replayed"] = call.replayed
    if call.compensates is not None:
        body["compensates"] = call.compensates
    if failed is not None:
        body["status"] = "error"
        body["error"] = getattr(failed, "_agentlab_error_info", None) or error_info(failed)
        stats = _TOOL_ERR
    else:
        body["result"] = result
        # A served result is judged as the recorded one was: by the age it reports.
        _mark_stale(call.spec, body, result)
        stats = _TOOL_STALE if "stale" in body else _TOOL_OK
    if call.spec.side_effect:
        body["side_effect"] = True
    if call.key is not None and call.intent_id is not None:
        body["intent_id"] = call.intent_id
        body["idempotency_key"] = call.key
    if durable:
        _record_durably(run, call, body, event_id, parent, t0, stats)
    else:
        run._emit("tool_call", body, event_id=event_id, parent_id=parent, ts_ns=t0, stats=stats)
    if failed is not None:
        note_recorded(failed, event_id)


def _record_durably(run: RunCore, call: ToolCall, body: dict[str, Any], event_id: str,
                    parent: str | None, t0: int, stats: EventStats) -> None:
    ev = run._build("tool_call", body, event_id=event_id, parent_id=parent, ts_ns=t0,
                    stats=stats)
    try:
        run.writer.write_now([ev])
    except RecordingError:
        raise
    except Exception as exc:
        # The action has run: its result must not be lost, nor the caller told it failed
        # (it might do it again). Queue the record for the writer to retry.
        log.warning("agentlab: result of %s in run %s not committed yet (%s); queued "
                    "for retry", call.name, run.run_id, exc)
        run.writer.enqueue(ev)


def _mark_stale(spec: ToolSpec, body: dict[str, Any], result: Any) -> None:
    """Note a result older than the tool's freshness bound (by the age it reports)."""
    if spec.freshness is None:
        return
    age = result_age(result)
    bound = spec.freshness.total_seconds()
    if age is not None and age > bound:
        body["stale"] = {"age_s": age, "bound_s": bound}


def _prepare(run: RunCore, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any], compensates: int | None) -> tuple[ToolCall, Plan]:
    call = _bind(run, spec, fn, args, kwargs)
    call.compensates = compensates
    return call, _plan(run, call)


def call_tool(run: RunCore, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any], *, compensates: int | None = None) -> Any:
    """Governed, side-effecting or retried tools, and every tool call outside a plain
    recording: all stages."""
    call, plan = _prepare(run, spec, fn, args, kwargs, compensates)
    _admit(run, call, plan)
    parent = run._parent_id()
    if plan.execution is LIVE and (intent := _intent(run, call)) is not None:
        run._emit_durable("tool_intent", intent, event_id=call.intent_id, stats=NO_STATS)
    x = _Executing.begin(run, call, plan, parent)
    cred_token = credential_var.set(call.credential)
    try:
        if isinstance(plan.execution, Reconcile):
            call.credential = _reconcile_credential(run, call)
            credential_var.set(call.credential)
        result = _execute(run, call, plan, x.frame, x.attempts)
        _served_state(run, plan, x.frame)
    except BaseException as exc:
        x.record(run, call, failed=exc)
        raise
    finally:
        credential_var.reset(cred_token)
    x.record(run, call, result=result)
    return result


def _served_state(run: RunCore, plan: Plan, frame: Frame) -> None:
    """A tool served from the record leaves the state it wrote when it ran (written inside
    its own frame, as it was)."""
    ex = plan.execution
    if not isinstance(ex, Serve) or ex.substitutes or run.mode.live:
        return
    written = run.mode.served_state(ex.event)
    if written is None:
        return
    token = frame_var.set(frame)
    try:
        run.state._write_served(*written)
    finally:
        frame_var.reset(token)


def _reconcile_credential(run: RunCore, call: ToolCall) -> Credential | None:
    """The credential of the grant the interrupted call's intent was admitted under: the
    reconcile hook (or the re-executed call) needs to reach the system."""
    return credential_for_grant(run, call.spec, call.fields.get("grant"))


async def call_tool_async(run: RunCore, spec: ToolSpec, fn: Callable[..., Any],
                          args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The stages for an ``async`` tool. Admission may wait for a human and intents and
    results of side effects are committed synchronously: both run in a worker thread, so
    the event loop keeps serving."""
    call, plan = _prepare(run, spec, fn, args, kwargs, None)
    if plan.admission == "live" and (spec.scope is not None or spec.side_effect
                                     or run._governed):
        await asyncio.to_thread(_admit, run, call, plan)
    else:
        _admit(run, call, plan)
    parent = run._parent_id()
    if plan.execution is LIVE and (intent := _intent(run, call)) is not None:
        ev = run._build("tool_intent", intent, event_id=call.intent_id, stats=NO_STATS)
        await asyncio.to_thread(run.writer.write_now, [ev])
    x = _Executing.begin(run, call, plan, parent)
    cred_token = credential_var.set(call.credential)
    try:
        result = await _execute_async(run, call, plan, x.frame, x.attempts)
        _served_state(run, plan, x.frame)
    except BaseException as exc:
        await x.record_async(run, call, failed=exc)
        raise
    finally:
        credential_var.reset(cred_token)
    await x.record_async(run, call, result=result)
    return result


async def _execute_async(run: RunCore, call: ToolCall, plan: Plan, frame: Frame,
                         attempts: _Attempts) -> Any:
    ex = plan.execution
    if isinstance(ex, Serve):
        return served_value(ex, return_type(call.fn))
    if isinstance(ex, Stub):
        value = ex.fn(*call.args, **call.kwargs)
        return await value if inspect.isawaitable(value) else value
    if isinstance(ex, Reconcile):
        call.credential = _reconcile_credential(run, call)
        credential_var.set(call.credential)
        outcome = await asyncio.to_thread(_reconciled, run, call, ex)
        if outcome is not NOT_APPLIED:
            return outcome
    while True:
        token = frame_var.set(frame)
        try:
            return await call.fn(*call.args, **call.kwargs)
        except Exception as exc:
            # As on the sync path: a retry belongs to the enclosing step.
            frame_var.reset(token)
            delay = _retry_or_raise(run, call.spec, exc, attempts.n)
            attempts.n += 1
            if delay:
                await asyncio.sleep(delay)
        finally:
            if frame_var.get() is frame:
                frame_var.reset(token)


class _Executing:
    """A call from the start of its execution to its record: its event id, enclosing
    step, start time, frame for nested calls, attempts, and whether its record is durable
    (a side effect that acts: its result is committed before the caller goes on)."""

    __slots__ = ("attempts", "durable", "event_id", "frame", "parent", "t0")

    def __init__(self, event_id: str, parent: str | None, t0: int, durable: bool) -> None:
        self.event_id = event_id
        self.parent = parent
        self.t0 = t0
        self.durable = durable
        self.frame = Frame(event_id, inside_tool=True)
        self.attempts = _Attempts()

    @classmethod
    def begin(cls, run: RunCore, call: ToolCall, plan: Plan, parent: str | None) -> _Executing:
        acts = plan.execution is LIVE or isinstance(plan.execution, Reconcile)
        return cls(run._new_id(), parent, run._clock(), call.key is not None and acts)

    def record(self, run: RunCore, call: ToolCall, *, result: Any = None,
               failed: BaseException | None = None) -> None:
        _record(run, call, self.event_id, self.parent, self.t0, self.frame, self.attempts.n,
                result=result, failed=failed, durable=self.durable)

    async def record_async(self, run: RunCore, call: ToolCall, *, result: Any = None,
                           failed: BaseException | None = None) -> None:
        if self.durable:
            await asyncio.to_thread(self.record, run, call, result=result, failed=failed)
        else:
            self.record(run, call, result=result, failed=failed)
