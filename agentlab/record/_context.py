"""Context variables: the active run and the innermost step, per thread and asyncio task."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentlab.record._run import RunRecorder

__all__ = ["Frame", "current_run", "frame_var", "run_var"]


class Frame:
    """The innermost open step: its event id (parent of nested steps) and the keys it read.

    A read-only tool call's id is made only if something nested inside it asks for it
    (``event_id``); otherwise the store assigns one when the event is written, which keeps
    id generation off the caller's hot path.
    """

    __slots__ = ("_factory", "_id", "reads")

    def __init__(self, event_id: str | None, factory: Callable[[], str] | None = None) -> None:
        self._id = event_id
        self._factory = factory
        self.reads: set[str] | None = None

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


run_var: ContextVar[RunRecorder | None] = ContextVar("agentlab_run", default=None)
frame_var: ContextVar[Frame | None] = ContextVar("agentlab_frame", default=None)


def current_run() -> RunRecorder | None:
    """The run being recorded in this context, if any."""
    return run_var.get()

