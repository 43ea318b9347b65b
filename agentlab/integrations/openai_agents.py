"""Record and govern an OpenAI Agents SDK agent (optional: ``agentlab[openai-agents]``).

Three pieces, all the SDK's own extension points:

* :class:`RecordingHooks`, the SDK's ``RunHooks`` passed as ``Runner.run(..., hooks=...)``:
  each model call becomes an agentlab ``llm_call`` (model, messages, response with its tool
  calls, tokens), each handoff a ``handoff`` step, and the current agent and its final
  output go into ``run.state``;
* :class:`RecordingProcessor`, a tracing processor (``add_trace_processor``) that writes
  the SDK trace's id and workflow name, and the spans that failed or tripped a guardrail,
  into ``run.state`` (the SDK's spans carry neither call ids nor structured results,
  which is why the hooks and the tools do the recording);
* :func:`tool`, the SDK's ``function_tool`` whose calls go through agentlab's grants,
  policy and approvals and are recorded keyed on the model's tool-call id.

A tool with ``needs_approval`` pauses the SDK run; :func:`pause_for_approvals` turns each
pending call into an agentlab approval request and persists the paused ``RunState`` in the
run's state, and :func:`resume_state` (in the same process or a new one) loads it, applies
the decisions taken through agentlab and returns the state to pass to ``Runner.run``.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from agentlab.errors import ApprovalError, ConfigError, ToolDeniedError

try:
    from agents import Agent, RunHooks, RunState, function_tool
    from agents.exceptions import AgentsException
    from agents.items import ModelResponse, ToolApprovalItem
    from agents.tool import FunctionTool, default_tool_error_function
    from agents.tool_context import ToolContext
    from agents.tracing import Span, Trace, TracingProcessor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        f"agentlab.integrations.openai_agents needs the OpenAI Agents SDK ({exc}); install "
        "it with `pip install 'agentlab[openai-agents]'`") from exc

import agentlab.record as rec
from agentlab.approval import DEFAULT_TIMEOUT, ApprovalManager, pass_through_gate
from agentlab.model import ApprovalRequest
from agentlab.record._context import external_call_id_var
from agentlab.store import RunStore

__all__ = ["PAUSED_KEY", "RecordingHooks", "RecordingProcessor", "ResumedState",
           "SdkToolDeniedError", "pause_for_approvals", "resume_state", "tool"]

PAUSED_KEY = "openai_agents_paused"
"""The ``run.state`` key holding a paused run: the SDK's ``RunState.to_json()`` (scrubbed
of secrets like every state value) and the agentlab approval request of each pending call."""

OnDenied = Literal["tell_model", "raise"]


# -- values -----------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _arguments(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return raw


def _items_json(system_prompt: str | None, items: Sequence[Any]) -> list[dict[str, Any]]:
    """The SDK's input items in agentlab's chat shape: ``system``, ``user``, ``assistant``
    (text and ``tool_calls`` with parsed arguments) and ``tool`` messages with their
    ``tool_call_id``; other items (reasoning, hosted tools) as the SDK gives them."""
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for raw in items:
        item = _jsonable(raw)
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "function_call":
            call = {"id": item.get("call_id"), "name": item.get("name"),
                    "arguments": _arguments(item.get("arguments"))}
            if out and out[-1].get("role") == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)  # one response's calls: one message
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": item.get("output")})
        elif isinstance(item, Mapping) and "role" in item:
            out.append({"role": item["role"], "content": _text(item.get("content"))})
        else:
            out.append(item)
    return out


def _text(content: Any) -> Any:
    if isinstance(content, list) and all(isinstance(c, Mapping) and "text" in c
                                         for c in content):
        return "".join(str(c["text"]) for c in content)
    return content


def _response_json(response: ModelResponse) -> dict[str, Any]:
    """A model response as one assistant message: its text and its tool calls."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    other: list[Any] = []
    for raw in response.output:
        item = _jsonable(raw)
        kind = item.get("type")
        if kind == "message":
            text.append(str(_text(item.get("content"))))
        elif kind == "function_call":
            calls.append({"id": item.get("call_id"), "name": item.get("name"),
                          "arguments": _arguments(item.get("arguments"))})
        else:
            other.append(item)
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    if other:
        out["items"] = other
    return out


