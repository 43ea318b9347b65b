"""Operational metrics of recorded runs, grouped by workflow, agent, version, phase and time.

Everything is computed from the run summaries the store keeps at write time (and the
investigations table for MTTE), in one aggregate query: the events are never read, so
100,000 runs take a fraction of a second. :func:`metrics_summary` returns plain rows and
needs neither pandas nor polars; :func:`metrics` returns the same rows as a frame.

>>> metrics(store, by=("workflow", "agent_version"), bucket="day")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

from agentlab.query import ColumnType, Engine, RunSelection, run_filter, to_frame, to_us
from agentlab.store import GROUP_COLUMNS, Bucket, SqlStore, rollup_runs

__all__ = ["GROUP_BY", "METRICS", "Bucket", "MetricsRow", "metrics", "metrics_summary"]


GROUP_BY: dict[str, str] = {
    **{c: c for c in GROUP_COLUMNS},
    "agent": "agent_name",
    "task": "task_id",
}
"""What ``by`` accepts, and the run column each name groups by (``agent`` and ``task``
are short for ``agent_name`` and ``task_id``)."""

METRICS: dict[str, str] = {
    "runs": "runs started in the group, whatever their status",
    "finished": "runs that ended: succeeded, failed or errored",
    "succeeded": "runs that ended without an error and were not marked unsuccessful",
    "abandoned": "runs left marked running by a recorder that stopped renewing their lease "
                 "(killed): counted apart, neither finished nor failed",
    "completion_rate": "succeeded ÷ finished",
    "approvals": "human decisions (approve, edit or reject) the runs received",
    "overrides": "decisions that edited or rejected the call",
    "override_rate": "overrides ÷ approvals: the share of decisions that overrode the agent",
    "override_run_rate": "finished runs with at least one override ÷ finished",
    "retries": "retried attempts (retry events)",
    "retry_rate": "finished runs with at least one retry ÷ finished",
    "errors": "failed LLM and tool calls and recorded errors",
    "denials": "tool calls refused before they ran (grant, policy, approval)",
    "stale": "stale-state incidents: tool results older than the tool's freshness bound",
    "incidents": "errors + retries + denials + stale",
    "incident_rate": "finished runs with at least one incident ÷ finished",
    "cost_total": "cost of all the group's runs, in USD",
    "cost_per_success": "cost_total ÷ succeeded; none when no model call of the group was priced",
    "unpriced_calls": "model calls recorded without a cost: the two costs count the priced "
    "ones only, so they are lower bounds when this is not 0",
    "latency_p50_s": "median duration of the runs that ended, in seconds",
    "latency_p95_s": "95th percentile duration of the runs that ended, in seconds",
    "explained": "concluded investigations of the group's runs",
    "mtte_s": "mean time to explain: mean seconds from opening to concluding an investigation",
}
"""Every metric column, in frame order, with its definition (docs/metrics.md has more)."""

_FINISHED = ("succeeded", "failed", "errored")
_INCIDENT_COUNTERS = ("error_count", "retry_count", "denied_count", "stale_count")
_SUMS = ("cost_usd", "unpriced_count", "approval_count", "override_count", *_INCIDENT_COUNTERS)
_ANY_OF = {"overridden_runs": ("override_count",), "retried_runs": ("retry_count",),
           "incident_runs": _INCIDENT_COUNTERS}
_INT_METRICS = frozenset({"runs", "finished", "succeeded", "approvals", "overrides", "retries",
                          "errors", "denials", "stale", "incidents", "explained",
                          "unpriced_calls"})


@dataclass(frozen=True, slots=True)
class MetricsRow:
    """The metrics of one group (see :data:`METRICS`); a rate is None when its
    denominator is zero, a latency when no run ended, ``mtte_s`` when nothing was explained."""

    group: dict[str, str | None] = field(default_factory=dict)
    bucket: datetime | None = None
    runs: int = 0
    finished: int = 0
    succeeded: int = 0
    abandoned: int = 0
    completion_rate: float | None = None
    approvals: int = 0
    overrides: int = 0
    override_rate: float | None = None
    override_run_rate: float | None = None
    retries: int = 0
    retry_rate: float | None = None
    errors: int = 0
    denials: int = 0
    stale: int = 0
    incidents: int = 0
    incident_rate: float | None = None
    cost_total: float = 0.0
    cost_per_success: float | None = None
    unpriced_calls: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    explained: int = 0
    mtte_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Group columns, ``bucket`` (when bucketed) and every metric, flat."""
        out: dict[str, Any] = dict(self.group)
        if self.bucket is not None:
            out["bucket"] = self.bucket
        out.update((name, getattr(self, name)) for name in METRICS)
        return out


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of ascending values by linear interpolation between the closest
    ranks (numpy's and pandas' default, polars' ``interpolation="linear"``)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    return a + (b - a) * (pos - lo)


def _group_columns(by: Iterable[str]) -> list[str]:
    if isinstance(by, str):
        by = [b for b in by.split(",") if b.strip()]
    cols: list[str] = []
    for name in by:
        col = GROUP_BY.get(name.strip())
        if col is None:
            raise ValueError(f"cannot group by {name!r}; choose from {sorted(GROUP_BY)}")
        if col not in cols:
            cols.append(col)
    return cols


def metrics_summary(
    store: SqlStore,
    *,
    by: Iterable[str] = ("workflow",),
    bucket: Bucket | None = None,
    **select: Unpack[RunSelection],
) -> list[MetricsRow]:
    """The metrics per group of runs, as rows sorted by group then bucket.

    ``by`` names run columns (:data:`GROUP_BY`; empty: one row for all runs); ``bucket``
    adds the start of the hour, day or week (Monday, UTC) in which each run started. The
    filters select runs as in :func:`agentlab.query.runs_df`.
    """
    cols = _group_columns(by)
    where = run_filter(**select)
    if bucket is not None and bucket not in ("hour", "day", "week"):
        raise ValueError(f"bucket={bucket!r} is not a time bucket; use 'hour', 'day' or 'week'")
    raw = rollup_runs(store, where, by=cols, bucket=bucket, sums=_SUMS, any_of=_ANY_OF)

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    key_names = (["bucket_us"] if bucket else []) + cols
    for i, status_ in enumerate(raw["status"]):
        key = tuple(raw[k][i] for k in key_names)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"runs": 0, "finished": 0, "succeeded": 0, "abandoned": 0,
                               "durations": [],
                               "explained": 0, "explain_us": 0,
                               **{c: 0 for c in (*_SUMS, *_ANY_OF)}}
            g["cost_usd"] = 0.0
        n = raw["runs"][i]
        g["runs"] += n
        if status_ in _FINISHED:
            g["finished"] += n
            for name in _ANY_OF:  # per-run shares count finished runs only
                g[name] += raw[name][i]
        if status_ == "succeeded":
            g["succeeded"] += n
        elif status_ == "abandoned":
            g["abandoned"] += n
        for c in _SUMS:
            g[c] += raw[c][i]
        g["durations"].extend(raw["durations_us"][i])
        g["explained"] += raw["investigations"][i]
        g["explain_us"] += raw["explain_us"][i]

    rows = [_row(key, g, cols, bucket is not None) for key, g in groups.items()]
    rows.sort(key=lambda r: ([(v is None, v or "") for v in r.group.values()],
                             r.bucket.timestamp() if r.bucket else 0.0))
    return rows


