"""The IPython extension: ``%load_ext agentlab`` (or ``c.InteractiveShellApp.extensions =
["agentlab"]`` in ``ipython_kernel_config.py``).

One line magic over the session's store, each subcommand as the CLI names it::

    %agentlab open URL          the store the other subcommands use (default: as open_store())
    %agentlab runs [--workflow W] [--status S] [--agent A] [--limit N]
    %agentlab show RUN          the run's summary and its steps
    %agentlab explain RUN       the ranked culprits, credentials, state, replayability
    %agentlab approvals [--no-watch]   pending approvals as widgets; new ones appear as they arrive
    %agentlab diff RUN [RUN_B]  what changed in the run state (or between two runs)
    %agentlab explore [RUN] [--compare RUN_B]   the run explorer (runs, steps, timeline, compare)

    %%agentlab record WORKFLOW [--agent NAME] [--version V] [--task ID] [--input VAR]
        [--owner O] [--team T] [--phase read|draft|act] [--grants G1,G2] [--policy VAR]
        [--by NAME] [--timeout MINUTES] [--wait]
                                the cell, recorded as one run (its recorder is ``run``)

Each returns an object the notebook displays (a table, an explanation, widgets), so its
value can also be kept: ``ex = %agentlab explain 01a2...``. Run summaries and events get
compact text and HTML views. The models stay free of IPython: the views are registered here.

``%%agentlab record`` runs the cell in a thread and returns at once with a live status
line, above the widgets of any approval the run asks for (the kernel stays free to deliver
the click); ``_.wait()`` or ``cell_run.wait()`` later waits for the end. ``--policy`` and
``--input`` name variables of the notebook. With ``--wait`` the cell blocks until the run
ends, and a call that needs a human is refused at once with how to answer it.
"""

from __future__ import annotations

import argparse
import shlex
from datetime import timedelta
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class

from agentlab.analysis import explain, state_diff
from agentlab.approval import Policy
from agentlab.display._cell_run import CellRun, CellRunOptions, start_cell_run
from agentlab.display._explorer import RunExplorer, explore
from agentlab.display._views import Diff, RunView, register
from agentlab.errors import AgentlabError
from agentlab.query import runs_df, steps_df
from agentlab.store import SqlStore, open_store

__all__ = ["AgentlabMagics", "load_ipython_extension"]

_USAGE = (__doc__ or "").split("::", 1)[1].split("Each returns", 1)[0]


class _Parser(argparse.ArgumentParser):
    """Flags of a subcommand; a mistake is a one-line UsageError, never an exit."""

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage().strip().removeprefix("usage:").strip()
        raise UsageError(f"{self.prog}: {message}; usage: {usage}")


def _parser(prog: str) -> argparse.ArgumentParser:
    return _Parser(prog=f"%agentlab {prog}", add_help=False, exit_on_error=False)


