"""``%%agentlab record``: a notebook cell recorded as one run, in a thread of its own.

A cell that blocks the kernel cannot receive a widget's click, so an agent that waits for a
human approval must not run on the kernel's thread. The cell magic runs the cell's code in
a thread started with :func:`contextvars.copy_context` (its prints and displays still land
in the cell that started it) and returns at once with a :class:`CellRun`: a live status line
above the approval widgets of that run. ``cell_run.wait()`` in a later cell waits for the
end (and raises the cell's exception, if it had one).

With ``--wait`` the cell blocks until the run ends (for notebooks executed unattended);
a call that then needs a human is refused at once with a message that says how to answer
it, never left waiting for a click that cannot arrive.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import html
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from agentlab.approval import ApprovalManager, Policy
from agentlab.display._approval import WidgetApprover
from agentlab.errors import AgentlabError, ApprovalError, RecordingError
from agentlab.model import ApprovalRequest, Phase, RunCounts, RunSummary
from agentlab.record import record_run
from agentlab.store import RunStore

__all__ = ["CellRun", "CellRunOptions", "start_cell_run"]

_COLORS = {"succeeded": "#067647", "failed": "#b42318", "errored": "#b42318"}


@dataclass(frozen=True)
class CellRunOptions:
    """What ``%%agentlab record`` was told (its flags, resolved against the notebook)."""

    workflow: str
    agent: str
    agent_version: str | None = None
    task_id: str | None = None
    task_input: Any = None
    owner: str | None = None
    team: str | None = None
    phase: Phase | None = None
    grants: tuple[str, ...] = ()
    policy: Policy | None = None
    decider: str | None = None
    approval_timeout: timedelta = timedelta(minutes=10)
    metadata: Mapping[str, Any] = field(default_factory=dict)


class CellRun(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A cell's run while it records in the background: status line, approval widgets.

    ``run_id`` is known as soon as the run starts; :meth:`wait` blocks until it ends and
    returns its :class:`~agentlab.model.RunSummary` (raising the cell's exception, if any).
    """

    def __init__(self, options: CellRunOptions, store: RunStore, *, blocking: bool) -> None:
        self.options = options
        self.store = store
        self.blocking = blocking
        self.run_id: str | None = None
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._status = widgets.HTML(self._line("starting", "#667085"))
        self._approver = (WidgetApprover(by=options.decider, show=False)
                          if options.policy is not None and not blocking else None)
        children = [self._status]
        if self._approver is not None:
            children.append(self._approver.container)
        super().__init__(children)

    def __repr__(self) -> str:
        state = self.summary.status if self.summary else ("running" if self.run_id
                                                          else "starting")
        return f"<CellRun {self.options.workflow} {self.run_id or '-'} {state}>"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> RunSummary:
        """The run's summary once it has ended; re-raises the cell's exception.

        Waiting blocks the kernel: answer any approval first (its widget is above).
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.run_id or '(not started)'} of the cell still "
                               f"records after {timeout} s")
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary

    # -- the recording thread ----------------------------------------------------------------

    def _approve(self, request: ApprovalRequest, manager: ApprovalManager) -> None:
        if self._approver is None:
            raise ApprovalError(
                f"{request.tool} needs approval, but this cell waits for its run (--wait), "
                "so a click on a widget could not reach the kernel. Record the cell without "
                "--wait (its approval widget appears in the cell) or approve from a "
                f"terminal: agentlab approve {request.id} --as NAME")
        self._show("waiting for approval of " + request.tool, "#b54708")
        self._approver(request, manager)

    def _run(self, source: str, namespace: dict[str, Any]) -> None:
        o = self.options
        try:
            code = compile(source, "<%%agentlab record cell>", "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            with record_run(
                o.workflow, agent=o.agent, agent_version=o.agent_version,
                task_input=o.task_input, task_id=o.task_id, owner=o.owner, team=o.team,
                phase=o.phase, store=self.store, grants=o.grants, policy=o.policy,
                approver=self._approve if o.policy is not None else None,
                approval_timeout=o.approval_timeout, metadata=o.metadata,
            ) as run:
                self.run_id = run.run_id
                namespace["run"] = run
                self._show(f"recording run <code>{run.run_id}</code>", "#667085", raw=True)
                _execute(code, namespace)
        except BaseException as exc:  # the cell's own exception, reported and kept
            self.error = exc
            if self.blocking:  # a waiting cell raises it itself
                pass
            elif isinstance(exc, AgentlabError):  # agentlab says what and why in one line
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            else:  # the cell's own bug: where it happened matters
                traceback.print_exception(exc, file=sys.stderr)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self.run_id is not None:
            try:
                self.summary = self.store.run(self.run_id)
            except AgentlabError as exc:  # pragma: no cover - the store went away
                self.error = self.error or exc
        s = self.summary
        if s is None:
            self._show(f"not recorded: {self.error}", _COLORS["failed"])
        else:
            outcome = "" if s.success is None else f", success={s.success}"
            self._show(f"run <code>{s.run_id}</code> {html.escape(s.status)}{outcome}: "
                       + html.escape(RunCounts.of_summary(s).phrase())
                       + (f"; {html.escape(str(self.error))}" if self.error else ""),
                       _COLORS.get(s.status, "#667085"), raw=True)
        self._done.set()

    def _show(self, text: str, color: str, *, raw: bool = False) -> None:
        self._status.value = self._line(text if raw else html.escape(text), color)

    @staticmethod
    def _line(markup: str, color: str) -> str:
        return f"<span style='color:{color}'>agentlab: {markup}</span>"


def _execute(code: Any, namespace: dict[str, Any]) -> None:
    """Run compiled cell code in ``namespace``; a cell with top-level ``await`` runs in an
    event loop of its own (this thread has none)."""
    result = eval(code, namespace)  # the user's own cell, as the kernel would run it
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def start_cell_run(options: CellRunOptions, store: RunStore, source: str,
                   namespace: dict[str, Any], *, blocking: bool = False) -> CellRun:
    """Record ``source`` as a run in a new thread, started before this returns.

    The thread carries a copy of this context (the kernel's output routing: the cell's
    prints land in this cell), and the run is recorded in ``store``. ``blocking`` says the
    caller will :meth:`~CellRun.wait` at once: approvals are then refused with how to
    answer them, and the cell's exception is left for ``wait`` to raise.
    """
    if not options.workflow:
        raise RecordingError("%%agentlab record needs a workflow name: "
                             "%%agentlab record WORKFLOW --agent NAME")
    cell = CellRun(options, store, blocking=blocking)
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(cell._run, source, namespace),
                              name=f"agentlab-cell-{options.workflow}", daemon=True)
    thread.start()
    return cell
