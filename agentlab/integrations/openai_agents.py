"""Record and govern an OpenAI Agents SDK agent (optional: ``agentlab[openai-agents]``).

Three pieces, all the SDK's own extension points:

* :class:`RecordingHooks`, the SDK's ``RunHooks`` passed as ``Runner.run(..., hooks=...)``:
  each model call becomes an agentlab ``llm_call`` (model, messages, response with its tool
  calls, tokens), each handoff a ``handoff`` step, and the current agent and its final
  output go into ``run.state``;
* :class:`RecordingProcessor`, a tracing processor (``add_trace_processor``) that records
  the SDK trace's id and workflow name as a step, and the spans that failed or tripped a
  guardrail into ``run.state`` (the SDK's spans carry neither call ids nor structured results,
  which is why the hooks and the tools do the recording);
* :func:`tool`, the SDK's ``function_tool`` whose calls go through agentlab's grants,
  policy and approvals and are recorded keyed on the model's tool-call id.

:class:`RecordedModel` wraps the agent's model so that its calls go through ``@al.llm``
instead of the hooks: recorded the same way, and served from the record in a replay.

A tool with ``needs_approval`` pauses the SDK run; :func:`pause_for_approvals` turns each
pending call into an agentlab approval request and persists the paused ``RunState`` in the
run's state, and :func:`resume_state` (in the same process or a new one) loads it, applies
the decisions taken through agentlab and returns the state to pass to ``Runner.run``.
"""

from __future__ import annotations

import functools
import inspect
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from agentlab.errors import ConfigError, ToolDeniedError

try:
    from agents import Agent, RunHooks, function_tool
    from agents.exceptions import AgentsException
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.tool import FunctionTool, default_tool_error_function
    from agents.tool_context import ToolContext
    from agents.tracing import Span, Trace, TracingProcessor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        f"agentlab.integrations.openai_agents needs the OpenAI Agents SDK ({exc}); install "
        "it with `pip install 'agentlab[openai-agents]'`") from exc

import agentlab.record as rec
from agentlab.integrations._call_memory import Outcome, blocked_error, calls_of
from agentlab.integrations._openai_agents_approvals import (
    PAUSED_KEY,
    ResumedState,
    pause_for_approvals,
    resume_state,
)
from agentlab.integrations._openai_agents_items import (
    _arguments,
    _items_json,
    _jsonable,
    _model_name,
    _response_json,
    response_from_record,
)
from agentlab.record import ModelReply, llm
from agentlab.record._context import external_call_id_var

__all__ = ["PAUSED_KEY", "RecordedModel", "RecordingHooks", "RecordingProcessor",
           "ResumedState", "SdkToolDeniedError", "pause_for_approvals", "resume_state",
           "tool"]

OnDenied = Literal["tell_model", "raise"]


# -- hooks: model calls, handoffs, the current agent ------------------------------------------

@dataclass
class _Asked:
    model: str
    messages: list[dict[str, Any]]
    t0: float


class RecordingHooks(RunHooks[Any]):
    """The SDK's run hooks recording into the active agentlab run (nothing outside one).

    Each model call is an ``llm_call`` (the agent's model name, the messages, the response
    with its tool calls and their ids, input and output tokens); each handoff a step
    ``handoff`` whose output names both agents; ``run.state["agent"]`` is the agent running
    and ``run.state["final_output"]`` the output the last one produced. A tool not made with
    :func:`tool` is recorded, ungoverned, as a step ``tool:<name>`` whose output holds the
    model's tool-call id, the arguments and the result.
    """

    def __init__(self) -> None:
        self._asked: dict[int, _Asked] = {}

    async def on_llm_start(self, context: Any, agent: Agent[Any], system_prompt: str | None,
                           input_items: list[Any]) -> None:
        if rec.current_run() is None:
            return
        self._asked[id(context)] = _Asked(_model_name(agent),
                                          _items_json(system_prompt, input_items),
                                          time.perf_counter())

    async def on_llm_end(self, context: Any, agent: Agent[Any],
                         response: ModelResponse) -> None:
        asked = self._asked.pop(id(context), None)
        run = rec.current_run()
        if asked is None or run is None or getattr(response, _RECORDED, False):
            return  # a RecordedModel recorded this call itself
        usage = response.usage
        run.llm_call(asked.model, messages=asked.messages, response=_response_json(response),
                     input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                     provider="openai-agents",
                     duration_ms=(time.perf_counter() - asked.t0) * 1000)

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        run = rec.current_run()
        if run is not None and run.state.get("agent") != agent.name:
            run.state["agent"] = agent.name

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        run = rec.current_run()
        if run is not None:
            run.state["final_output"] = _jsonable(output)

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        if rec.current_run() is None or getattr(tool, _GOVERNED, False):
            return  # a governed tool records its own call
        with rec.step(f"tool:{getattr(tool, 'name', type(tool).__name__)}") as s:
            s.output = {"tool_call_id": getattr(context, "tool_call_id", None),
                        "arguments": _arguments(getattr(context, "tool_arguments", None)),
                        "result": _jsonable(result)}

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        if rec.current_run() is None:
            return
        with rec.step("handoff") as s:
            s.output = {"from": from_agent.name, "to": to_agent.name}


