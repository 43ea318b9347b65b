"""Record and govern LangGraph graphs inside an agentlab run (optional: ``agentlab[langgraph]``).

Three hooks, none of which changes the graph's nodes:

* :class:`RecordingCallbacks`, a LangChain callback handler passed in the run config
  (``config={"callbacks": [RecordingCallbacks()]}``): each node execution becomes an agentlab
  step (the calls inside it nest under it) and each chat-model call an ``llm_call`` (model,
  messages, response with its tool calls, tokens when the model reports them);
* :class:`RecordingCheckpointer`, a checkpointer that wraps another (default: LangGraph's
  in-memory saver) and writes the graph state after each super-step into ``run.state``, so
  every node's effect on the state is an agentlab checkpoint;
* :func:`tool`, which turns a function into a LangChain tool (for ``ToolNode`` or
  ``bind_tools``) whose calls go through agentlab's grants, policy and approvals, keyed on
  the model's tool-call id.

Approvals that a policy asks for pause the graph with LangGraph's ``interrupt()`` when the
run's approver is :func:`interrupt_approver`; the graph is resumed with
``Command(resume=...)`` once the request is decided through agentlab, in the same process or
in another one: with a persistent checkpoint saver, ``run.pause(...)`` on the interrupt and
``record_run(run_id=..., resume=True, catch_up=False)`` to continue the same run (the tools
read which tool-call ids already ran from the store; see docs/adapters-langgraph.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from agentlab.errors import ConfigError, RecordingError

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
    )
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.errors import GraphInterrupt
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        f"agentlab.integrations.langgraph needs LangGraph ({exc}); install it with "
        "`pip install 'agentlab[langgraph]'`") from exc

from pydantic import BaseModel

import agentlab.record as rec
from agentlab.integrations._langgraph_tools import interrupt_approver, tool

__all__ = ["RecordingCallbacks", "RecordingCheckpointer", "interrupt_approver", "tool"]

# -- values --------------------------------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _message(m: BaseMessage) -> dict[str, Any]:
    """A LangChain message as the role/content dict agentlab records."""
    out: dict[str, Any] = {"role": _ROLES.get(m.type, m.type), "content": m.content}
    calls = getattr(m, "tool_calls", None)
    if calls:
        out["tool_calls"] = [{"id": c.get("id"), "name": c["name"], "args": c["args"]}
                             for c in calls]
    call_id = getattr(m, "tool_call_id", None)
    if call_id:
        out["tool_call_id"] = call_id
    if m.name:
        out["name"] = m.name
    return out


def _jsonable(value: Any) -> Any:
    """Graph state as JSON: messages as role/content dicts, pydantic models dumped."""
    if isinstance(value, BaseMessage):
        return _message(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# -- nodes and model calls: a callback handler ----------------------------------------------

@dataclass
class _Open:
    step: rec.step | None = None
    model: str | None = None
    messages: list[Any] = field(default_factory=list)
    t0: float = 0.0


class RecordingCallbacks(BaseCallbackHandler):
    """Record node executions as steps and chat-model calls as ``llm_call`` events.

    Pass it in the config of ``invoke``/``stream`` inside ``al.record_run(...)``. Outside a
    run it records nothing. A node interrupted by ``interrupt()`` is recorded as a step
    whose output is ``{"interrupted": true}``; a node that raises, as a failed step.
    """

    raise_error = True  # a recording failure must not pass silently

    def __init__(self) -> None:
        self._open: dict[UUID, _Open] = {}

    # nodes
    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        node = (metadata or {}).get("langgraph_node")
        is_node = (node is not None and kwargs.get("name") == node
                   and any(t.startswith("graph:step:") for t in tags or ()))
        if not is_node or rec.current_run() is None:
            return
        s = rec.step(str(node))
        s.__enter__()
        self._open[run_id] = _Open(step=s)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        o = self._open.pop(run_id, None)
        if o is None or o.step is None:
            return
        o.step.output = _jsonable(outputs) if outputs is not None else None
        _close(o.step, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        o = self._open.pop(run_id, None)
        if o is None or o.step is None:
            return
        if isinstance(error, GraphInterrupt):
            o.step.output = {"interrupted": True}
            _close(o.step, None)
        else:
            _close(o.step, error)

    # model calls
    def on_chat_model_start(self, serialized: dict[str, Any] | None,
                            messages: list[list[BaseMessage]], *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if rec.current_run() is None:
            return
        params = kwargs.get("invocation_params") or {}
        model = (params.get("model") or params.get("model_name")
                 or (metadata or {}).get("ls_model_name") or params.get("_type")
                 or (serialized or {}).get("name") or "unknown")
        flat = [_message(m) for batch in messages for m in batch]
        self._open[run_id] = _Open(model=str(model), messages=flat, t0=time.perf_counter())

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        o = self._open.pop(run_id, None)
        run = rec.current_run()
        if o is None or o.model is None or run is None:
            return
        gen = response.generations[0][0] if response.generations and response.generations[0] \
            else None
        msg = getattr(gen, "message", None)
        reply: Any = _message(msg) if isinstance(msg, BaseMessage) else \
            (gen.text if gen is not None else None)
        usage = getattr(msg, "usage_metadata", None) or {}
        tokens = (response.llm_output or {}).get("token_usage") or {}
        run.llm_call(
            o.model, messages=o.messages, response=reply,
            input_tokens=usage.get("input_tokens", tokens.get("prompt_tokens")),
            output_tokens=usage.get("output_tokens", tokens.get("completion_tokens")),
            duration_ms=(time.perf_counter() - o.t0) * 1000)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        o = self._open.pop(run_id, None)
        run = rec.current_run()
        if o is None or o.model is None or run is None:
            return
        run.llm_call(o.model, messages=o.messages, error=error,
                     duration_ms=(time.perf_counter() - o.t0) * 1000)


def _close(s: rec.step, error: BaseException | None) -> None:
    try:
        if error is None:
            s.__exit__(None, None, None)
        else:
            s.__exit__(type(error), error, error.__traceback__)
    except ValueError as exc:  # the node ended in another context than it started in
        raise RecordingError(
            f"node {s.name!r} ended in another context than it started in: RecordingCallbacks "
            "records synchronous graph runs (invoke, stream); async runs (ainvoke, astream) "
            "are not supported yet, run the graph with invoke or stream") from exc


# -- state: a checkpointer -------------------------------------------------------------------

def _state_channels(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items()
            if not k.startswith(("branch:", "__")) and ":" not in k}


class RecordingCheckpointer(BaseCheckpointSaver[Any]):
    """A checkpointer that saves through ``inner`` and writes the graph state of every
    checkpoint LangGraph takes (after each super-step) into the active run's ``run.state``.

    Only the keys whose value changed are written, so each agentlab checkpoint is one graph
    step's effect. ``inner`` keeps doing what LangGraph needs a checkpointer for (threads,
    ``interrupt()`` and resuming); by default an ``InMemorySaver``.
    """

    def __init__(self, inner: BaseCheckpointSaver[Any] | None = None) -> None:
        self.inner: BaseCheckpointSaver[Any] = inner if inner is not None else InMemorySaver()
        super().__init__(serde=self.inner.serde)
        self._last: dict[str, Any] = {}
        # LangGraph saves from background threads (durability "async"): one diff at a time.
        self._lock = threading.Lock()

    def _record(self, checkpoint: Checkpoint) -> None:
        run = rec.current_run()
        if run is None:
            return
        values = _jsonable(_state_channels(checkpoint.get("channel_values", {})))
        with self._lock:
            if run.run_id not in self._last:  # a continued run: what it recorded so far
                self._last[run.run_id] = run.state.snapshot()
            last = self._last[run.run_id]
            changed = {k: v for k, v in values.items() if last.get(k, _MISSING) != v}
            if changed:
                last.update(changed)
                run.state.update(changed)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        out = self.inner.put(config, checkpoint, metadata, new_versions)
        self._record(checkpoint)
        return out

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        out = await self.inner.aput(config, checkpoint, metadata, new_versions)
        self._record(checkpoint)
        return out

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await self.inner.aput_writes(config, writes, task_id, task_path)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.inner.aget_tuple(config)

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Any:
        return self.inner.list(config, **kwargs)

    def alist(self, config: RunnableConfig | None, **kwargs: Any) -> Any:
        return self.inner.alist(config, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.inner.adelete_thread(thread_id)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.inner.get_next_version(current, channel)


_MISSING = object()
