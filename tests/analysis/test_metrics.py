"""Metrics from runs with known outcomes: exact values, both engines, both backends.

The runs are appended as events with chosen times (so durations are exact); the summary
counters follow from the events as for any recorded run. Investigations are opened and
concluded with an injected clock.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import polars as pl
import pytest

from agentlab.analysis import METRICS, conclude, investigate, metrics, metrics_summary
from agentlab.display import HEADLINE_METRICS, metrics_chart, metrics_charts
from agentlab.model import dumps, new_id
from agentlab.query import runs_df
from agentlab.store import PendingEvent, SqlStore

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
T0_US = int(T0.timestamp()) * 1_000_000
HOUR_US = 3_600_000_000


def put_run(store: SqlStore, run_id: str, *, workflow: str, version: str, start_h: float,
            dur_s: float | None, status: str = "succeeded", cost: float = 0.0,
            errors: int = 0, retries: int = 0, denials: int = 0, stale: int = 0,
            decisions: Sequence[str] = (), phase: str | None = None) -> None:
    """A run started ``start_h`` hours after T0 that ended ``dur_s`` later (None: running)."""
    t = T0_US + int(start_h * HOUR_US)
    start: dict[str, Any] = {"workflow": workflow, "agent_name": "bot", "agent_version": version}
    if phase:
        start["phase"] = phase
    bodies: list[tuple[str, dict[str, Any]]] = [("run_started", start)]
    if cost:
        bodies.append(("llm_call", {"model": "m-1", "cost_usd": cost}))
    bodies += [("error", {"error": {"type": "ValueError", "message": "x"}})] * errors
    bodies += [("retry", {"target": "m-1", "attempt": i + 1,
                          "error": {"type": "Timeout", "message": "slow"}})
               for i in range(retries)]
    bodies += [("tool_call", {"tool": "t", "status": "denied",
                              "denial": {"code": "policy", "reason": "no"}})] * denials
    bodies += [("tool_call", {"tool": "lookup", "result": {"age_s": 7200},
                              "stale": {"age_s": 7200, "bound_s": 3600}})] * stale
    bodies += [("approval", {"request_id": new_id(), "tool": "t", "action": a})
               for a in decisions]
    if dur_s is not None:
        bodies.append(("run_ended", {"status": status}))
    events = []
    for i, (kind, body) in enumerate(bodies):
        ts = t + int(dur_s * 1e6) if kind == "run_ended" else t + i  # type: ignore[operator]
        events.append(PendingEvent(run_id, new_id(), None, ts, kind,
                                   dumps({"kind": kind, **body})))
    store.append(events)


def explain(store: SqlStore, run_id: str, seconds: float | None) -> None:
    """An investigation of ``run_id`` concluded ``seconds`` after it opened (None: open)."""
    opened = T0_US * 1000 + 48 * HOUR_US * 1000
    investigate(store, run_id, by="ann", clock=lambda: opened)
    if seconds is not None:
        conclude(store, run_id, culprit_seq=1, by="ann",
                 clock=lambda: opened + int(seconds * 1e9))


@pytest.fixture
def runs(store: SqlStore) -> SqlStore:
    put_run(store, "A", workflow="triage", version="v1", start_h=0, dur_s=10, cost=0.10,
            decisions=["approve", "edit"])
    put_run(store, "B", workflow="triage", version="v1", start_h=1, dur_s=30,
            status="failed", cost=0.30, retries=2, errors=1)
    put_run(store, "C", workflow="triage", version="v1", start_h=2, dur_s=None, cost=0.05,
            stale=1)  # running: counted in the totals, not in the rates
    put_run(store, "D", workflow="triage", version="v2", start_h=25, dur_s=20, cost=0.20,
            denials=1, decisions=["reject"])
    put_run(store, "E", workflow="triage", version="v2", start_h=26, dur_s=40,
            status="errored", errors=1)
    put_run(store, "F", workflow="billing", version="v1", start_h=0.5, dur_s=5, cost=0.05,
            stale=1, phase="act")
    explain(store, "B", 120)
    explain(store, "E", 60)
    explain(store, "D", None)  # still open: not counted
    return store


TRIAGE = {
    "runs": 5, "finished": 4, "succeeded": 2, "abandoned": 0, "completion_rate": 0.5,
    "approvals": 3, "overrides": 2, "override_rate": 2 / 3, "override_run_rate": 0.5,
    "retries": 2, "retry_rate": 0.25, "errors": 2, "denials": 1, "stale": 1, "incidents": 6,
    "incident_rate": 0.75, "cost_total": 0.65, "cost_per_success": 0.325, "unpriced_calls": 0,
    "latency_p50_s": 25.0, "latency_p95_s": 38.5, "explained": 2, "mtte_s": 90.0,
}
BILLING = {
    "runs": 1, "finished": 1, "succeeded": 1, "abandoned": 0, "completion_rate": 1.0,
    "approvals": 0, "overrides": 0, "override_rate": None, "override_run_rate": 0.0,
    "retries": 0, "retry_rate": 0.0, "errors": 0, "denials": 0, "stale": 1, "incidents": 1,
    "incident_rate": 1.0, "cost_total": 0.05, "cost_per_success": 0.05, "unpriced_calls": 0,
    "latency_p50_s": 5.0, "latency_p95_s": 5.0, "explained": 0, "mtte_s": None,
}


def plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def records(frame: Any) -> list[dict[str, Any]]:
    rows = frame.to_dicts() if isinstance(frame, pl.DataFrame) else frame.to_dict("records")
    return [{k: plain(v) for k, v in r.items()} for r in rows]


def approx(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v)
            for k, v in expected.items()}


def test_metrics_by_workflow_are_exact(runs: SqlStore) -> None:
    rows = [r.as_dict() for r in metrics_summary(runs)]
    assert rows == [{"workflow": "billing", **approx(BILLING)},
                    {"workflow": "triage", **approx(TRIAGE)}]
    [everything] = metrics_summary(runs, by=())
    assert everything.group == {} and everything.bucket is None
    assert (everything.runs, everything.finished, everything.succeeded) == (6, 5, 3)
    assert everything.completion_rate == pytest.approx(0.6)
    assert everything.cost_per_success == pytest.approx(0.70 / 3)
    assert everything.latency_p50_s == 20.0  # of 5, 10, 20, 30, 40


@pytest.mark.parametrize("engine", ["pandas", "polars"])
def test_the_frame_holds_the_same_rows_in_either_engine(runs: SqlStore, engine: str) -> None:
    frame = metrics(runs, engine=engine)  # type: ignore[arg-type]
    assert list(frame.columns) == ["workflow", *METRICS]
    assert records(frame) == [r.as_dict() for r in metrics_summary(runs)]


def test_pandas_and_polars_give_identical_values(runs: SqlStore) -> None:
    for kw in ({}, {"by": ("workflow", "agent_version"), "bucket": "day"},
               {"by": ("phase",), "bucket": "hour"}, {"by": ()}):
        pdf = metrics(runs, **kw)  # type: ignore[arg-type]
        plf = metrics(runs, **kw, engine="polars")  # type: ignore[arg-type]
        assert list(pdf.columns) == plf.columns
        assert records(pdf) == records(plf)
    assert str(metrics(runs, bucket="day")["bucket"].dtype) == "datetime64[us, UTC]"
    assert metrics(runs, bucket="day", engine="polars").schema["bucket"] == \
        pl.Datetime("us", "UTC")


def test_the_frames_api_gives_the_same_numbers(runs: SqlStore) -> None:
    """An analyst's own pandas or polars code over runs_df agrees with metrics()."""
    expected = {r.group["workflow"]: r for r in metrics_summary(runs)}
    df = runs_df(runs)
    finished = df[df.status != "running"]
    by_pd = finished.groupby("workflow").agg(
        done=("status", lambda s: (s == "succeeded").mean()),
        p50=("duration_s", lambda s: s.quantile(0.5)),
        p95=("duration_s", lambda s: s.quantile(0.95)))
    cost = df.groupby("workflow").cost_usd.sum() / df[df.status == "succeeded"].groupby(
        "workflow").size()
    pf = runs_df(runs, engine="polars")
    by_pl = {r["workflow"]: r for r in pf.group_by("workflow").agg(
        done=(pl.col("status") == "succeeded").filter(pl.col("status") != "running").mean(),
        p95=pl.col("duration_s").quantile(0.95, interpolation="linear"),
        incident=(pl.col("incident_count") > 0).filter(pl.col("status") != "running").mean(),
    ).to_dicts()}
    for wf, m in expected.items():
        assert by_pd.loc[wf, "done"] == by_pl[wf]["done"] == m.completion_rate
        assert by_pd.loc[wf, "p50"] == pytest.approx(m.latency_p50_s)
        assert by_pd.loc[wf, "p95"] == pytest.approx(m.latency_p95_s) == by_pl[wf]["p95"]
        assert cost[wf] == pytest.approx(m.cost_per_success)
        assert by_pl[wf]["incident"] == m.incident_rate


