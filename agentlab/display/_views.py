"""How runs, events and state changes look in a notebook.

The models stay free of IPython; :func:`register` teaches a shell's display formatters
their views: a run summary as one line, an event as one line (the same words as the CLI's
``show``, from :func:`agentlab.model.describe_event`), a list of events as a table with the
payloads folded (``store.events(run_id)`` no longer prints pages of object text). Every view
has a text/plain form as well as its HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from agentlab.model import (
    ApprovalRequest,
    Change,
    Event,
    EventBase,
    RunCounts,
    RunSummary,
    describe_event,
)

__all__ = ["Diff", "RunView", "events_html", "register", "summary_html", "summary_text"]

_STATUS_COLORS = {"succeeded": "#067647", "failed": "#b42318", "errored": "#b42318",
                  "running": "#b54708"}
_MAX_ROWS = 500


def _short(value: Any, width: int = 60) -> str:
    text = " ".join(repr(value).split()) if value is not None else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_text(r: RunSummary) -> str:
    """One line: the run, what ran it, how it ended, and its counts."""
    ok = "" if r.success is None else f" success={r.success}"
    return (f"run {r.run_id}  {r.workflow}/{r.agent_name}"
            f"{' ' + r.agent_version if r.agent_version else ''}  {r.shown_status}{ok}  "
            f"task {r.task_id or '-'}  {RunCounts.of_summary(r).phrase()}, {r.shown_cost}")


def summary_html(r: RunSummary, *_: Any) -> str:
    color = _STATUS_COLORS.get(r.shown_status, "#667085")
    version = f" {html.escape(r.agent_version)}" if r.agent_version else ""
    return (f"<div><code title='{html.escape(r.run_id)}'>{html.escape(r.run_id[:12])}</code> "
            f"<b>{html.escape(r.workflow)}</b> / {html.escape(r.agent_name)}{version} "
            f"<span style='color:{color}'>{html.escape(r.shown_status)}</span> "
            f"task {html.escape(r.task_id or '-')}: "
            f"{html.escape(RunCounts.of_summary(r).phrase())}, {r.shown_cost}</div>")


def _describe(e: EventBase) -> str:
    return describe_event(cast(Event, e))  # every stored event is one of the Event kinds


def _event_cells(e: EventBase) -> str:
    status = getattr(e, "status", None) or ""
    color = {"denied": "#b42318", "error": "#b42318", "errored": "#b42318",
             "failed": "#b42318"}.get(status, "inherit")
    duration = f"{e.duration_ms:.2f} ms" if e.duration_ms is not None else ""
    kind = cast(Event, e).kind
    return (f"<td>{e.seq}</td><td>{html.escape(kind)}</td>"
            f"<td style='color:{color}'>{html.escape(status)}</td>"
            f"<td style='text-align:right'>{duration}</td>"
            f"<td style='text-align:left'>{html.escape(_describe(e))}</td>")


_HEAD = ("<tr><th>seq</th><th>kind</th><th>status</th><th>duration</th>"
         "<th style='text-align:left'>what happened</th></tr>")


def event_html(e: EventBase, *_: Any) -> str:
    return f"<table>{_HEAD}<tr>{_event_cells(e)}</tr></table>"


def event_text(e: EventBase) -> str:
    return f"<{cast(Event, e).kind} seq {e.seq}: {_describe(e)}>"


def events_html(events: Sequence[Any], *_: Any) -> str | None:
    """A table of events; None for a list that holds anything else (shown as before)."""
    if not events or not all(isinstance(e, EventBase) for e in events):
        return None
    rows = "".join(f"<tr>{_event_cells(e)}</tr>" for e in events[:_MAX_ROWS])
    more = (f"<div><i>{len(events) - _MAX_ROWS} more events not shown; slice the list "
            f"to see them</i></div>" if len(events) > _MAX_ROWS else "")
    runs = {e.run_id for e in events}
    title = (f"{len(events)} events of run {next(iter(runs))}" if len(runs) == 1
             else f"{len(events)} events of {len(runs)} runs")
    return f"<div><b>{html.escape(title)}</b></div><table>{_HEAD}{rows}</table>{more}"


def approval_text(a: ApprovalRequest) -> str:
    """One line: the call, who asked and under which rule, and the decision if any."""
    decided = (f"{a.status} by {a.decided_by} via {a.channel}" if a.decided
               else f"{a.status}, expires {a.expires_at:%Y-%m-%d %H:%M} UTC")
    why = f": {a.reason}" if a.reason else ""
    return (f"approval {a.id} {a.tool}({_short(a.arguments, 50)}) in run {a.run_id[:12]} "
            f"(rule {a.rule or '-'}, grant {a.grant or '-'}): {decided}{why}")


def approval_html(a: ApprovalRequest, *_: Any) -> str:
    color = {"approved": "#067647", "edited": "#b54708", "rejected": "#b42318",
             "expired": "#b42318"}.get(a.status, "#667085")
    text = approval_text(a)
    head, _sep, rest = text.partition(": ")
    return (f"<div><code>{html.escape(head)}</code>: "
            f"<span style='color:{color}'>{html.escape(rest)}</span></div>")


@dataclass
class RunView:
    """A run's summary over its steps (what ``%agentlab show`` returns)."""

    summary: RunSummary
    steps: Any
    """The steps as a DataFrame (``agentlab.query.steps_df``)."""

    def _repr_html_(self) -> str:
        table: str = self.steps.to_html(index=False, max_rows=200)
        return summary_html(self.summary) + table

    def __repr__(self) -> str:
        return f"{summary_text(self.summary)}\n{self.steps.to_string(index=False, max_rows=50)}"


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


def register(shell: Any) -> None:
    """Give ``shell``'s formatters the views of run summaries, events (one and a list of
    them) and approval requests."""
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(RunSummary, summary_html)
    formatters["text/html"].for_type(EventBase, event_html)
    formatters["text/html"].for_type(list, events_html)
    formatters["text/html"].for_type(ApprovalRequest, approval_html)
    plain = formatters["text/plain"]
    plain.for_type(ApprovalRequest, lambda a, p, cycle: p.text(approval_text(a)))
    plain.for_type(RunSummary, lambda r, p, cycle: p.text(summary_text(r)))
    plain.for_type(EventBase, lambda e, p, cycle: p.text(event_text(e)))