def _model_name(agent: Any) -> str:
    model = getattr(agent, "model", None)
    if isinstance(model, str):
        return model
    name = getattr(model, "model", None)
    return name if isinstance(name, str) else type(model).__name__ if model else "default"


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
        if asked is None or run is None:
            return
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


# -- tracing: the trace and the spans that went wrong -----------------------------------------

class RecordingProcessor(TracingProcessor):
    """A tracing processor writing, into the active run's state, the SDK trace
    (``openai_agents_trace``: id, workflow name, group id) and, when the trace ends, the
    spans that recorded an error or a tripped guardrail (``openai_agents_spans``).

    Register it with ``agents.add_trace_processor(RecordingProcessor())`` (or
    ``set_trace_processors`` to send traces nowhere else). Outside a run it does nothing.
    """

    def __init__(self) -> None:
        self._spans: dict[str, list[dict[str, Any]]] = {}

    def on_trace_start(self, trace: Trace) -> None:
        run = rec.current_run()
        if run is None:
            return
        self._spans[trace.trace_id] = []
        run.state["openai_agents_trace"] = {
            "trace_id": trace.trace_id, "workflow": trace.name,
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
                return f"openai-agents:{external_call_id_var.get()}"

        async def call(**arguments: Any) -> Any:
            token = external_call_id_var.set(None)  # calls nested inside have their own
            try:
                out = f(**arguments)
                return await out if inspect.isawaitable(out) else out
            finally:
                external_call_id_var.reset(token)

        governed = rec.tool(name=tool_name, side_effect=side_effect, scope=scope,
                            freshness=freshness, idempotency_key=key, **options)(call)
        done: dict[tuple[str, str], Any] = {}

        @functools.wraps(f)
        async def invoke(ctx: ToolContext[Any], *args: Any, **kwargs: Any) -> Any:
            arguments = dict(inspect.signature(f).bind(*args, **kwargs).arguments)
            run = rec.current_run()
            if run is None:
                return await call(**arguments)
            call_id = getattr(ctx, "tool_call_id", None)
            if call_id and (run.run_id, call_id) in done:
                return done[(run.run_id, call_id)]
            token = external_call_id_var.set(call_id)
            try:
                result = await governed(**arguments)
            except ToolDeniedError as exc:
                if on_denied == "raise":
                    raise
                result = {"error": "denied", "code": exc.denial.code,
                          "reason": exc.denial.reason}
            finally:
                external_call_id_var.reset(token)
            if call_id:
                done[(run.run_id, call_id)] = result
            return result

        params = list(inspect.signature(f).parameters.values())
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


# -- approvals across a pause -----------------------------------------------------------------

def _call_of(item: ToolApprovalItem) -> tuple[str, str, dict[str, Any]]:
    raw = _jsonable(item.raw_item)
    call_id = raw.get("call_id") or raw.get("id")
    if not call_id:
        raise ConfigError(f"the SDK asks approval for a call without an id ({raw!r:.200}); "
                          "agentlab keys approvals on the model's tool-call id")
    arguments = _arguments(raw.get("arguments"))
    return (str(call_id), str(item.tool_name or raw.get("name")),
            arguments if isinstance(arguments, dict) else {"input": arguments})


def pause_for_approvals(result: Any, *, timeout: timedelta = DEFAULT_TIMEOUT
                        ) -> list[ApprovalRequest]:
    """Turn the SDK's interruptions (``result.interruptions``) into agentlab approval
    requests of the active run, keyed ``openai-agents:<tool-call id>``, and persist the
    paused ``RunState`` under ``run.state[PAUSED_KEY]``. Calling it again for the same
    calls returns the same requests. Decide them with ``agentlab approve ID`` (or
    ``ApprovalManager``, the widget) and resume with :func:`resume_state`."""
    run = rec.current_run()
    if run is None:
        raise ConfigError("pause_for_approvals needs the agentlab run the SDK run was "
                          "recorded in: call it inside `with al.record_run(...)`")
    items = list(getattr(result, "interruptions", None) or ())
    if not items:
        return []
    manager = ApprovalManager(run.store)
    requests: dict[str, ApprovalRequest] = {}
    for item in items:
        call_id, tool_name, arguments = _call_of(item)
        requests[call_id] = manager.request(
            run_id=run.run_id, call_key=f"openai-agents:{call_id}", tool=tool_name,
            arguments=arguments, rule="needs_approval", timeout=timeout)
    run.state[PAUSED_KEY] = {"state": result.to_state().to_json(),
                             "approvals": {c: r.id for c, r in requests.items()}}
    return list(requests.values())


@dataclass(frozen=True, slots=True)
class ResumedState:
    """What :func:`resume_state` gives back: the SDK state to run, the run it paused in and
    the agentlab decision applied to each call (``approved`` or ``rejected``)."""

    state: RunState[Any, Any]
    paused_run_id: str
    decisions: Mapping[str, str]


async def resume_state(store: RunStore, agent: Agent[Any], request_id: str, *,
                       by: str = "openai-agents:resume") -> ResumedState:
    """Load the run paused with approval ``request_id`` (any of its requests), apply the
    agentlab decision of each pending call (``state.approve`` or ``state.reject``) and
    return the state for ``Runner.run(agent, state)``. Called inside the ``record_run`` of
    the resumed leg, it writes ``run.state["openai_agents_resumed"]`` (the paused run and
    the request and decision of each call).

    Each decision passes agentlab's gate checks (authentic, by an allowed approver, bound to
    the same call and arguments) and is consumed: a paused run resumes once. A request still
    pending, or decided with edited arguments (the SDK cannot run edited calls), is refused
    with :class:`~agentlab.errors.ApprovalError`.
    """
    manager = ApprovalManager(store)
    first = manager.get(request_id)
    paused = store.state_at(first.run_id).get(PAUSED_KEY)
    if not isinstance(paused, Mapping):
        raise ConfigError(f"run {first.run_id} holds no paused OpenAI Agents SDK run; it is "
                          "persisted by pause_for_approvals inside the recorded run")
    state = await RunState.from_json(agent, dict(paused["state"]))
    ids: Mapping[str, str] = paused["approvals"]
    decisions: dict[str, str] = {}
    for item in state.get_interruptions():
        call_id, tool_name, arguments = _call_of(item)
        req = manager.get(ids[call_id])
        if req.status == "pending":
            raise ApprovalError(f"approval {req.id} ({tool_name}) is still pending: decide "
                                f"it first (`agentlab approve {req.id}` or reject)")
        gate = pass_through_gate(
            manager, None, run_id=req.run_id, call_key=req.call_key, tool=tool_name,
            arguments=arguments, current_arguments=functools.partial(dict, arguments), grant=req.grant,
            scope=req.scope, rule=req.rule or "needs_approval", phase=req.phase,
            timeout=DEFAULT_TIMEOUT, consumer=by)
        if gate.edited is not None:
            raise ApprovalError(f"approval {req.id} edited the arguments of {tool_name}; the "
                                "SDK runs the model's arguments only: approve or reject it")
        if gate.denial is None:
            state.approve(item)
            decisions[call_id] = "approved"
        elif gate.denial.code in ("rejected", "approval_expired"):
            state.reject(item)
            decisions[call_id] = "rejected"
        else:
            raise ApprovalError(f"approval {req.id} cannot resume {tool_name}: "
                                f"{gate.denial.reason}")
    run = rec.current_run()
    if run is not None:  # the resumed leg says what it continues and on whose decision
        run.state["openai_agents_resumed"] = {
            "paused_run": first.run_id,
            "approvals": {c: {"request": ids[c], "decision": d} for c, d in decisions.items()}}
    return ResumedState(state, first.run_id, decisions)