# -- the model: recorded so that a replay serves it ------------------------------------------

_RECORDED = "_agentlab_recorded"
"""Set on a response a RecordedModel recorded, so that the hooks do not record it again."""


class RecordedModel(Model):
    """An SDK model whose calls go through ``@al.llm``: recorded like the hooks record them
    (plus the SDK's raw output items, under ``output``), and served from the record in an
    agentlab replay, so a replayed agent asks no model. :class:`RecordingHooks` leaves the
    calls it recorded to it. Streaming (``Runner.run_streamed``) passes through to the
    wrapped model; the hooks record those calls, and a replay cannot serve them."""

    def __init__(self, wrapped: Model, *, name: str | None = None) -> None:
        self.wrapped = wrapped
        self.name = name or _model_name(wrapped)

    async def get_response(self, system_instructions: str | None, input: Any,
                           model_settings: Any, tools: list[Any], output_schema: Any,
                           handoffs: list[Any], tracing: Any, **kwargs: Any) -> ModelResponse:
        async def ask() -> ModelResponse:
            return await self.wrapped.get_response(system_instructions, input, model_settings, tools,
                                              output_schema, handoffs, tracing, **kwargs)

        if rec.current_run() is None:
            return await ask()
        got: list[ModelResponse] = []

        async def model_request(messages: list[dict[str, Any]],
                                tools: list[str]) -> ModelReply:
            response = await ask()
            got.append(response)
            data = {**_response_json(response),
                    "output": [_jsonable(item) for item in response.output]}
            return ModelReply(data, response.usage.input_tokens, response.usage.output_tokens)

        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        offered = sorted({*(t.name for t in tools), *(h.tool_name for h in handoffs)})
        recorded = llm(model=self.name, provider="openai-agents", returns=dict)(model_request)
        data: Any = await recorded(_items_json(system_instructions, items), offered)
        response = got[0] if got else response_from_record(data)
        setattr(response, _RECORDED, True)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped.stream_response(*args, **kwargs)


# -- tracing: the trace and the spans that went wrong -----------------------------------------

class RecordingProcessor(TracingProcessor):
    """A tracing processor linking the active run to the SDK trace: a step
    ``openai-agents:trace`` whose output holds the trace id, the workflow name and the group
    id, and, when the trace ends, the spans that recorded an error or a tripped guardrail in
    ``run.state["openai_agents_spans"]``.

    Register it with ``agents.add_trace_processor(RecordingProcessor())`` (or
    ``set_trace_processors`` to send traces nowhere else). Outside a run it does nothing.
    """

    def __init__(self) -> None:
        self._spans: dict[str, list[dict[str, Any]]] = {}

    def on_trace_start(self, trace: Trace) -> None:
        if rec.current_run() is None:
            return
        self._spans[trace.trace_id] = []
        # A step, not state: a trace id is new each run, and a replay must rebuild the state.
        with rec.step("openai-agents:trace") as s:
            s.output = {"trace_id": trace.trace_id, "workflow": trace.name,
                        "group_id": (trace.export() or {}).get("group_id")}

    def on_span_start(self, span: Span[Any]) -> None:
        return None

    def on_span_end(self, span: Span[Any]) -> None:
        kept = self._spans.get(span.trace_id)
        if kept is None:
            return
        data = span.span_data.export()
        if span.error is None and not data.get("triggered"):
            return
        kept.append({"type": span.span_data.type, "name": data.get("name"),
                     "error": _jsonable(span.error), "triggered": data.get("triggered")})

    def on_trace_end(self, trace: Trace) -> None:
        kept = self._spans.pop(trace.trace_id, None)
        run = rec.current_run()
        if kept and run is not None:
            run.state["openai_agents_spans"] = kept

    def shutdown(self) -> None:
        self._spans.clear()

    def force_flush(self) -> None:
        return None


# -- tools ------------------------------------------------------------------------------------

_GOVERNED = "_agentlab_governed"
"""The attribute marking a FunctionTool made by :func:`tool` (its calls record themselves)."""


