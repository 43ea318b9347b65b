"""``step``: a named unit of agent work that nests the calls made inside it."""

from __future__ import annotations

from contextvars import Token
from types import TracebackType
from typing import Any

from agentlab.record._context import Frame, frame_var, run_var
from agentlab.record._core import RunCore, error_info

__all__ = ["step"]


class step:
    """Group the calls inside a ``with`` (or ``async with``) block under a named step.

    >>> with step("decide") as s:            # doctest: +SKIP
    ...     s.output = {"priority": "high"}

    Outside a run it does nothing.
    """

    __slots__ = ("_frame", "_parent", "_run", "_t0", "_token", "name", "output")
    _frame: Frame
    _parent: str | None
    _t0: int
    _token: Token[Frame | None]

    def __init__(self, name: str) -> None:
        self.name = name
        self.output: Any = None
        self._run: RunCore | None = None

    @property
    def event_id(self) -> str | None:
        return self._frame.event_id if self._run is not None else None

    def __enter__(self) -> step:
        host = run_var.get()
        run = self._run = host if isinstance(host, RunCore) else None
        if run is None:
            return self
        self._parent = run._parent_id()
        outer = frame_var.get()
        self._frame = Frame(run._new_id(), inside_tool=outer is not None and outer.inside_tool)
        self._token = frame_var.set(self._frame)
        self._t0 = run._clock()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        run = self._run
        if run is None:
            return
        frame_var.reset(self._token)
        body: dict[str, Any] = {"name": self.name, "duration_ms": (run._clock() - self._t0) / 1e6}
        if self.output is not None:
            body["output"] = self.output
        if self._frame.reads:
            body["reads"] = sorted(self._frame.reads)
        if exc is not None:
            body["status"] = "error"
            body["error"] = error_info(exc)
        run._emit("step", body, event_id=self._frame.event_id, parent_id=self._parent,
                  ts_ns=self._t0)

    async def __aenter__(self) -> step:
        return self.__enter__()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(et, exc, tb)
