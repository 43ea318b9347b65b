"""The LangGraph adapter's tools (see :mod:`agentlab.integrations.langgraph`): calls governed
by agentlab and keyed on the model's tool-call id, approvals through ``interrupt()``, and the
memory of which tool-call ids already ran in a run (read from the store, so a run continued
by another process knows it too)."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, cast

from langchain_core.tools import InjectedToolCallId, StructuredTool, ToolException
from langchain_core.tools.base import create_schema_from_function
from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt
from pydantic import BaseModel, create_model

import agentlab.record as rec
from agentlab.approval import ApprovalManager
from agentlab.errors import ConfigError, ToolDeniedError
from agentlab.integrations._call_memory import Outcome, blocked_error, calls_of
from agentlab.model import ApprovalRequest, canonical
from agentlab.record._context import external_call_id_var

__all__ = ["interrupt_approver", "tool"]

_PREFIX = "langgraph:"  # a side effect's idempotency key: the prefix and the tool-call id

# Set while an adapter tool runs: the model's id for the call, and whether an approval may
# pause the graph (the approver then raises _AwaitApproval instead of blocking).
_tool_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentlab_langgraph_tool_call_id", default=None)
_may_interrupt: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentlab_langgraph_may_interrupt", default=False)



# -- approvals through interrupt() ----------------------------------------------------------

class _AwaitApproval(BaseException):
    """Raised by interrupt_approver out of the gate, inside an adapter tool only."""

    def __init__(self, request: ApprovalRequest, manager: ApprovalManager) -> None:
        super().__init__(request.id)
        self.request = request
        self.manager = manager


def interrupt_approver(request: ApprovalRequest, manager: ApprovalManager) -> None:
    """The run's approver for LangGraph graphs: a call of an adapter :func:`tool` that needs
    approval pauses the graph with ``interrupt()`` (its value says which request waits);
    elsewhere it decides nothing and the call waits, as with :func:`agentlab.announce`."""
    if _may_interrupt.get():
        raise _AwaitApproval(request, manager)


def _apply_answer(answer: Any, request: ApprovalRequest, manager: ApprovalManager) -> None:
    """Decide the request from ``Command(resume=...)`` if the resume value is a decision:
    ``{"action": "approve"|"reject"|"edit", "by": NAME, "reason": ..., "arguments": ...}``.
    Any other value means the request was decided elsewhere (CLI, ApprovalManager)."""
    if not isinstance(answer, Mapping) or "action" not in answer:
        return
    action, by = answer.get("action"), answer.get("by")
    if action not in ("approve", "reject", "edit") or not isinstance(by, str) or not by:
        raise ConfigError(
            f"resume value {dict(answer)!r} is not a decision: give action "
            "('approve', 'reject' or 'edit') and by (who decides), e.g. "
            "Command(resume={'action': 'approve', 'by': 'ana'})")
    if manager.get(request.id).status != "pending":
        return
    manager.decide(request.id, action, by=by, reason=answer.get("reason"),
                   arguments=answer.get("arguments"), key=answer.get("key"))


# -- tools ---------------------------------------------------------------------------------

def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effect: bool = False,
    scope: Any = None,
    freshness: timedelta | None = None,
    on_denied: str = "message",
    **options: Any,
) -> Any:
    """A LangChain tool (for ``ToolNode``, ``bind_tools``) recorded and governed by agentlab.

    Each call is an agentlab tool call (``@al.tool`` with the same ``side_effect``,
    ``scope``, ``freshness`` and other ``options``) inside a step ``tool:<name>`` whose
    output holds the model's ``tool_call_id``. A side-effecting call's idempotency key is
    ``langgraph:<tool_call_id>``, and a call id that already ran in this run (a node
    re-executed on resume) returns its first result without running or recording again.

    A refused call (``ToolDeniedError``: no grant, a ``deny`` rule, a rejection) is recorded
    as denied by agentlab; the graph sees a ``ToolMessage`` with ``status="error"`` and the
    reason (``on_denied="message"``), or the error is raised (``on_denied="raise"``).
    """
    if on_denied not in ("message", "raise"):
        raise ConfigError(f"on_denied={on_denied!r}: use 'message' or 'raise'")

    def wrap(f: Callable[..., Any]) -> StructuredTool:
        tool_name = name or f.__name__
        counts: dict[str, int] = {}

        def key(arguments: Mapping[str, Any]) -> str:
            call_id = _tool_call_id.get()
            if call_id:
                return f"{_PREFIX}{call_id}"
            # Called without a tool-call id (invoked with plain arguments): number repeats.
            digest = hashlib.sha256(canonical(dict(arguments))[0]).hexdigest()[:24]
            counts[digest] = counts.get(digest, 0) + 1
            return f"{tool_name}:{digest}:{counts[digest]}"

        governed: Callable[..., Any] = rec.tool(
            name=tool_name, side_effect=side_effect, scope=scope, freshness=freshness,
            idempotency_key=key, **options)(f)

        def call(tool_call_id: str | None = None, **kwargs: Any) -> Any:
            run = rec.current_run()
            if run is None:
                return f(**kwargs)
            ran = calls_of(run, _PREFIX)
            if tool_call_id is not None and tool_call_id in ran:
                return _again(ran[tool_call_id], tool_name, on_denied)
            t_id = _tool_call_id.set(tool_call_id)
            t_ext = external_call_id_var.set(tool_call_id)
            s = rec.step(f"tool:{tool_name}")
            s.__enter__()
            s.output = {"tool_call_id": tool_call_id}
            try:
                result = _governed_call(governed, kwargs)
            except GraphInterrupt:
                s.output = {"tool_call_id": tool_call_id, "interrupted": True}
                s.__exit__(None, None, None)
                raise
            except ToolDeniedError as exc:
                s.output = {"tool_call_id": tool_call_id, "denied": exc.denial.code}
                s.__exit__(None, None, None)
                if tool_call_id is not None:
                    ran[tool_call_id] = Outcome("denied", exc.denial)
                if on_denied == "raise":
                    raise
                raise ToolException(f"agentlab refused {tool_name}: {exc.denial.reason}") \
                    from exc
            except BaseException as exc:
                s.__exit__(type(exc), exc, exc.__traceback__)
                if tool_call_id is not None and isinstance(exc, Exception):
                    ran[tool_call_id] = Outcome("error", f"{type(exc).__name__}: {exc}")
                raise
            else:
                s.__exit__(None, None, None)
            finally:
                external_call_id_var.reset(t_ext)
                _tool_call_id.reset(t_id)
            if tool_call_id is not None:
                ran[tool_call_id] = Outcome("ok", result)
            return result

        base = cast("type[BaseModel]", create_schema_from_function(tool_name, f))
        schema = create_model(
            tool_name, __base__=base,
            tool_call_id=(Annotated[str | None, InjectedToolCallId], None))
        return StructuredTool.from_function(
            call, name=tool_name, description=description or (f.__doc__ or tool_name).strip(),
            args_schema=schema, handle_tool_error=on_denied == "message")

    if fn is not None:
        return wrap(fn)
    return wrap


def _again(outcome: Outcome, tool_name: str, on_denied: str) -> Any:
    """A tool-call id that already ran in the run: its first outcome, nothing run again."""
    if outcome.status == "ok":
        return outcome.value
    if outcome.status == "denied":
        if on_denied == "raise":
            raise ToolDeniedError(tool_name, outcome.value)
        raise ToolException(f"agentlab refused {tool_name}: {outcome.value.reason}")
    if outcome.status == "blocked":
        raise blocked_error(tool_name)
    raise ToolException(outcome.value)


def _governed_call(governed: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call the agentlab tool; when its approval is pending, pause the graph with
    ``interrupt()`` and, once resumed, apply the answer and call again (the gate then finds
    the decided request for the same call key)."""
    while True:
        t_int = _may_interrupt.set(True)
        try:
            return governed(**kwargs)
        except _AwaitApproval as waiting:
            req = waiting.request
            answer = interrupt({"agentlab_approval": req.id, "tool": req.tool,
                                "arguments": req.arguments, "rule": req.rule,
                                "expires_at": req.expires_at.isoformat()})
            _apply_answer(answer, req, waiting.manager)
        finally:
            _may_interrupt.reset(t_int)
