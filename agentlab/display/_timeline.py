"""The timeline of a run as a chart: one bar per step or call, lanes by kind or by agent.

Bars run from a start to an end, coloured by status and labelled with their name, nested
steps below their parent within a lane; events without a duration (checkpoints, approvals,
phases, denials) are diamonds. Waits (a human deciding an approval, a retry's backoff) are
dashed bars in their own lane, labelled with how long they took. What an explanation found
(its culprits, stale reads) and every denied, rejected, edited or failed call are outlined in
red and named in the label. Everything a mark shows is a column of the inline data, so the
interactive and the static forms agree.

Above ``max_rows`` rows the rows are aggregated into time buckets per lane (count, errors,
cost, dominant status), and the title says so: altair refuses more than 5,000 rows by
default, and a browser would not show 10,000 sub-pixel bars anyway.

>>> tl = timeline_chart(store.events(run_id), explanation=explain(store, run_id))  # doctest: +SKIP
>>> tl                       # in a notebook: interactive, offline, tooltips on hover
>>> tl.static()              # an SVG image (CI, nbval); tl.save("run.html" | ".svg" | ".png")

altair is imported when a chart is built, so the package imports without it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from agentlab.analysis import TimelineRow, timeline_rows
from agentlab.analysis._timeline import (
    LANE_TITLES,
    LANES,
    PROBLEM_STATUSES,
    STATUSES,
    human_duration,
    timeline_counts,
)
from agentlab.display._timeline_view import TimelineChart, save_timeline
from agentlab.model import ApprovalRequest, Event, RunCounts, count_events

if TYPE_CHECKING:
    from agentlab.analysis import Explanation

__all__ = ["TimelineChart", "save_timeline", "timeline_chart"]

LaneMode = Literal["kind", "agent"]

STATUS_COLORS: dict[str, str] = {
    "ok": "#4c78a8",
    "wait": "#c9c3e6",
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

_LIGHT = frozenset({"wait", "retry", "unfinished", "edited"})
"""Statuses whose colour is light: a label inside their bar is written in dark ink."""
_FINDING_RED = "#b42318"
_CHAR_PX = 6.2  # the width of a character of a 10 px label, about
_OUTSIDE_CHARS = 40

_Label = tuple[int, float, dict[str, Any], str, str]
"""A label to place: priority, left edge (px), the row's values, text, ink colour."""

