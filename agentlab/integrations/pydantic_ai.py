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

A call that needs a person's approval (a policy rule ``approve``, or pydantic-ai's own
``requires_approval=True``) asks through agentlab's gate. With the run's approver
:func:`defer_approval` the agent's run does not wait: it ends with pydantic-ai's
``DeferredToolRequests``, the recorded run is paused (``run.pause(...)``), and once the
request is decided through agentlab, ``record_run(run_id=..., resume=True)`` in any process
runs the agent again to the deferred call, served from the record (or
:func:`deferred_results` continues it in the same process).

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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from weakref import WeakKeyDictionary

from agentlab.errors import ConfigError, ToolDeniedError
from agentlab.identity import ScopeSpec
from agentlab.record import ModelReply, RunRecorder, current_run, llm, tool
from agentlab.record._context import approval_rule_var, external_call_id_var

try:
    from pydantic_ai.exceptions import ApprovalRequired
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.models import ModelRequestParameters, StreamedResponse
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.toolsets import AbstractToolset, FunctionToolset, WrapperToolset
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "agentlab.integrations.pydantic_ai needs pydantic-ai: install it with "
        "`pip install 'agentlab[pydantic-ai]'` (or `pip install pydantic-ai-slim`)"
    ) from exc

from agentlab.integrations._pydantic_ai_approvals import (
    APPROVAL_RULE,
    AwaitApproval,
    defer_approval,
    deferred_results,
    may_defer,
)
from agentlab.integrations._pydantic_ai_messages import (
    jsonable,
    messages_json,
    response_from_json,
    response_json,
)

__all__ = ["GovernedToolset", "RecordedModel", "ToolRules", "defer_approval",
           "deferred_results", "governed_tools", "messages_json", "response_from_json",
           "response_json"]

OnDenied = Literal["tell_model", "raise"]


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
        extra = {"settings": jsonable(dict(model_settings))} if model_settings else {}
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


def _responses(ctx: Any) -> int:
    """The model responses of the conversation so far (pydantic-ai's run step counts those
    of the current agent run only, and restarts when a run continues an earlier one)."""
    messages = getattr(ctx, "messages", None)
    if not messages:
        return int(ctx.run_step)
    return sum(isinstance(m, ModelResponse) for m in messages)


@dataclass
class GovernedToolset(WrapperToolset[Any]):
    """A pydantic-ai toolset whose calls are agentlab tool calls of the active run.

    Each call is admitted by the run's grants, policy and approvals (:class:`ToolRules`
    per tool name; tools without rules are read-only and ungoverned unless the run has a
    policy), recorded with its arguments, result and the model's tool-call id (the
    event's ``call_id``), and executed once per tool-call id and model response: a second
    call with the same id for the same response gets the first call's result (or error)
    without running or recording again. A side effect's idempotency key, and the key of a
    call's approval request, is ``pydantic-ai:<n>:<id>`` (``n``: the model responses so
    far).

    A refused call is recorded as denied; with ``on_denied="tell_model"`` (the default)
    the model gets ``{"error": "denied", "code": ..., "reason": ...}`` as the tool's result
    and may go on, with ``"raise"`` the :class:`~agentlab.ToolDeniedError` ends the agent's
    run.

    Approvals: a tool pydantic-ai marks ``requires_approval=True`` is offered to the model
    as a plain tool inside a recorded run, and its calls ask agentlab's gate (rule
    ``pydantic-ai:requires_approval``) as a policy rule ``approve`` would. With the run's
    approver :func:`defer_approval`, a call that needs approval is deferred (pydantic-ai's
    ``ApprovalRequired``) instead of waiting; see
    :mod:`agentlab.integrations._pydantic_ai_approvals`.
    """

    rules: Mapping[str, ToolRules] = field(default_factory=dict)
    on_denied: OnDenied = "tell_model"
    _calls: WeakKeyDictionary[RunRecorder, dict[tuple[str, int], asyncio.Future[Any]]] = field(
        default_factory=WeakKeyDictionary, repr=False, compare=False)
    _needs_approval: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.on_denied not in ("tell_model", "raise"):
            raise ConfigError(f"on_denied must be 'tell_model' or 'raise', not "
                              f"{self.on_denied!r}")
        for name, rule in self.rules.items():
            if not isinstance(rule, ToolRules):
                raise ConfigError(f"rules[{name!r}] must be a ToolRules(side_effect=..., "
                                  f"scope=...), not {type(rule).__name__}")

    async def get_tools(self, ctx: Any) -> dict[str, Any]:
        tools = await super().get_tools(ctx)
        run = current_run()
        if run is None:
            return tools
        out = dict(tools)
        for name, tool_ in tools.items():
            if tool_.tool_def.kind != "unapproved":
                continue
            rule = self.rules.get(name, _READ_ONLY)
            if run.governance.policy is None and rule.scope is None and not rule.side_effect:
                raise ConfigError(
                    f"tool {name} requires approval (pydantic-ai requires_approval=True) and "
                    "agentlab asks for approval of governed calls only: give the run a "
                    "policy (al.Policy() allows everything else) or the tool "
                    "ToolRules(scope=...)")
            self._needs_approval.add(name)
            out[name] = replace(tool_, tool_def=replace(tool_.tool_def, kind="function"))
        return out

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any,
                        tool_def: Any) -> Any:
        run = current_run()
        if run is None:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool_def)
        call_id: str | None = ctx.tool_call_id
        if call_id is None:
            return await self._governed(name, tool_args, ctx, tool_def, None)
        seen = self._calls.setdefault(run, {})
        key = (call_id, _responses(ctx))
        earlier = seen.get(key)
        if earlier is not None:
            return await asyncio.shield(earlier)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        seen[key] = future
        try:
            result = await self._governed(name, tool_args, ctx, tool_def, call_id)
        except (asyncio.CancelledError, ApprovalRequired):
            # Not known to have run: a later call with this id may run it (once approved).
            del seen[key]
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
            # Calls nested inside have their own id and approvals, and wait for them.
            inner = (external_call_id_var.set(None), may_defer.set(False),
                     approval_rule_var.set(None))
            try:
                return await wrapped.call_tool(name, arguments, ctx, tool_def)
            finally:
                approval_rule_var.reset(inner[2])
                may_defer.reset(inner[1])
                external_call_id_var.reset(inner[0])

        key: Callable[[Mapping[str, Any]], str] | None = None
        if call_id is not None:
            fixed = f"pydantic-ai:{_responses(ctx)}:{call_id}"
            key = lambda _arguments: fixed  # noqa: E731
        recorded = tool(name=name, side_effect=rule.side_effect, scope=rule.scope,
                        idempotency_key=key)(call)
        tokens = (external_call_id_var.set(call_id), may_defer.set(True),
                  approval_rule_var.set(APPROVAL_RULE if name in self._needs_approval
                                        else None))
        try:
            return await recorded(**tool_args)
        except AwaitApproval as waiting:
            req = waiting.request
            raise ApprovalRequired(metadata={
                "agentlab_approval": req.id, "rule": req.rule,
                "expires_at": req.expires_at.isoformat()}) from None
        except ToolDeniedError as exc:
            if self.on_denied == "raise":
                raise
            return {"error": "denied", "code": exc.denial.code, "reason": exc.denial.reason}
        finally:
            approval_rule_var.reset(tokens[2])
            may_defer.reset(tokens[1])
            external_call_id_var.reset(tokens[0])


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
