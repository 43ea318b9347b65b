"""``agentlab metrics``: completion with override rate, retries and incidents, cost per
success, latency and MTTE per workflow / agent version / phase / time bucket.

A thin front end over :func:`agentlab.analysis.metrics_summary`, which reads only the run
summaries and needs neither pandas nor polars; ``--engine`` builds the same rows through
:func:`agentlab.analysis.metrics` as a frame instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import click

from agentlab.analysis import GROUP_BY, metrics, metrics_summary
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    store_option,
    wrap_errors,
)
from agentlab.query import Engine

__all__: list[str] = []  # the command registers itself on ``cli``

_GROUP_NAMES = ", ".join(sorted(GROUP_BY))
# What the table shows; --json carries every metric.
_SHOWN = (
    ("RUNS", "runs", "n"), ("DONE", "completion_rate", "%"), ("OVERRIDE", "override_rate", "%"),
    ("RETRY", "retry_rate", "%"), ("INCIDENT", "incident_rate", "%"),
    ("$/SUCCESS", "cost_per_success", "$"), ("P50 S", "latency_p50_s", "s"),
    ("P95 S", "latency_p95_s", "s"), ("MTTE S", "mtte_s", "s"),
)


def _cell(value: Any, how: str) -> str:
    if value is None:
        return "-"
    if how == "%":
        return f"{value:.1%}"
    if how == "$":
        return f"${value:,.4f}"
    if how == "s":
        return f"{value:,.1f}"
    return f"{value:,}"


def _bucket(at: datetime, bucket: str) -> str:
    return at.strftime("%Y-%m-%d %H:00") if bucket == "hour" else at.strftime("%Y-%m-%d")


def metrics_table(rows: Sequence[dict[str, Any]], group: Sequence[str],
                  bucket: str | None) -> str:
    """The rows as a plain-text table: group columns, bucket, then the headline metrics."""
    if not rows:
        return "no runs match (record some, or widen the filters)"
    head = [*(g.upper() for g in group), *(["BUCKET"] if bucket else []),
            *(h for h, _, _ in _SHOWN)]
    lines = [head]
    for r in rows:
        cells = [("-" if r[g] is None else str(r[g])) for g in group]
        if bucket:
            cells.append(_bucket(r["bucket"], bucket))
        cells.extend(_cell(r[name], how) + ("+" if how == "$" and r[name] is not None
                                            and r.get("unpriced_calls") else "")
                     for _, name, how in _SHOWN)
        lines.append(cells)
    left = len(group) + (1 if bucket else 0)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    table = "\n".join(
        "  ".join(c.ljust(w) if i < left else c.rjust(w)
                  for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines)
    unpriced = sum(r.get("unpriced_calls") or 0 for r in rows)
    if unpriced:
        table += (f"\n\n$/SUCCESS: {unpriced:,} model calls recorded no cost; a '+' counts "
                  "the priced ones only (a lower bound), '-' means none was priced")
    return table


def _plain(value: Any) -> Any:
    """A frame cell as a plain Python value (pandas gives NaN, NA and Timestamps)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _frame_rows(frame: Any) -> list[dict[str, Any]]:
    records = frame.to_dicts() if hasattr(frame, "to_dicts") else frame.to_dict("records")
    return [{k: _plain(v) for k, v in rec.items()} for rec in records]


@cli.command("metrics")
@store_option
@json_option
@click.option("--by", "by", default="workflow", show_default=True, metavar="COLUMNS",
              help=f"Comma-separated run columns to group by ({_GROUP_NAMES}); "
              "an empty string gives one row over all runs.")
@click.option("--bucket", type=click.Choice(["hour", "day", "week"]),
              help="Also group by the hour, day or week (UTC; weeks start on Monday) in "
              "which each run started.")
@click.option("--since", metavar="ISO",
              help="Only runs started at or after this ISO 8601 date or time (UTC unless "
              "it gives a zone).")
@click.option("--until", metavar="ISO", help="Only runs started before this date or time.")
@click.option("--workflow", help="Only runs of this workflow.")
@click.option("--agent", help="Only runs of this agent name.")
@click.option("--agent-version", help="Only runs of this agent version.")
@click.option("--phase", type=click.Choice(["read", "draft", "act"]),
              help="Only runs whose latest phase is this one.")
@click.option("--task", "task_id", help="Only runs of this task id.")
@click.option("--engine", type=click.Choice(["pandas", "polars"]), default=None,
              help="Compute through metrics(engine=...) as a pandas or polars frame, as a "
              "notebook does; by default plain Python, with neither library needed.")
@wrap_errors
def metrics_cmd(store_url: str | None, as_json: bool, by: str, bucket: str | None,
                since: str | None, until: str | None, workflow: str | None,
                agent: str | None, agent_version: str | None, phase: str | None,
                task_id: str | None, engine: str | None) -> None:
    """Completion rate with human override rate, retry and incident rates, cost per
    successful run, latency p50/p95 and MTTE, per group of runs.

    Read from the run summaries (the events are never scanned). Rates divide by finished
    runs, override_rate by human decisions; docs/metrics.md defines every column. --json
    prints every metric of every group.
    """
    group = [b.strip() for b in by.split(",") if b.strip()]
    unknown = [g for g in group if g not in GROUP_BY]
    if unknown:
        fail(f"--by {by!r}: cannot group by {', '.join(unknown)}; choose from {_GROUP_NAMES}")
    columns = list(dict.fromkeys(GROUP_BY[g] for g in group))
    args: dict[str, Any] = {
        "by": columns, "bucket": bucket, "since": since, "until": until,
        "workflow": workflow, "agent": agent, "agent_version": agent_version,
        "phase": phase, "task": task_id,
    }
    with open_cli_store(store_url, create=False) as store:
        try:
            if engine is None:
                rows = [r.as_dict() for r in metrics_summary(store, **args)]
            else:
                rows = _frame_rows(metrics(store, **args, engine=cast("Engine", engine)))
        except (ValueError, ImportError) as exc:  # a bad --since, a library not installed
            fail(str(exc))
    if as_json:
        echo_json(rows)
        return
    click.echo(metrics_table(rows, columns, bucket))
    if rows:
        click.echo(f"\n{len(rows)} group(s). DONE = succeeded ÷ finished runs; OVERRIDE = "
                   "edits and rejections ÷ human decisions;\nRETRY, INCIDENT = finished runs "
                   "with a retry / with an error, retry, denial or stale result ÷ finished "
                   "runs; --json has every metric.")
