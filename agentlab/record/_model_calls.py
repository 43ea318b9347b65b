"""Model calls through the stages: plan, then call the model, serve the recorded response,
or ask a stub; then record the request and the response."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from agentlab.model import EventStats, LLMCallEvent
from agentlab.record._calls import LIVE_PLAN, ModelCall, Plan, Serve, Stub, replayed_marker
from agentlab.record._context import frame_var
from agentlab.record._core import RunCore, error_info, note_recorded
from agentlab.record._llm import ModelReply
from agentlab.record._prices import price_call
from agentlab.record._serve import served_value
from agentlab.record._spec import ModelSpec, return_type

__all__ = ["call_model", "call_model_async", "check_messages", "model_event", "model_request"]

def check_messages(messages: Any, name: str = "messages") -> list[Any]:
    """The messages of a model call as a list, or a TypeError that shows their shape."""
    if isinstance(messages, str | bytes | Mapping) or messages is None:
        raise TypeError(f"{name} must be a sequence of messages, e.g. [{{'role': 'user', "
                        f"'content': '...'}}]; got a {type(messages).__name__}")
    return list(messages)


def model_request(spec: ModelSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> ModelCall:
    arguments = spec.arguments(args, kwargs)
    messages = check_messages(arguments.pop(spec.messages, None), spec.messages)
    model = spec.model or arguments.pop("model", None)
    if not isinstance(model, str) or not model:
        raise TypeError(f"{spec.name}: no model name; pass model=... to the call or @llm")
    frame = frame_var.get()
    return ModelCall(spec, fn, args, kwargs, model, list(messages), arguments,
                     nested=frame is not None and frame.inside_tool)


def model_event(model: str, messages: list[Any], *, response: Any = None,
                input_tokens: int | None = None, output_tokens: int | None = None,
                provider_cost: float | None = None, provider: str | None = None,
                parameters: dict[str, Any] | None = None, duration_ms: float | None = None,
                error: BaseException | None = None, replayed: dict[str, Any] | None = None,
                prices: Any = None) -> tuple[dict[str, Any], EventStats]:
    """The body and summary counts of an ``llm_call`` event. A call served from the record
    cost nothing here: its cost is left out (the tokens stay, as recorded)."""
    cost, source = (None, "unknown") if replayed is not None else price_call(
        model, input_tokens, output_tokens, provider_cost, prices)
    body: dict[str, Any] = {"model": model, "messages": messages, "cost_source": source}
    for key, value in (("parameters", parameters or None), ("response", response),
                       ("input_tokens", input_tokens), ("output_tokens", output_tokens),
                       ("cost_usd", cost), ("provider", provider),
                       ("duration_ms", duration_ms), ("replayed", replayed)):
        if value is not None:
            body[key] = value
    frame = frame_var.get()
    if frame is not None and frame.reads:
        body["reads"] = sorted(frame.reads)
    if error is not None:
        body["status"] = "error"
        body["error"] = getattr(error, "_agentlab_error_info", None) or error_info(error)
    stats = EventStats(steps=1, llm_calls=1, errors=1 if error is not None else 0,
                       cost_usd=cost or 0.0, input_tokens=input_tokens or 0,
                       output_tokens=output_tokens or 0,
                       unpriced=1 if cost is None and replayed is None else 0)
    return body, stats


def _model_plan(run: RunCore, call: ModelCall) -> Plan:
    plan = LIVE_PLAN if run.mode.live else run.mode.plan_model(call)
    call.replayed = replayed_marker(plan)
    return plan


def _model_annotation(call: ModelCall) -> Any:
    if call.spec.returns is not None:
        return call.spec.returns
    hint = return_type(call.fn)
    return None if hint is ModelReply else hint


def _finish_model(run: RunCore, call: ModelCall, t0: int, reply: Any,
                  error: BaseException | None) -> Any:
    got = reply if isinstance(reply, ModelReply) else ModelReply(reply)
    response = got.response
    body, stats = model_event(
        got.model or call.model, call.messages, response=response,
        input_tokens=got.input_tokens, output_tokens=got.output_tokens,
        provider_cost=got.cost_usd, provider=call.spec.provider, parameters=call.parameters,
        duration_ms=(run._clock() - t0) / 1e6, error=error, replayed=call.replayed,
        prices=getattr(run, "_prices", None))
    event_id = run._emit("llm_call", body, stats=stats, ts_ns=t0)
    if error is not None:
        note_recorded(error, event_id)
    return response


def call_model(run: RunCore, spec: ModelSpec, fn: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
    """A model call through the stages: plan, execute (call the model, serve the recorded
    response, or a stub), record."""
    call = model_request(spec, fn, args, kwargs)
    ex = _model_plan(run, call).execution
    t0 = run._clock()
    try:
        if isinstance(ex, Serve):
            return _serve_model(run, call, t0, ex)
        reply = (ex.fn if isinstance(ex, Stub) else fn)(*args, **kwargs)
    except BaseException as exc:
        _finish_model(run, call, t0, None, exc)
        raise
    return _finish_model(run, call, t0, reply, None)


async def call_model_async(run: RunCore, spec: ModelSpec, fn: Callable[..., Any],
                           args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = model_request(spec, fn, args, kwargs)
    ex = _model_plan(run, call).execution
    t0 = run._clock()
    try:
        if isinstance(ex, Serve):
            return _serve_model(run, call, t0, ex)
        reply = (ex.fn if isinstance(ex, Stub) else fn)(*args, **kwargs)
        if inspect.isawaitable(reply):
            reply = await reply
    except BaseException as exc:
        _finish_model(run, call, t0, None, exc)
        raise
    return _finish_model(run, call, t0, reply, None)


def _serve_model(run: RunCore, call: ModelCall, t0: int, ex: Serve) -> Any:
    """A model call served from the record: the recorded response (or the substitute)
    with the recorded token counts goes to the record, validated into the function's type
    to the agent; nothing is asked of the model, nothing costs."""
    value = served_value(ex, _model_annotation(call))
    ev = ex.event
    assert isinstance(ev, LLMCallEvent)
    response = ex.value if ex.substitutes else ev.response
    _finish_model(run, call, t0, ModelReply(response, ev.input_tokens, ev.output_tokens,
                                            None, ev.model), None)
    return value
