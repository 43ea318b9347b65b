"""The IPython extension: ``%load_ext agentlab`` (or ``c.InteractiveShellApp.extensions =
["agentlab"]`` in ``ipython_kernel_config.py``).

One line magic over the session's store, each subcommand as the CLI names it::

    %agentlab open URL          the store the other subcommands use (default: as open_store())
    %agentlab runs [--workflow W] [--status S] [--agent A] [--limit N]
    %agentlab show RUN          the run's summary and its steps
    %agentlab explain RUN       the ranked culprits, credentials, state, replayability
    %agentlab approvals         the pending approvals, as widgets to answer them
    %agentlab diff RUN [RUN_B]  what changed in the run state (or between two runs)

Each returns an object the notebook displays (a table, an explanation, widgets), so its
value can also be kept: ``ex = %agentlab explain 01a2...``. A run summary gets a one-line
HTML view. The models stay free of IPython: the views are registered here.
"""

from __future__ import annotations

import argparse
import html
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from agentlab.analysis import explain, state_diff
from agentlab.errors import AgentlabError
from agentlab.model import Change, RunSummary
from agentlab.query import runs_df, steps_df
from agentlab.store import SqlStore, open_store

__all__ = ["AgentlabMagics", "load_ipython_extension"]

_USAGE = (__doc__ or "").split("::", 1)[1].split("Each returns", 1)[0]


def _parser(prog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"%agentlab {prog}", add_help=False,
                                   exit_on_error=False)


@dataclass
class RunView:
    """A run's summary over its steps (what ``%agentlab show`` returns)."""

    summary: RunSummary
    steps: Any
    """The steps as a DataFrame (``agentlab.query.steps_df``)."""

    def _repr_html_(self) -> str:
        table: str = self.steps.to_html(index=False, max_rows=200)
        return _summary_html(self.summary) + table

    def __repr__(self) -> str:
        return f"{_summary_text(self.summary)}\n{self.steps.to_string(index=False, max_rows=50)}"


@dataclass
class Diff:
    """State changes (what ``%agentlab diff`` returns)."""

    title: str
    changes: list[Change]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c.op)}</td><td><code>{html.escape(c.path)}</code></td>"
            f"<td>{html.escape(_short(c.old))}</td><td>{html.escape(_short(c.new))}</td></tr>"
            for c in self.changes)
        return (f"<b>{html.escape(self.title)}</b>: {len(self.changes)} change(s)<table>"
                f"<tr><th>op</th><th>path</th><th>old</th><th>new</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        lines = [f"{self.title}: {len(self.changes)} change(s)"]
        lines += [f"  {c.op:<6} {c.path}  {_short(c.old)} -> {_short(c.new)}"
                  for c in self.changes]
        return "\n".join(lines)


def _short(value: Any, width: int = 60) -> str:
    text = " ".join(repr(value).split()) if value is not None else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary_text(r: RunSummary) -> str:
    ok = "" if r.success is None else f" success={r.success}"
    return (f"run {r.run_id}  {r.workflow}/{r.agent_name}  {r.status}{ok}  "
            f"task {r.task_id or '-'}  steps {r.step_count}")


def _summary_html(r: RunSummary, *_: Any) -> str:
    color = {"succeeded": "#2e7d32", "failed": "#c62828", "errored": "#c62828"}.get(
        r.status, "#555")
    return (f"<div><code>{html.escape(r.run_id[:12])}</code> "
            f"<b>{html.escape(r.workflow)}</b> / {html.escape(r.agent_name)} "
            f"<span style='color:{color}'>{html.escape(r.status)}</span> "
            f"task {html.escape(r.task_id or '-')}, {r.step_count} steps</div>")


@magics_class
class AgentlabMagics(Magics):
    """``%agentlab``: see the module docstring."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._store: SqlStore | None = None

    @property
    def store(self) -> SqlStore:
        if self._store is None:
            self._store = open_store(create=False)
        return self._store

    @line_magic
    def agentlab(self, line: str) -> Any:
        words = shlex.split(line)
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
        return f"agentlab store: {args[0]} ({len(store.runs())} runs)"

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
        from agentlab.display._approval import pending_approvals

        return pending_approvals(self.store)

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
    """Register ``%agentlab`` and the run summary's HTML view."""
    ipython.register_magics(AgentlabMagics)
    formatter = ipython.display_formatter.formatters["text/html"]
    formatter.for_type(RunSummary, _summary_html)