def test_groups_and_buckets(runs: SqlStore) -> None:
    day2 = datetime(2025, 3, 4, tzinfo=UTC)
    rows = metrics_summary(runs, by=("workflow", "agent_version"), bucket="day")
    assert [(r.group, r.bucket, r.runs) for r in rows] == [
        ({"workflow": "billing", "agent_version": "v1"}, T0, 1),
        ({"workflow": "triage", "agent_version": "v1"}, T0, 3),
        ({"workflow": "triage", "agent_version": "v2"}, day2, 2),
    ]
    v2 = rows[2]
    assert (v2.completion_rate, v2.override_rate, v2.incident_rate, v2.mtte_s) == \
        (0.5, 1.0, 1.0, 60.0)
    assert [(r.bucket, r.runs) for r in metrics_summary(runs, by=(), bucket="hour")] == [
        (T0, 2), (T0.replace(hour=1), 1), (T0.replace(hour=2), 1),
        (day2.replace(hour=1), 1), (day2.replace(hour=2), 1)]
    # phase: the run's latest; runs without one group under None, listed last
    assert [(r.group["phase"], r.runs) for r in metrics_summary(runs, by=("phase",))] == \
        [("act", 1), (None, 5)]
    assert [r.group for r in metrics_summary(runs, by=("agent", "task"))] == \
        [{"agent_name": "bot", "task_id": None}]