class SdkToolDeniedError(ToolDeniedError, AgentsException):
    """A :class:`~agentlab.ToolDeniedError` that is also one of the SDK's exceptions, so
    that the SDK ends the run with it as it is (it wraps other tool exceptions)."""

    def __init__(self, tool: str, denial: Any) -> None:
        super().__init__(tool, denial)
        self.run_data = None


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effect: bool = False,
    scope: Any = None,
    freshness: timedelta | None = None,
    needs_approval: Any = False,
    on_denied: OnDenied = "tell_model",
    **options: Any,
) -> Any:
    """The SDK's ``function_tool`` whose calls are agentlab tool calls of the active run.

    Each call is admitted by the run's grants and policy (``side_effect``, ``scope``,
    ``freshness`` and ``options`` as for ``@al.tool``), recorded with its arguments, its
    structured result and the model's tool-call id (the event's ``call_id``; a side
    effect's idempotency key is ``openai-agents:<id>``), and run once per tool-call id and
    run: a second invocation with the same id gets the first one's result.

    A refused call is recorded as denied; with ``on_denied="tell_model"`` the model gets
    ``{"error": "denied", "code": ..., "reason": ...}``, with ``"raise"`` the
    :class:`~agentlab.ToolDeniedError` ends the SDK run. A tool that raises is recorded
    as an error and the model gets the SDK's error message. ``needs_approval`` is the
    SDK's: such a call pauses the run (see :func:`pause_for_approvals`).
    """
    if on_denied not in ("tell_model", "raise"):
        raise ConfigError(f"on_denied={on_denied!r}: use 'tell_model' or 'raise'")

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        tool_name = name or f.__name__
        key = None
        if side_effect:
            def key(_arguments: Mapping[str, Any]) -> str:
                call_id = external_call_id_var.get()  # the SDK always gives one
                return f"{_PREFIX}{call_id or uuid.uuid4().hex}"

        async def call(**arguments: Any) -> Any:
            token = external_call_id_var.set(None)  # calls nested inside have their own
            try:
                out = f(**arguments)
                return await out if inspect.isawaitable(out) else out
            finally:
                external_call_id_var.reset(token)

        governed = rec.tool(name=tool_name, side_effect=side_effect, scope=scope,
                            freshness=freshness, idempotency_key=key, **options)(call)
        signature = inspect.signature(f)

        @functools.wraps(f)
        async def invoke(ctx: ToolContext[Any], *args: Any, **kwargs: Any) -> Any:
            arguments = dict(signature.bind(*args, **kwargs).arguments)
            run = rec.current_run()
            if run is None:
                return await call(**arguments)
            call_id = getattr(ctx, "tool_call_id", None)
            ended = calls_of(run, _PREFIX)
            if call_id and call_id in ended:  # invoked again: the first outcome, not a rerun
                return _again(ended[call_id], tool_name, on_denied)
            token = external_call_id_var.set(call_id)
            try:
                result = await governed(**arguments)
            except ToolDeniedError as exc:
                if call_id:
                    ended[call_id] = Outcome("denied", exc.denial)
                if on_denied == "raise":
                    raise
                return _told(exc.denial)
            except Exception as exc:
                if call_id:
                    ended[call_id] = Outcome("error", exc)
                raise
            finally:
                external_call_id_var.reset(token)
            if call_id:
                ended[call_id] = Outcome("ok", result)
            return result

        params = list(signature.parameters.values())
        invoke.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               annotation=ToolContext), *params])
        invoke.__annotations__ = {**getattr(f, "__annotations__", {}), "ctx": ToolContext}

        def failure(ctx: Any, error: Exception) -> str:
            if isinstance(error, ToolDeniedError):  # on_denied="raise": end the SDK run
                raise SdkToolDeniedError(error.tool, error.denial) from error
            return default_tool_error_function(ctx, error)

        made = function_tool(invoke, name_override=tool_name,
                             description_override=description,
                             needs_approval=needs_approval, failure_error_function=failure)
        setattr(made, _GOVERNED, True)
        return made

    if fn is not None:
        return wrap(fn)
    return wrap


_PREFIX = "openai-agents:"  # a side effect's idempotency key: the prefix and the call id


def _told(denial: Any) -> dict[str, Any]:
    """What the model is told of a refused call (``on_denied="tell_model"``)."""
    return {"error": "denied", "code": denial.code, "reason": denial.reason}


def _again(outcome: Outcome, tool_name: str, on_denied: str) -> Any:
    """A tool-call id that already ended in the run: its first outcome, nothing run again."""
    if outcome.status == "ok":
        return outcome.value
    if outcome.status == "denied":
        if on_denied == "raise":
            raise ToolDeniedError(tool_name, outcome.value)
        return _told(outcome.value)
    if outcome.status == "blocked":
        raise blocked_error(tool_name)
    error = outcome.value  # the exception, or its recorded text from an earlier process
    raise error if isinstance(error, Exception) else RuntimeError(error)