@magics_class
class AgentlabMagics(Magics):
    """``%agentlab``: see the module docstring."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._store: SqlStore | None = None

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None, "the magics are registered with a shell"
        return self.shell

    @property
    def store(self) -> SqlStore:
        if self._store is None:
            self._store = open_store(create=False)
        return self._store

    @line_cell_magic
    def agentlab(self, line: str, cell: str | None = None) -> Any:
        words = shlex.split(line)
        if cell is not None:
            if not words or words[0] != "record":
                raise UsageError("%%agentlab as a cell magic records the cell: "
                                 "%%agentlab record WORKFLOW [--agent NAME] ...")
            try:
                started, wait = self._record(words[1:], cell)
            except (AgentlabError, argparse.ArgumentError) as exc:
                raise UsageError(f"%%agentlab record: {exc}") from None
            if wait:
                started.wait()  # the cell's own exception propagates as it is
            return started
        if not words or words[0] in ("-h", "--help", "help"):
            print("usage:" + _USAGE.rstrip())
            return None
        command, args = words[0], words[1:]
        handler = getattr(self, f"_do_{command}", None)
        if handler is None:
            raise UsageError(f"%agentlab: no subcommand {command!r}; usage:{_USAGE.rstrip()}")
        try:
            return handler(args)
        except (AgentlabError, argparse.ArgumentError) as exc:
            raise UsageError(f"%agentlab {command}: {exc}") from None

    def _do_open(self, args: list[str]) -> str:
        if len(args) != 1:
            raise UsageError("%agentlab open takes one store URL or path")
        store = open_store(args[0], create=False)
        if self._store is not None:
            self._store.close()
        self._store = store
        return f"agentlab store: {args[0]}"  # no count: that would read every run summary

    def _do_runs(self, args: list[str]) -> Any:
        p = _parser("runs")
        p.add_argument("--workflow")
        p.add_argument("--status")
        p.add_argument("--agent")
        p.add_argument("--limit", type=int, default=50)
        ns = p.parse_args(args)
        select = {k: v for k, v in (("workflow", ns.workflow), ("status", ns.status),
                                    ("agent_name", ns.agent)) if v is not None}
        frame = runs_df(self.store, **select)
        return frame.tail(ns.limit).iloc[::-1].reset_index(drop=True)  # newest first

    def _run_id(self, args: list[str], command: str) -> str:
        if len(args) != 1:
            raise UsageError(f"%agentlab {command} takes one run id (or a unique prefix)")
        return self.store.resolve(args[0])

    def _do_show(self, args: list[str]) -> RunView:
        run_id = self._run_id(args, "show")
        return RunView(self.store.run(run_id), steps_df(self.store, [run_id]))

    def _do_explain(self, args: list[str]) -> Any:
        return explain(self.store, self._run_id(args, "explain"))

    def _do_approvals(self, args: list[str]) -> Any:
        from agentlab.display._approval import ApprovalInbox

        p = _parser("approvals")
        p.add_argument("--no-watch", action="store_true")
        p.add_argument("--by")
        p.add_argument("--run")
        ns = p.parse_args(args)
        run_id = self.store.resolve(ns.run) if ns.run else None
        return ApprovalInbox(self.store, by=ns.by, run_id=run_id, watch=not ns.no_watch)

    def _do_explore(self, args: list[str]) -> RunExplorer:
        p = _parser("explore")
        p.add_argument("run", nargs="?")
        p.add_argument("--compare")
        ns = p.parse_args(args)
        if ns.compare and not ns.run:
            raise UsageError("%agentlab explore --compare RUN_B needs the run to compare it "
                             "with: %agentlab explore RUN --compare RUN_B")
        return explore(self.store, ns.run, compare=ns.compare)

    def _record(self, args: list[str], cell: str) -> tuple[CellRun, bool]:
        p = _parser("record")
        p.add_argument("workflow")
        p.add_argument("--agent", default="notebook")
        p.add_argument("--version")
        p.add_argument("--task")
        p.add_argument("--input")
        p.add_argument("--owner")
        p.add_argument("--team")
        p.add_argument("--phase", choices=["read", "draft", "act"])
        p.add_argument("--grants", default="")
        p.add_argument("--policy")
        p.add_argument("--by")
        p.add_argument("--timeout", type=float, default=10.0)
        p.add_argument("--wait", action="store_true")
        ns = p.parse_args(args)
        user_ns = self._shell.user_ns
        policy = self._variable(ns.policy, "--policy") if ns.policy else None
        if policy is not None and not isinstance(policy, Policy):
            raise UsageError(f"--policy {ns.policy} is a {type(policy).__name__}, not an "
                             "agentlab Policy")
        options = CellRunOptions(
            workflow=ns.workflow, agent=ns.agent, agent_version=ns.version,
            task_id=ns.task, task_input=self._variable(ns.input, "--input") if ns.input
            else None, owner=ns.owner, team=ns.team, phase=ns.phase,
            grants=tuple(g for g in ns.grants.split(",") if g), policy=policy,
            decider=ns.by, approval_timeout=timedelta(minutes=ns.timeout),
            metadata={"source": "notebook cell"})
        if self._store is None:  # recording may create the default store (announced)
            self._store = open_store()
        source = self._shell.transform_cell(cell)  # type: ignore[no-untyped-call]
        return start_cell_run(options, self._store, source, user_ns, blocking=ns.wait), ns.wait

    def _variable(self, name: str, flag: str) -> Any:
        try:
            return self._shell.user_ns[name]
        except KeyError:
            raise UsageError(f"{flag} {name}: no variable {name!r} in the notebook; define "
                             "it in an earlier cell") from None

    def _do_diff(self, args: list[str]) -> Diff:
        if len(args) not in (1, 2):
            raise UsageError("%agentlab diff takes one run (its whole run) or two runs")
        first = self.store.resolve(args[0])
        if len(args) == 2:
            second = self.store.resolve(args[1])
            return Diff(f"{first[:12]} -> {second[:12]} (final states)",
                        state_diff(self.store, first, from_seq=None, other_run=second))
        return Diff(f"{first[:12]} (start -> end)", state_diff(self.store, first))


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%agentlab`` and the views of runs and events."""
    ipython.register_magics(AgentlabMagics)
    register(ipython)
