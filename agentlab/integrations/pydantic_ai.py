"""Record and govern a pydantic-ai agent: its model requests become agentlab LLM calls, its
tool calls agentlab tool calls that pass the run's grants, policy and approvals.

Two wrappers, both pydantic-ai's own extension points, so the agent's code does not change
beyond its construction:

- :class:`RecordedModel` wraps the agent's model (a pydantic-ai ``WrapperModel``): each
  request is recorded as an ``llm_call`` (model, messages, response, tokens).
- :class:`GovernedToolset` wraps a toolset (a pydantic-ai ``WrapperToolset``): each call is
  recorded as a ``tool_call`` with its arguments, structured result and the model's
  tool-call id, after agentlab's governance admitted it. :class:`ToolRules` says which
  tools act on the world and which scope they need.

Outside ``al.record_run`` both pass everything through unrecorded. Requires the
``pydantic-ai`` extra (``pip install 'agentlab[pydantic-ai]'``).

>>> from pydantic_ai import Agent                                      # doctest: +SKIP
>>> from pydantic_ai.models.test import TestModel
>>> agent = Agent(RecordedModel(TestModel()),
...               toolsets=[governed_tools(create_issue,
...                                        rules={"create_issue": ToolRules(
...                                            side_effect=True, scope="jira:write:{project}")})])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from weakref import WeakKeyDictionary

from agentlab.errors import ConfigError, ToolDeniedError
from agentlab.identity import ScopeSpec
from agentlab.record import ModelReply, RunRecorder, current_run, llm, tool
from agentlab.record._context import external_call_id_var

try:
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        RetryPromptPart,
        SystemPromptPart,
        TextPart,
        ThinkingPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models import ModelRequestParameters, StreamedResponse
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.toolsets import AbstractToolset, FunctionToolset, WrapperToolset
    from pydantic_ai.usage import RequestUsage
    from pydantic_core import to_jsonable_python
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "agentlab.integrations.pydantic_ai needs pydantic-ai: install it with "
        "`pip install 'agentlab[pydantic-ai]'` (or `pip install pydantic-ai-slim`)"
    ) from exc

__all__ = ["GovernedToolset", "RecordedModel", "ToolRules", "governed_tools",
           "messages_json", "response_from_json", "response_json"]

OnDenied = Literal["tell_model", "raise"]


# -- messages ---------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str) else to_jsonable_python(value, fallback=repr)


def messages_json(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """pydantic-ai's message history in agentlab's chat shape: ``system``, ``user``,
    ``assistant`` (text and ``tool_calls``) and ``tool`` messages (one per tool return or
    retry prompt, with its ``tool_call_id``). The instructions are sent as the first
    ``system`` message (a model is sent those of the latest request only). Timestamps and
    per-run ids are left out, so the same conversation records the same messages."""
    out: list[dict[str, Any]] = []
    instructions = next((m.instructions for m in reversed(messages)
                         if isinstance(m, ModelRequest) and m.instructions), None)
    if instructions:
        out.append({"role": "system", "content": instructions})
    for message in messages:
        if isinstance(message, ModelResponse):
            out.append(response_json(message))
            continue
        if not isinstance(message, ModelRequest):
            continue
        for part in message.parts:
            if isinstance(part, SystemPromptPart):
                out.append({"role": "system", "content": part.content})
            elif isinstance(part, UserPromptPart):
                out.append({"role": "user", "content": _jsonable(part.content)})
            elif isinstance(part, ToolReturnPart):
                out.append({"role": "tool", "tool_call_id": part.tool_call_id,
                            "name": part.tool_name, "content": _jsonable(part.content)})
            elif isinstance(part, RetryPromptPart):
                entry: dict[str, Any] = {"role": "tool" if part.tool_name else "user",
                                         "content": part.model_response()}
                if part.tool_name:
                    entry.update(tool_call_id=part.tool_call_id, name=part.tool_name)
                out.append(entry)
    return out


def response_json(response: ModelResponse) -> dict[str, Any]:
    """A model response as one assistant message: its text, its tool calls (id, name,
    arguments) and its reasoning, if any."""
    text = [p.content for p in response.parts if isinstance(p, TextPart)]
    calls = [{"id": p.tool_call_id, "name": p.tool_name, "arguments": p.args_as_dict()}
             for p in response.parts if isinstance(p, ToolCallPart)]
    thinking = [p.content for p in response.parts if isinstance(p, ThinkingPart)]
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    if thinking:
        out["thinking"] = "".join(thinking)
    return out


def response_from_json(data: Mapping[str, Any], *, model_name: str | None = None,
                       input_tokens: int | None = None,
                       output_tokens: int | None = None) -> ModelResponse:
    """The pydantic-ai response a recorded assistant message stands for (text and tool
    calls; reasoning is not given back)."""
    if not isinstance(data, Mapping) or data.get("role") != "assistant":
        raise ConfigError(f"not a recorded pydantic-ai response: {data!r:.200}; expected an "
                          "assistant message recorded by RecordedModel")
    parts: list[Any] = []
    if data.get("content"):
        parts.append(TextPart(str(data["content"])))
    for call in data.get("tool_calls") or ():
        parts.append(ToolCallPart(call["name"], call.get("arguments") or {},
                                  tool_call_id=call["id"]))
    usage = RequestUsage(input_tokens=input_tokens or 0, output_tokens=output_tokens or 0)
    return ModelResponse(parts=parts, usage=usage, model_name=model_name)


# -- the model --------------------------------------------------------------------------------

@dataclass(init=False)
class RecordedModel(WrapperModel):
    """A pydantic-ai model whose requests are recorded as agentlab LLM calls: model name,
    messages (:func:`messages_json`), the tools offered and the settings as parameters, the
    response (:func:`response_json`) and the tokens of its usage.

    A streamed request (``agent.run_stream``) is recorded when its stream ends, as a call
    the agent made itself (``run.llm_call``): a replay compares it but cannot serve it.
    """

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)

    async def request(self, messages: list[ModelMessage], model_settings: ModelSettings | None,
                      model_request_parameters: ModelRequestParameters) -> ModelResponse:
        if current_run() is None:
            return await self.wrapped.request(messages, model_settings,
                                              model_request_parameters)
        got: list[ModelResponse] = []
        wrapped = self.wrapped

        async def model_request(messages: list[dict[str, Any]], tools: list[str],
                                settings: dict[str, Any] | None = None) -> ModelReply:
            response = await wrapped.request(sent, model_settings, model_request_parameters)
            got.append(response)
            usage = response.usage
            return ModelReply(response_json(response), usage.input_tokens,
                              usage.output_tokens,
                              model=response.model_name
                              if response.model_name not in (None, self.model_name) else None)

        sent = messages
        tools = sorted(t.name for t in (*model_request_parameters.function_tools,
                                        *model_request_parameters.output_tools))
        extra = {"settings": _jsonable(dict(model_settings))} if model_settings else {}
        recorded = llm(model=self.model_name, provider=self.system, returns=dict)(model_request)
        data: Any = await recorded(messages_json(messages), tools, **extra)
        if got:
            return got[0]
        return response_from_json(data, model_name=self.model_name)  # served from the record

    @asynccontextmanager
    async def request_stream(self, messages: list[ModelMessage],
                             model_settings: ModelSettings | None,
                             model_request_parameters: ModelRequestParameters,
                             run_context: Any = None) -> AsyncIterator[StreamedResponse]:
        run = current_run()
        sent = messages_json(messages) if run is not None else []
        t0 = time.perf_counter()
        async with self.wrapped.request_stream(messages, model_settings,
                                               model_request_parameters,
                                               run_context) as streamed:
            try:
                yield streamed
            except Exception as exc:
                if run is not None:
                    run.llm_call(self.model_name, messages=sent, provider=self.system,
                                 duration_ms=(time.perf_counter() - t0) * 1e3, error=exc)
                raise
        if run is not None:
            response = streamed.get()
            usage = response.usage
            run.llm_call(response.model_name or self.model_name, messages=sent,
                         response=response_json(response),
                         input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                         provider=self.system,
                         duration_ms=(time.perf_counter() - t0) * 1e3)


# -- the tools --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ToolRules:
    """How agentlab governs one pydantic-ai tool: whether it acts on the world
    (``side_effect``: recorded write-ahead, must declare a ``scope``) and the scope a call
    needs from the run's grants (a template filled from the arguments)."""

    side_effect: bool = False
    scope: ScopeSpec | None = None


