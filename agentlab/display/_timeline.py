"""The timeline of a run as an altair chart: one bar per step, lanes by kind or by agent.

Bars run from a step's start to its end, coloured by status, nested steps below their parent
within a lane; events without a duration (checkpoints, approvals, phases, denials) are points.
Data is passed inline, as values, so the chart renders offline (with the ``svg``/``png``
renderers, an inline renderer, or :func:`save_timeline`). Above ``max_rows`` rows the steps
are aggregated into time buckets per lane (count, errors, cost, dominant status), and the
title says so: altair refuses more than 5,000 rows by default, and a browser would not show
10,000 sub-pixel bars anyway.

>>> chart = timeline_chart(store.events(run_id))      # doctest: +SKIP
>>> save_timeline(chart, "run.svg")                   # doctest: +SKIP

altair is imported when a chart is built, so the package imports without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentlab.analysis import TimelineRow, timeline_rows
from agentlab.analysis._timeline import LANES, PROBLEM_STATUSES, STATUSES
from agentlab.model import Event

if TYPE_CHECKING:
    import altair as alt

__all__ = ["save_timeline", "timeline_chart"]

LaneMode = Literal["kind", "agent"]

STATUS_COLORS: dict[str, str] = {
    "ok": "#4c78a8",
    "approved": "#54a24b",
    "edited": "#72b7b2",
    "retry": "#eeca3b",
    "unfinished": "#bab0ac",
    "no_decision": "#9d755d",
    "rejected": "#b279a2",
    "denied": "#f58518",
    "error": "#e45756",
}
"""One colour per status a timeline row can have, benign to bad."""

_UNITS = (("ms", 1.0, 10_000.0), ("s", 1_000.0, 600_000.0), ("min", 60_000.0, 36_000_000.0))
_HOUR = ("h", 3_600_000.0)
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ROW_TOOLTIP = (
    ("seq", "Q", "seq", None), ("kind", "N", "kind", None),
    ("name", "N", "tool / model / step", None), ("status", "N", "status", None),
    ("agent", "N", "agent", None), ("at", "N", "start (UTC)", None),
    ("duration_ms", "Q", "duration (ms)", ",.3f"), ("cost_usd", "Q", "cost (USD)", ",.6f"),
    ("tokens", "Q", "tokens", ","), ("grant", "N", "grant", None),
    ("approval", "N", "approval", None), ("policy_rule", "N", "policy rule", None),
    ("phase", "N", "phase", None), ("summary", "N", "summary", None),
)
_BUCKET_TOOLTIP = (
    ("lane", "N", "lane", None), ("at", "N", "from (UTC)", None),
    ("count", "Q", "steps", ","), ("errors", "Q", "errors", ","),
    ("refused", "Q", "denied / rejected", ","), ("status", "N", "dominant status", None),
    ("cost_usd", "Q", "cost (USD)", ",.6f"), ("duration_ms", "Q", "busy (ms)", ",.3f"),
    ("top", "N", "most frequent", None),
)


def _unit(span_ms: float) -> tuple[str, float]:
    for name, factor, below in _UNITS:
        if span_ms <= below:
            return name, factor
    return _HOUR


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _as_rows(rows_or_events: Iterable[TimelineRow] | Iterable[Event]) -> list[TimelineRow]:
    items: list[Any] = list(rows_or_events)
    rows = [x for x in items if isinstance(x, TimelineRow)]
    if len(rows) == len(items):
        return rows
    if rows:
        raise TypeError("pass either timeline rows or events, not a mix of both")
    return timeline_rows(items)


def _row_values(rows: Sequence[TimelineRow], lane_of: Any, origin: datetime, factor: float,
                min_width: float) -> list[dict[str, Any]]:
    # Within a lane the shallowest events take the top band and deeper ones go below it
    # (tool calls all sit inside steps: their lane should not start with an empty band).
    top: dict[str, int] = {}
    for r in rows:
        lane = lane_of(r)
        top[lane] = min(top.get(lane, r.depth), r.depth)
    unit = _MS * factor
    out: list[dict[str, Any]] = []
    for r in rows:
        lane = lane_of(r)
        start = (r.start - origin) / unit
        instant = not r.duration_ms
        # A bar is drawn at least a pixel wide; its tooltip keeps the true duration.
        end = start if instant else max((r.end - origin) / unit, start + min_width)
        v: dict[str, Any] = {
            "lane": lane, "level": r.depth - top[lane], "start": start, "end": end,
            "instant": instant, "seq": r.seq, "kind": r.kind, "name": r.name,
            "status": r.status, "agent": r.agent, "at": _iso(r.start), "summary": r.summary,
        }
        # Absent fields are left out (not null): tooltips skip them, and the data stays small.
        for key, value in (("duration_ms", r.duration_ms), ("cost_usd", r.cost_usd),
                           ("tokens", r.tokens), ("grant", r.grant), ("approval", r.approval),
                           ("policy_rule", r.policy_rule), ("phase", r.phase)):
            if value is not None:
                v[key] = value
        out.append(v)
    return out


def _bucket_values(rows: Sequence[TimelineRow], lane_of: Any, origin: datetime,
                   factor: float, span: float, buckets: int
                   ) -> tuple[list[dict[str, Any]], float]:
    """Rows grouped by lane and time bucket of their start: one value per non-empty bucket
    (count, errors, denied or rejected calls, cost, busy time, dominant status, top names)."""
    width = span / buckets if span > 0 else 1.0
    last = buckets - 1
    unit = _MS * factor
    # One pass, plain dicts: [count, cost, busy ms, {status: n}, {name: n}] per bucket.
    groups: dict[tuple[str, int], list[Any]] = {}
    for r in rows:
        index = min(int((r.start - origin) / unit / width), last) if span > 0 else 0
        key = (lane_of(r), index)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = [0, 0.0, 0.0, {}, {}]
        acc[0] += 1
        if r.cost_usd is not None:
            acc[1] += r.cost_usd
        if r.duration_ms:
            acc[2] += r.duration_ms
        statuses, names = acc[3], acc[4]
        statuses[r.status] = statuses.get(r.status, 0) + 1
        names[r.name] = names.get(r.name, 0) + 1
    severity = {s: i for i, s in enumerate(STATUSES)}
    out: list[dict[str, Any]] = []
    for (lane, index), (count, cost, busy, statuses, names) in sorted(groups.items()):
        # The most frequent status; on a tie, the worse one.
        dominant = max(statuses, key=lambda s: (statuses[s], severity.get(s, len(severity))))
        top = sorted(names.items(), key=lambda item: (-item[1], item[0]))[:3]
        out.append({
            "lane": lane, "start": index * width, "end": (index + 1) * width,
            "mid": (index + 0.5) * width, "count": count, "errors": statuses.get("error", 0),
            "refused": statuses.get("denied", 0) + statuses.get("rejected", 0),
            "problems": sum(n for s, n in statuses.items() if s in PROBLEM_STATUSES),
            "status": dominant, "cost_usd": cost, "duration_ms": busy,
            "at": _iso(origin + unit * (index * width)),
            "top": ", ".join(f"{name} ×{n}" for name, n in top),
        })
    return out, width


def _tooltips(alt: Any, spec: Sequence[tuple[str, str, str, str | None]]) -> list[Any]:
    return [alt.Tooltip(f"{field}:{kind}", title=title, **({"format": fmt} if fmt else {}))
            for field, kind, title, fmt in spec]


def _default_title(rows: Sequence[TimelineRow]) -> str:
    runs = {r.run_id for r in rows}
    if len(runs) == 1:
        r = rows[0]
        return f"Run {r.run_id[:12]} ({r.agent}): {len(rows):,} steps"
    return f"{len(runs)} runs: {len(rows):,} steps"


def _nice(x: float) -> str:
    return f"{x:.3g}"


def timeline_chart(
    rows_or_events: Iterable[TimelineRow] | Iterable[Event],
    *,
    lanes: LaneMode = "kind",
    max_rows: int = 5000,
    width: int = 800,
    title: str | None = None,
) -> alt.LayerChart:
    """An altair chart of a run's steps: lanes by kind (``"kind"``) or by agent
    (``"agent"``), colour by status, tooltips with tool, grant, approval, cost, duration.

    Takes timeline rows (:func:`agentlab.analysis.timeline_rows`) or the events themselves.
    The x axis is time since the first step, in ms, s, min or h (whichever fits the run).
    With more than ``max_rows`` rows the chart shows time buckets per lane instead of steps
    (at most ``max_rows`` values; about two pixels per bucket), and the title says so.

    >>> timeline_chart(store.events(run_id), lanes="kind")   # doctest: +SKIP
    """
    import altair as alt

    if lanes not in ("kind", "agent"):
        raise ValueError(f"lanes must be 'kind' or 'agent', not {lanes!r}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, not {max_rows!r}")
    rows = _as_rows(rows_or_events)
    heading = title if title is not None else (_default_title(rows) if rows else "No steps")
    lane_of = attrgetter("lane" if lanes == "kind" else "agent")

    origin = min((r.start for r in rows), default=_EPOCH)
    span_ms = (max((r.end for r in rows), default=_EPOCH) - origin) / _MS
    unit, factor = _unit(span_ms)
    span = span_ms / factor
    present = sorted({lane_of(r) for r in rows})
    lane_order = [name for name in LANES if name in present] if lanes == "kind" else present
    aggregated = len(rows) > max_rows
    if aggregated:
        buckets = max(1, min(max_rows // max(1, len(lane_order)), max(1, width // 2)))
        values, bucket_width = _bucket_values(rows, lane_of, origin, factor, span, buckets)
        heading += (f", aggregated into {len(values):,} time buckets of "
                    f"{_nice(bucket_width)} {unit} (more than {max_rows:,} rows)")
    else:
        values = _row_values(rows, lane_of, origin, factor,
                             min_width=span / width if span > 0 else 0.0)
    statuses = sorted({v["status"] for v in values},
                      key=lambda s: STATUSES.index(s) if s in STATUSES else len(STATUSES))

    x_title = f"time since start ({unit})"
    x = alt.X("start:Q", title=x_title,
              scale=alt.Scale(domain=[0, span] if span > 0 else [0, 1], nice=False))
    y = alt.Y("lane:N", title="lane" if lanes == "kind" else "agent", sort=lane_order)
    color = alt.Color("status:N", title="status", scale=alt.Scale(
        domain=statuses, range=[STATUS_COLORS.get(s, "#888888") for s in statuses]))
    base = alt.Chart().encode(x=x, y=y)  # data goes on the layer, shared by both marks
    if aggregated:
        layers = [
            base.mark_bar().encode(
                x2="end:Q", color=color,
                opacity=alt.Opacity("count:Q", scale=alt.Scale(type="log", range=[0.45, 1]),
                                    legend=None),
                tooltip=_tooltips(alt, _BUCKET_TOOLTIP)),
            # A problem must not vanish in a bucket of successes: mark each such bucket.
            base.mark_point(shape="triangle-down", filled=True, size=50, color="#b42318",
                            opacity=1, yOffset=-8).encode(
                x=alt.X("mid:Q", title=x_title), tooltip=_tooltips(alt, _BUCKET_TOOLTIP))
            .transform_filter("datum.problems > 0"),
        ]
        step = 28
    else:
        depth = alt.YOffset("level:O")  # nested steps sit below their parent in a lane
        tips = _tooltips(alt, _ROW_TOOLTIP)
        layers = [
            base.mark_bar(cornerRadius=1).encode(x2="end:Q", color=color, yOffset=depth,
                                                 tooltip=tips)
            .transform_filter("!datum.instant"),
            base.mark_point(filled=True, shape="diamond", size=70, opacity=1).encode(
                color=color, yOffset=depth, tooltip=tips).transform_filter("datum.instant"),
        ]
        deepest = max((v["level"] for v in values), default=0)
        step = min(120, max(28, 14 * (deepest + 1)))
    return alt.LayerChart(layer=layers, data={"values": values}).properties(
        title=heading, width=width, height=alt.Step(step, **{"for": "position"}))


def _vl_version() -> str | None:
    """The Vega-Lite version altair writes specs for, if vl-convert has it (else its own)."""
    import altair as alt
    import vl_convert

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vl_convert.get_vegalite_versions() else None


def save_timeline(chart: alt.TopLevelMixin, path: str | os.PathLike[str], *,
                  scale: float = 1.0) -> Path:
    """Write a chart to ``.svg`` or ``.png`` with vl-convert: offline (no CDN, no data
    URLs may be fetched), no browser. Returns the path written.

    >>> save_timeline(timeline_chart(events), "run.svg")     # doctest: +SKIP
    """
    import vl_convert

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ValueError(f"save_timeline writes .svg or .png files, not {out.name!r}; "
                         "rename the target, or use chart.save() for other formats")
    spec = chart.to_dict()
    # An empty allow-list: a spec that points at data by URL fails instead of going online.
    if suffix == ".svg":
        out.write_text(vl_convert.vegalite_to_svg(spec, vl_version=_vl_version(),
                                                  allowed_base_urls=[]), encoding="utf-8")
    else:
        out.write_bytes(vl_convert.vegalite_to_png(spec, vl_version=_vl_version(), scale=scale,
                                                   allowed_base_urls=[]))
    return out