def _row(key: tuple[Any, ...], g: dict[str, Any], cols: list[str], bucketed: bool
         ) -> MetricsRow:
    start = 1 if bucketed else 0
    durations = sorted(g["durations"])
    p50, p95 = quantile(durations, 0.5), quantile(durations, 0.95)
    finished, incidents = g["finished"], sum(g[c] for c in _INCIDENT_COUNTERS)
    return MetricsRow(
        group=dict(zip(cols, key[start:], strict=True)),
        bucket=(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=key[0])
                if bucketed else None),
        runs=g["runs"],
        finished=finished,
        succeeded=g["succeeded"],
        abandoned=g["abandoned"],
        completion_rate=_ratio(g["succeeded"], finished),
        approvals=g["approval_count"],
        overrides=g["override_count"],
        override_rate=_ratio(g["override_count"], g["approval_count"]),
        override_run_rate=_ratio(g["overridden_runs"], finished),
        retries=g["retry_count"],
        retry_rate=_ratio(g["retried_runs"], finished),
        errors=g["error_count"],
        denials=g["denied_count"],
        stale=g["stale_count"],
        incidents=incidents,
        incident_rate=_ratio(g["incident_runs"], finished),
        cost_total=g["cost_usd"],
        cost_per_success=(None if g["unpriced_count"] and not g["cost_usd"]
                          else _ratio(g["cost_usd"], g["succeeded"])),
        unpriced_calls=g["unpriced_count"],
        latency_p50_s=None if p50 is None else p50 / 1e6,
        latency_p95_s=None if p95 is None else p95 / 1e6,
        explained=g["explained"],
        mtte_s=(g["explain_us"] / g["explained"] / 1e6) if g["explained"] else None,
    )


def metrics(
    store: SqlStore,
    *,
    by: Iterable[str] = ("workflow",),
    bucket: Bucket | None = None,
    engine: Engine = "pandas",
    **select: Unpack[RunSelection],
) -> Any:
    """The metrics per group as a pandas (or polars) frame: the group columns, ``bucket``
    (when bucketed: a UTC datetime), then every column of :data:`METRICS`.

    >>> m = metrics(store, by=("workflow", "agent_version"), bucket="week")  # doctest: +SKIP
    >>> m[["workflow", "agent_version", "bucket", "completion_rate", "override_rate"]]
    """
    cols = _group_columns(by)
    rows = metrics_summary(store, by=cols, bucket=bucket, **select)
    types: dict[str, ColumnType] = {c: "str" for c in cols}
    if bucket is not None:
        types["bucket"] = "time"
    types.update({m: "int" if m in _INT_METRICS else "float" for m in METRICS})
    columns: dict[str, list[Any]] = {c: [r.group[c] for r in rows] for c in cols}
    if bucket is not None:
        columns["bucket"] = [to_us(r.bucket) for r in rows]
    for m in METRICS:
        columns[m] = [getattr(r, m) for r in rows]
    return to_frame(columns, types, engine=engine)

