"""Context variables: the active run, the innermost step and the call's credential, per
thread and asyncio task.

The decorators only need to hand a call to whatever run is active, so the run is typed
here as the small protocol they use (:class:`CallHost`), which keeps this module, the
decorators and the specs below the recorder in the import graph.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentlab.errors import RecordingError
from agentlab.record._spec import ModelSpec, ToolSpec

__all__ = ["CallHost", "Credential", "Frame", "credential", "credential_var",
           "external_call_id_var", "frame_var", "run_var"]


class Frame:
    """The innermost open step: its event id (parent of nested steps) and the keys it read.

    A read-only tool call's id is made only if something nested inside it asks for it
    (``event_id``); otherwise the store assigns one when the event is written, which keeps
    id generation off the caller's hot path.
    """

    __slots__ = ("_factory", "_id", "inside_tool", "reads")

    def __init__(self, event_id: str | None, factory: Callable[[], str] | None = None,
                 inside_tool: bool = False) -> None:
        # inside_tool may be passed by position: a keyword costs the fast path ~80 ns here
        self._id = event_id
        self._factory = factory
        self.reads: set[str] | None = None
        self.inside_tool = inside_tool
        """A tool call's frame, or a step inside one: what happens here is the tool's doing
        (recorded with ``in_tool``; a replay that serves the tool never does it)."""

    @property
    def event_id(self) -> str:
        if self._id is None:
            if self._factory is None:
                raise RuntimeError("frame has neither an id nor an id factory")
            self._id = self._factory()
        return self._id

    def read(self, key: str) -> None:
        if self.reads is None:
            self.reads = {key}
        else:
            self.reads.add(key)


class CallHost(Protocol):
    """What a decorated function hands its calls to: the active run."""

    _fast: bool
    """A plain, ungoverned recording: a read-only call may take the fast path."""
    _ended: bool

    def _call_tool(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any: ...

    async def _call_tool_async(self, spec: ToolSpec, fn: Callable[..., Any],
                               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...

    def _call_model(self, spec: ModelSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any: ...

    async def _call_model_async(self, spec: ModelSpec, fn: Callable[..., Any],
                                args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


run_var: ContextVar[CallHost | None] = ContextVar("agentlab_run", default=None)
frame_var: ContextVar[Frame | None] = ContextVar("agentlab_frame", default=None)
external_call_id_var: ContextVar[str | None] = ContextVar("agentlab_external_call_id",
                                                          default=None)
"""The id an agent framework gave the tool call being made now (a model's tool-call id),
set by a framework adapter around the call: recorded as the ``call_id`` of a tool call that
has no write-ahead intent (a side effect's ``call_id`` pairs it with its intent)."""
approval_rule_var: ContextVar[str | None] = ContextVar("agentlab_approval_rule", default=None)
"""Set by a framework adapter around a call that the framework itself marks as needing a
person's approval (pydantic-ai's ``requires_approval``): the rule name its approval request
is filed under. The run's policy decides first (its ``deny`` stays a deny, its ``approve``
keeps its own rule); a call it allows asks for approval under this rule instead."""


@dataclass(frozen=True, slots=True)
class Credential:
    """The credential a tool call runs with. The secret is never shown in its repr."""

    grant: str
    fingerprint: str | None
    secret: str | None = field(default=None, repr=False)


credential_var: ContextVar[Credential | None] = ContextVar("agentlab_credential", default=None)


def credential() -> Credential:
    """The credential of the tool call running now (inside a tool that declares a scope).

    >>> @tool(scope="jira:write:{project}", side_effect=True)     # doctest: +SKIP
    ... def create_issue(project: str, title: str) -> dict:
    ...     return jira.create(project, title, token=credential().secret)
    """
    found = credential_var.get()
    if found is None:
        raise RecordingError(
            "no credential here: credential() works inside a recorded tool call that declares "
            "a scope and runs under one of the run's grants"
        )
    return found