_BUCKET_TOOLTIP = (
    ("lane", "N", "lane", None), ("at", "N", "from (UTC)", None),
    ("count", "Q", "rows", ","), ("errors", "Q", "errors", ","),
    ("refused", "Q", "denied / rejected", ","), ("findings", "Q", "findings", ","),
    ("status", "N", "dominant status", None),
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


def _rows_and_counts(
    rows_or_events: Iterable[TimelineRow] | Iterable[Event],
    approvals: Iterable[ApprovalRequest] | None,
    explanation: Explanation | None,
) -> tuple[list[TimelineRow], RunCounts]:
    """Rows to draw and the counts for the title: from events, every count (events
    included); from rows, what the rows show."""
    items: list[Any] = list(rows_or_events)
    rows = [x for x in items if isinstance(x, TimelineRow)]
    if rows and len(rows) == len(items):
        if explanation is not None or approvals is not None:
            raise TypeError("explanation= and approvals= apply to events; pass the events, "
                            "or pass them to timeline_rows() before charting its rows")
        return rows, timeline_counts(rows)
    if rows:
        raise TypeError("pass either timeline rows or events, not a mix of both")
    return (timeline_rows(items, approvals=approvals, explanation=explanation),
            count_events(items))


def _fit(text: str, chars: int) -> str:
    if chars < 3:
        return ""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _finding_tag(finding: str) -> str:
    """``culprit #1 (score 7); stale read`` as a label says it: ``culprit #1, stale``."""
    tags = []
    for part in finding.split("; "):
        tag = part.split(" (", 1)[0].removesuffix(" by a human").removesuffix(" read")
        tags.append(tag)
    return ", ".join(tags)


def _label(r: TimelineRow) -> str:
    """What a mark says: the name; a wait, how long; a finding, what it is."""
    if r.lane == "wait" and r.duration_ms is not None:
        what = "approval" if r.kind == "approval_wait" else "backoff"
        text = f"{what} wait {human_duration(r.duration_ms)}"
    else:
        text = r.name
    return f"{text} ⚑ {_finding_tag(r.finding)}" if r.finding else text


def _row_values(rows: Sequence[TimelineRow], lane_of: Any, origin: datetime, factor: float,
                span: float, width: int) -> list[dict[str, Any]]:
    # Within a lane the shallowest events take the top band and deeper ones go below it
    # (tool calls all sit inside steps: their lane should not start with an empty band).
    top: dict[str, int] = {}
    for r in rows:
        lane = lane_of(r)
        top[lane] = min(top.get(lane, r.depth), r.depth)
    unit = _MS * factor
    px = width / span if span > 0 else 0.0  # pixels per x unit
    min_width = 1 / px if px else 0.0
    out: list[dict[str, Any]] = []
    labels: list[_Label] = []
    for r in rows:
        lane = lane_of(r)
        start = (r.start - origin) / unit
        instant = not r.duration_ms
        # A bar is drawn at least a pixel wide; its tooltip keeps the true duration.
        end = start if instant else max((r.end - origin) / unit, start + min_width)
        v: dict[str, Any] = {
            "lane": lane, "level": r.depth - top[lane], "start": start, "end": end,
            "instant": instant, "wait": r.lane == "wait", "seq": r.seq, "kind": r.kind,
            "name": r.name, "status": r.status, "agent": r.agent, "at": _iso(r.start),
            "summary": r.summary,
        }
        # A label goes inside a bar wide enough for a few characters, else after the mark
        # when it matters (a finding, a wait, a decision); other small marks stay unlabelled
        # (their tooltip names them). Labels that would overlap are placed below.
        if px:
            inside = 0 if instant else int(((end - start) * px - 6) / _CHAR_PX)
            text = _label(r)
            important = bool(r.finding) or r.lane in ("wait", "governance")
            if (len(text) <= inside and not r.finding) or (inside >= 4 and not important):
                text = _fit(text, inside)
                ink = "#1f1f1f" if r.status in _LIGHT else "#ffffff"
                labels.append((_priority(r), start * px + 3, v, text, ink))
            elif important:
                text = _fit(text, _OUTSIDE_CHARS)
                at = end * px + (11 if instant else 5)
                ink = _FINDING_RED if r.finding else "#1f1f1f"
                labels.append((_priority(r), at, v, text, ink))
        # Absent fields are left out (not null): tooltips skip them, and the data stays small.
        for key, value in (("duration_ms", r.duration_ms), ("cost_usd", r.cost_usd),
                           ("tokens", r.tokens), ("grant", r.grant), ("approval", r.approval),
                           ("policy_rule", r.policy_rule), ("phase", r.phase)):
            if value is not None:
                v[key] = value
        if r.finding:
            v["finding"] = r.finding
        v["tip"] = _tip(r)
        out.append(v)
    _place_labels(labels, px)
    return out


def _tip(r: TimelineRow) -> dict[str, str]:
    """What hovering a mark shows: only the fields the row has, each as people read it
    (a tooltip of fixed fields would print "undefined" for the ones a mark lacks)."""
    took = r.duration_ms
    fields: list[tuple[str, Any]] = [
        ("tool / model / step", r.name), ("status", r.status), ("finding", r.finding or None),
        ("took", (f"{took:.2f} ms" if took < 10 else human_duration(took)) if took else None),
        ("grant", r.grant), ("approval", r.approval), ("policy rule", r.policy_rule),
        ("phase", r.phase), ("cost", f"${r.cost_usd:,.6f}" if r.cost_usd else None),
        ("tokens", f"{r.tokens:,}" if r.tokens else None), ("seq", str(r.seq)),
        ("kind", r.kind), ("agent", r.agent), ("start (UTC)", _iso(r.start)),
        ("summary", r.summary or None),
    ]
    return {k: str(value) for k, value in fields if value is not None and value != ""}


def _priority(r: TimelineRow) -> int:
    """Which label wins a place: culprits by rank, other findings, waits, decisions, rest."""
    if r.finding.startswith("culprit #"):
        return int(r.finding[9:].split(" ", 1)[0])
    return 1000 if r.finding else 2000 if r.lane == "wait" else 3000 if (
        r.lane == "governance") else 4000


def _place_labels(labels: list[_Label], px: float) -> None:
    """Give each label a place in its lane band, most important first; a label that would
    overlap one already placed is left out (its mark's tooltip still names it)."""
    placed: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _, at, v, text, ink in sorted(labels, key=lambda x: (x[0], x[1])):
        right = at + len(text) * _CHAR_PX
        taken = placed.setdefault((v["lane"], v["level"]), [])
        i = bisect.bisect_left(taken, (at, right))
        if (i > 0 and taken[i - 1][1] > at) or (i < len(taken) and taken[i][0] < right):
            continue
        taken.insert(i, (at, right))
        v["label"], v["label_x"], v["ink"] = text, at / px, ink


def _bucket_values(rows: Sequence[TimelineRow], lane_of: Any, origin: datetime,
                   factor: float, span: float, buckets: int
                   ) -> tuple[list[dict[str, Any]], float]:
    """Rows grouped by lane and time bucket of their start: one value per non-empty bucket
    (count, errors, denied or rejected calls, findings, cost, busy time, dominant status,
    top names)."""
    width = span / buckets if span > 0 else 1.0
    last = buckets - 1
    unit = _MS * factor
    # One pass, plain dicts: [count, cost, busy ms, {status: n}, {name: n}, findings] a bucket.
    groups: dict[tuple[str, int], list[Any]] = {}
    for r in rows:
        index = min(int((r.start - origin) / unit / width), last) if span > 0 else 0
        key = (lane_of(r), index)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = [0, 0.0, 0.0, {}, {}, 0]
        acc[0] += 1
        if r.cost_usd is not None:
            acc[1] += r.cost_usd
        if r.duration_ms:
            acc[2] += r.duration_ms
        statuses, names = acc[3], acc[4]
        statuses[r.status] = statuses.get(r.status, 0) + 1
        names[r.name] = names.get(r.name, 0) + 1
        if r.finding:
            acc[5] += 1
    severity = {s: i for i, s in enumerate(STATUSES)}
    out: list[dict[str, Any]] = []
    for (lane, index), (count, cost, busy, statuses, names, found) in sorted(groups.items()):
        # The most frequent status; on a tie, the worse one.
        dominant = max(statuses, key=lambda s: (statuses[s], severity.get(s, len(severity))))
        top = sorted(names.items(), key=lambda item: (-item[1], item[0]))[:3]
        out.append({
            "lane": lane, "start": index * width, "end": (index + 1) * width,
            "mid": (index + 0.5) * width, "count": count, "errors": statuses.get("error", 0),
            "refused": statuses.get("denied", 0) + statuses.get("rejected", 0),
            "problems": sum(n for s, n in statuses.items() if s in PROBLEM_STATUSES),
            "findings": found, "status": dominant, "cost_usd": cost, "duration_ms": busy,
            "at": _iso(origin + unit * (index * width)),
            "top": ", ".join(f"{name} ×{n}" for name, n in top),
        })
    return out, width


def _tooltips(alt: Any, spec: Sequence[tuple[str, str, str, str | None]]) -> list[Any]:
    return [alt.Tooltip(f"{field}:{kind}", title=title, **({"format": fmt} if fmt else {}))
            for field, kind, title, fmt in spec]


def _waited(rows: Sequence[TimelineRow]) -> str:
    """``; waited 14.7 s for approvals`` (and for retries), or nothing."""
    parts = []
    for kind, what in (("approval_wait", "approvals"), ("retry_wait", "retries")):
        ms = sum(r.duration_ms or 0.0 for r in rows if r.kind == kind)
        if ms:
            parts.append(f"{human_duration(ms)} for {what}")
    return f"; waited {' and '.join(parts)}" if parts else ""


def _default_title(rows: Sequence[TimelineRow], counts: RunCounts) -> str:
    runs = {r.run_id for r in rows}
    what = counts.phrase() + _waited(rows)
    if len(runs) == 1:
        r = rows[0]
        return f"Run {r.run_id[:12]} ({r.agent}): {what}"
    return f"{len(runs)} runs: {what}"


def _nice(x: float) -> str:
    return f"{x:.3g}"


def _lane_axis(alt: Any, lanes: LaneMode) -> Any:
    """The lanes by name (``tool calls``, ``waits``...) rather than by key."""
    if lanes != "kind":
        return alt.Axis(title="agent")
    expr = "datum.value"
    for key, name in reversed(LANE_TITLES.items()):
        expr = f"datum.value === '{key}' ? '{name}' : ({expr})"
    return alt.Axis(title=None, labelExpr=expr, labelFontWeight="bold")


def timeline_chart(
    rows_or_events: Iterable[TimelineRow] | Iterable[Event],
    *,
    explanation: Explanation | None = None,
    approvals: Iterable[ApprovalRequest] | None = None,
    lanes: LaneMode = "kind",
    max_rows: int = 5000,
    width: int = 800,
    title: str | None = None,
) -> TimelineChart:
    """A run's timeline: lanes by kind (``"kind"``) or by agent (``"agent"``), colour by
    status, a label on each mark that has room, tooltips with the name, status, finding,
    duration, grant, approval, cost and tokens.

    Takes the events (``store.events(run_id)``) or timeline rows
    (:func:`agentlab.analysis.timeline_rows`). With events, ``explanation`` (from
    :func:`agentlab.analysis.explain`) marks its culprits and stale reads, and
    ``approvals`` (``store.approvals(run_id=...)``) times each human wait from the
    request; the title counts the run in the words of :class:`agentlab.model.RunCounts`.
    The x axis is time since the first row, in ms, s, min or h (whichever fits the run).
    With more than ``max_rows`` rows the chart shows time buckets per lane instead (at
    most ``max_rows`` values; about two pixels a bucket), and the title says so.

    Returns a :class:`TimelineChart`: interactive in a notebook (offline), ``.static()``
    for an SVG or PNG, ``.save(path)``, ``.chart`` for the altair object.

    >>> timeline_chart(store.events(run_id), explanation=explain(store, run_id))  # doctest: +SKIP
    """
    import altair as alt

    if lanes not in ("kind", "agent"):
        raise ValueError(f"lanes must be 'kind' or 'agent', not {lanes!r}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, not {max_rows!r}")
    rows, counts = _rows_and_counts(rows_or_events, approvals, explanation)
    heading = title if title is not None else (
        _default_title(rows, counts) if rows else "Nothing recorded")
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
        values = _row_values(rows, lane_of, origin, factor, span, width)
    statuses = sorted({v["status"] for v in values},
                      key=lambda s: STATUSES.index(s) if s in STATUSES else len(STATUSES))

    x_title = f"time since start ({unit})"
    x = alt.X("start:Q", title=x_title,
              scale=alt.Scale(domain=[0, span] if span > 0 else [0, 1], nice=False))
    y = alt.Y("lane:N", sort=lane_order, axis=_lane_axis(alt, lanes))
    color = alt.Color("status:N", title="status", scale=alt.Scale(
        domain=statuses, range=[STATUS_COLORS.get(s, "#888888") for s in statuses]))
    base = alt.Chart().encode(x=x, y=y)  # data goes on the layer, shared by every mark
    if aggregated:
        problem = "datum.problems > 0 || datum.findings > 0"
        layers = [
            base.mark_bar().encode(
                x2="end:Q", color=color,
                opacity=alt.Opacity("count:Q", scale=alt.Scale(type="log", range=[0.45, 1]),
                                    legend=None),
                tooltip=_tooltips(alt, _BUCKET_TOOLTIP)),
            # A problem must not vanish in a bucket of successes: mark each such bucket.
            base.mark_point(shape="triangle-down", filled=True, size=50, color=_FINDING_RED,
                            opacity=1, yOffset=-8).encode(
                x=alt.X("mid:Q", title=x_title), tooltip=_tooltips(alt, _BUCKET_TOOLTIP))
            .transform_filter(problem),
        ]
        step = 28
    else:
        depth = alt.YOffset("level:O")  # nested steps sit below their parent in a lane
        tip = alt.ExprRef("datum.tip")  # each mark's own fields (see _tip)
        found = "isValid(datum.finding)"
        layers = [
            base.mark_bar(cornerRadius=1, tooltip=tip).encode(x2="end:Q", color=color,
                                                              yOffset=depth)
            .transform_filter("!datum.instant && !datum.wait"),
            base.mark_bar(cornerRadius=1, strokeDash=[4, 2], stroke="#5e4fa2",
                          strokeWidth=1, tooltip=tip).encode(x2="end:Q", color=color,
                                                             yOffset=depth)
            .transform_filter("datum.wait"),
            base.mark_point(filled=True, shape="diamond", size=70, opacity=1,
                            tooltip=tip).encode(color=color, yOffset=depth)
            .transform_filter("datum.instant"),
            # What a postmortem found: outlined in red, bars and diamonds alike.
            base.mark_bar(filled=False, stroke=_FINDING_RED, strokeWidth=2.5,
                          tooltip=tip).encode(x2="end:Q", yOffset=depth)
            .transform_filter(f"{found} && !datum.instant"),
            base.mark_point(shape="diamond", filled=False, size=260, stroke=_FINDING_RED,
                            strokeWidth=2.5, opacity=1, tooltip=tip).encode(yOffset=depth)
            .transform_filter(f"{found} && datum.instant"),
            base.mark_text(align="left", baseline="middle", fontSize=10, tooltip=tip).encode(
                x=alt.X("label_x:Q", title=x_title), text="label:N", yOffset=depth,
                color=alt.Color("ink:N", scale=None))
            .transform_filter("isValid(datum.label)"),
        ]
        deepest = max((v["level"] for v in values), default=0)
        step = min(120, max(28, 16 * (deepest + 1)))
    chart = alt.LayerChart(layer=layers, data={"values": values}).properties(
        title=heading, width=width, height=alt.Step(step, **{"for": "position"}))
    return TimelineChart(chart, rows=rows, values=values, title=heading, counts=counts,
                         aggregated=aggregated)