_READ_ONLY = ToolRules()


@dataclass
class GovernedToolset(WrapperToolset[Any]):
    """A pydantic-ai toolset whose calls are agentlab tool calls of the active run.

    Each call is admitted by the run's grants, policy and approvals (:class:`ToolRules`
    per tool name; tools without rules are read-only and ungoverned unless the run has a
    policy), recorded with its arguments, result and the model's tool-call id (the
    event's ``call_id``; a side effect's idempotency key is ``pydantic-ai:<step>:<id>``),
    and executed once per tool-call id and run step: a second call with the same id in the
    same step gets the first call's result (or error) without running or recording again.

    A refused call is recorded as denied; with ``on_denied="tell_model"`` (the default)
    the model gets ``{"error": "denied", "code": ..., "reason": ...}`` as the tool's result
    and may go on, with ``"raise"`` the :class:`~agentlab.ToolDeniedError` ends the agent's
    run.
    """

    rules: Mapping[str, ToolRules] = field(default_factory=dict)
    on_denied: OnDenied = "tell_model"
    _calls: WeakKeyDictionary[RunRecorder, dict[tuple[str, int], asyncio.Future[Any]]] = field(
        default_factory=WeakKeyDictionary, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.on_denied not in ("tell_model", "raise"):
            raise ConfigError(f"on_denied must be 'tell_model' or 'raise', not "
                              f"{self.on_denied!r}")
        for name, rule in self.rules.items():
            if not isinstance(rule, ToolRules):
                raise ConfigError(f"rules[{name!r}] must be a ToolRules(side_effect=..., "
                                  f"scope=...), not {type(rule).__name__}")

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any,
                        tool_def: Any) -> Any:
        run = current_run()
        if run is None:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool_def)
        call_id: str | None = ctx.tool_call_id
        if call_id is None:
            return await self._governed(name, tool_args, ctx, tool_def, None)
        seen = self._calls.setdefault(run, {})
        key = (call_id, int(ctx.run_step))
        earlier = seen.get(key)
        if earlier is not None:
            return await asyncio.shield(earlier)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        seen[key] = future
        try:
            result = await self._governed(name, tool_args, ctx, tool_def, call_id)
        except asyncio.CancelledError:
            del seen[key]  # not known to have run: a later call with this id may run it
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a duplicate may never ask for it
            raise
        future.set_result(result)
        return result

    async def _governed(self, name: str, tool_args: dict[str, Any], ctx: Any, tool_def: Any,
                        call_id: str | None) -> Any:
        rule = self.rules.get(name, _READ_ONLY)
        wrapped = self.wrapped

        async def call(**arguments: Any) -> Any:
            token = external_call_id_var.set(None)  # calls nested inside have their own
            try:
                return await wrapped.call_tool(name, arguments, ctx, tool_def)
            finally:
                external_call_id_var.reset(token)

        key: Callable[[Mapping[str, Any]], str] | None = None
        if rule.side_effect and call_id is not None:
            fixed = f"pydantic-ai:{ctx.run_step}:{call_id}"
            key = lambda _arguments: fixed  # noqa: E731
        recorded = tool(name=name, side_effect=rule.side_effect, scope=rule.scope,
                        idempotency_key=key)(call)
        token = external_call_id_var.set(call_id)
        try:
            return await recorded(**tool_args)
        except ToolDeniedError as exc:
            if self.on_denied == "raise":
                raise
            return {"error": "denied", "code": exc.denial.code, "reason": exc.denial.reason}
        finally:
            external_call_id_var.reset(token)


def governed_tools(*functions: Callable[..., Any], rules: Mapping[str, ToolRules] | None = None,
                   on_denied: OnDenied = "tell_model",
                   toolset: AbstractToolset[Any] | None = None) -> GovernedToolset:
    """A :class:`GovernedToolset` over plain functions (a pydantic-ai ``FunctionToolset``)
    or over ``toolset``; pass it as ``Agent(..., toolsets=[...])``."""
    if toolset is not None and functions:
        raise ConfigError("give governed_tools either functions or toolset=, not both")
    inner = toolset if toolset is not None else FunctionToolset(list(functions))
    unknown = set(rules or {}) - {getattr(f, "__name__", "") for f in functions}
    if toolset is None and unknown:
        raise ConfigError(f"rules name tools that are not given: {sorted(unknown)}; rules "
                          "are keyed by the tool's function name")
    return GovernedToolset(inner, rules=dict(rules or {}), on_denied=on_denied)