def test_weeks_start_on_monday_utc(store: SqlStore) -> None:
    put_run(store, "sun", workflow="w", version="v", start_h=-1, dur_s=1)  # Sunday 23:00
    put_run(store, "mon", workflow="w", version="v", start_h=1, dur_s=1)
    put_run(store, "next-sun", workflow="w", version="v", start_h=24 * 7 - 1, dur_s=1)
    weeks = [(r.bucket, r.runs) for r in metrics_summary(store, by=(), bucket="week")]
    assert weeks == [(datetime(2025, 2, 24, tzinfo=UTC), 1), (T0, 2)]


def test_filters_select_the_runs_measured(runs: SqlStore) -> None:
    def counts(**kw: Any) -> dict[str | None, int]:
        return {r.group["workflow"]: r.runs for r in metrics_summary(runs, **kw)}

    assert counts(workflow="triage") == {"triage": 5}
    assert counts(agent_version="v2") == {"triage": 2}
    assert counts(since=T0.replace(hour=1)) == {"triage": 4}
    assert counts(until="2025-03-03T01:00:00Z") == {"billing": 1, "triage": 1}
    assert counts(status="running") == {"triage": 1}
    assert counts(phase="act") == {"billing": 1}
    assert counts(workflow="nothing") == {}
    [only_e] = metrics_summary(runs, by=(), since="2025-03-04T02:00:00")
    assert (only_e.runs, only_e.explained, only_e.mtte_s) == (1, 1, 60.0)
    empty = metrics(runs, workflow="nothing", bucket="week", engine="polars")
    assert empty.height == 0 and empty.columns == ["workflow", "bucket", *METRICS]


def test_bad_arguments_say_what_to_use(runs: SqlStore) -> None:
    with pytest.raises(ValueError, match="cannot group by 'status'"):
        metrics_summary(runs, by=("status",))
    with pytest.raises(ValueError, match="time bucket"):
        metrics_summary(runs, bucket="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a run status"):
        metrics(runs, status="ok")


@pytest.mark.sqlite_only
def test_metrics_never_read_the_events(runs: SqlStore) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def trace(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    event.listen(runs._db.engine, "checkout", trace)
    try:
        metrics(runs, by=("workflow", "agent_version", "phase"), bucket="week")
    finally:
        event.remove(runs._db.engine, "checkout", trace)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert any("agentlab_runs" in s for s in selects)
    assert not [s for s in statements if "agentlab_events" in s]


def inline_values(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a chart spec carries in itself (no URL: it renders offline)."""
    data = spec["data"]
    assert "url" not in data
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_a_chart_for_each_metric(runs: SqlStore) -> None:
    daily = metrics(runs, by=("workflow", "agent_version"), bucket="day")
    for metric in METRICS:
        spec = metrics_chart(daily, metric).to_dict()
        assert spec["mark"]["type"] == "line" and spec["encoding"]["x"]["field"] == "bucket"
        values = inline_values(spec)
        assert [v["group"] for v in values] == ["billing / v1", "triage / v1", "triage / v2"]
        assert values[0]["bucket"] == "2025-03-03T00:00:00Z"
    bars = metrics_chart(metrics(runs, engine="polars"), "override_rate").to_dict()
    assert bars["mark"]["type"] == "bar"
    assert [v["value"] for v in inline_values(bars)] == [None, pytest.approx(2 / 3)]
    charts = metrics_charts(metrics_summary(runs, by=()))
    assert list(charts) == list(HEADLINE_METRICS)
    assert inline_values(charts["mtte_s"].to_dict()) == \
        [{"group": "all runs", "value": 90.0, "runs": 6}]
    with pytest.raises(ValueError, match="unknown metric"):
        metrics_chart(daily, "happiness")


def test_metrics_summary_needs_no_frame_library(tmp_path: Any) -> None:
    code = (
        "import sys, agentlab as al\n"
        "from agentlab.analysis import metrics_summary\n"
        f"s = al.open_store({str(tmp_path / 'm.db')!r})\n"
        "with al.record_run('wf', agent='bot', store=s) as run: pass\n"
        "assert metrics_summary(s)[0].runs == 1\n"
        "assert not {'pandas', 'polars'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
