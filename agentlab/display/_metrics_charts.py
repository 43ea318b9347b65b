"""Charts of the run metrics: one altair chart per metric, from what ``metrics()`` returns.

With a ``bucket`` column the chart is a line per group over time; without one, a bar per
group. Groups are the rows' group columns joined (``support-triage / v2``). Data is passed
inline, as values, so a chart renders offline (the svg or png renderer, or
``chart.save("completion.svg")`` with vl-convert).

>>> m = metrics(store, by=("workflow", "agent_version"), bucket="day")   # doctest: +SKIP
>>> metrics_chart(m, "completion_rate")
>>> charts = metrics_charts(m)          # {metric: chart} for the headline metrics

altair is imported when a chart is built, so the package imports without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentlab.analysis import GROUP_BY, METRICS, MetricsRow

if TYPE_CHECKING:
    import altair as alt

__all__ = ["HEADLINE_METRICS", "metrics_chart", "metrics_charts"]

HEADLINE_METRICS: tuple[str, ...] = (
    "completion_rate", "override_rate", "retry_rate", "incident_rate", "cost_per_success",
    "latency_p50_s", "latency_p95_s", "mtte_s",
)
"""The metrics :func:`metrics_charts` draws by default."""

_GROUP_COLUMNS = frozenset(GROUP_BY.values())


def _axis(metric: str) -> tuple[str, str]:
    """Axis title and number format for a metric."""
    if metric.endswith("_rate"):
        return "share", ".0%"
    if metric.startswith("cost"):
        return "USD", "$,.4f"
    if metric.endswith("_s"):
        return "seconds", ",.1f"
    return "count", ",d"


def _records(data: Any) -> list[dict[str, Any]]:
    """Rows as plain dicts from a pandas or polars frame, or from MetricsRow objects."""
    if hasattr(data, "to_dicts"):  # polars
        return list(data.to_dicts())
    if hasattr(data, "to_dict"):  # pandas
        return list(data.to_dict("records"))
    rows = list(data)
    return [r.as_dict() if isinstance(r, MetricsRow) else dict(r) for r in rows]


def _plain(value: Any) -> Any:
    """A JSON-able cell: NaN/NA to None, datetimes to ISO 8601 with a Z."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def metrics_chart(data: Any, metric: str, *, by: Sequence[str] | None = None,
                  title: str | None = None, width: int = 480) -> alt.Chart:
    """One metric per group: a line over the time buckets when the rows have a ``bucket``,
    else a bar per group. ``by`` names the group columns (default: every group column the
    rows have); ``data`` is a frame from ``metrics()`` or rows from ``metrics_summary()``."""
    import altair as alt

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    records = _records(data)
    columns = list(records[0]) if records else []
    if records and metric not in columns:
        raise ValueError(f"the rows have no {metric!r} column (they have {columns})")
    group = list(by) if by is not None else [c for c in columns if c in _GROUP_COLUMNS]
    missing = [g for g in group if records and g not in columns]
    if missing:
        raise ValueError(f"the rows have no group columns {missing} (they have {columns})")
    bucketed = "bucket" in columns
    values = []
    for rec in records:
        label = " / ".join("-" if rec[g] is None else str(rec[g]) for g in group) or "all runs"
        row = {"group": label, "value": _plain(rec[metric]), "runs": _plain(rec.get("runs"))}
        if bucketed:
            row["bucket"] = _plain(rec["bucket"])
        values.append(row)
    axis_title, fmt = _axis(metric)
    value_axis = alt.Axis(format=fmt, title=f"{metric} ({axis_title})")
    group_title = " / ".join(group) or "group"
    tooltip = [alt.Tooltip("group:N", title=group_title),
               alt.Tooltip("value:Q", title=metric, format=fmt),
               alt.Tooltip("runs:Q", title="runs", format=",d")]
    heading = alt.TitleParams(title or metric, subtitle=METRICS[metric])
    base = alt.Chart({"values": values})  # inline values: no file, no URL, no CDN
    if bucketed:
        chart = base.mark_line(point=True).encode(
            x=alt.X("bucket:T", title="bucket start (UTC)"),
            y=alt.Y("value:Q", axis=value_axis),
            color=alt.Color("group:N", title=group_title),
            tooltip=[alt.Tooltip("bucket:T", title="from (UTC)"), *tooltip],
        )
    else:
        chart = base.mark_bar().encode(
            x=alt.X("value:Q", axis=value_axis),
            y=alt.Y("group:N", title=group_title, sort="-x"),
            tooltip=tooltip,
        )
    done: alt.Chart = chart.properties(title=heading, width=width)
    return done


def metrics_charts(data: Any, metrics: Iterable[str] = HEADLINE_METRICS, *,
                   by: Sequence[str] | None = None) -> dict[str, alt.Chart]:
    """A chart for each metric (default: :data:`HEADLINE_METRICS`), by metric name."""
    rows: Any = data
    if not hasattr(data, "to_dicts") and not hasattr(data, "to_dict"):
        rows = _records(data)  # read an iterator once
    return {m: metrics_chart(rows, m, by=by) for m in metrics}
