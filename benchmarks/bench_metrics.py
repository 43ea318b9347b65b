"""All metrics over 100,000 runs (2,000,000 steps) from a SQLite store: target <= 0.5 s.

Times ``metrics(store, by=("workflow", "agent_version"), bucket="day")`` (completion and
override rates, retry and incident rates, cost per success, latency p50/p95, MTTE per
group), median of 5 after one warm-up, in pandas and polars, and the frame-free
``metrics_summary``. Baselines in the same run, on the same file:

* the aggregate query alone, through plain sqlite3 (the floor: what the store must do);
* ``pandas.read_sql`` of the runs table, then a pandas groupby of the same metrics (what
  an analyst would write without agentlab's rollup);
* ``runs_df(engine="polars")``, then a polars group_by (the frames API, for analysis the
  metrics do not cover).

The fixture is built fast, not recorded: 100,000 rows go straight into ``agentlab_runs``
with sqlite3 (each run summarising 20 steps: 2,000,000 steps in the counters), plus
investigations for 1 % of the runs. The events table is left empty: metrics read the run
summaries and never the events (tests/analysis/test_metrics.py traces the SQL to show it);
the issue measured ``pandas.read_sql`` of the raw steps alone at 5.8 s.

    .venv/bin/python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import machine_line, table, verdict

import agentlab as al
from agentlab.analysis import metrics, metrics_summary
from agentlab.query import runs_df

RUNS = 100_000
STEPS_PER_RUN = 20
REPEAT = 5
TARGET_S = 0.5
T0_US = 1_740_787_200_000_000  # 2025-03-01 00:00 UTC
SPAN_US = 30 * 86_400_000_000  # the runs start over 30 days
DAY_US = 86_400_000_000

RUN_COLS = (
    "run_id", "workflow", "agent_name", "agent_version", "task_id", "owner", "team", "phase",
    "status", "success", "score", "started_us", "ended_us", "cost_usd", "input_tokens",
    "output_tokens", "step_count", "llm_calls", "tool_calls", "error_count", "retry_count",
    "denied_count", "approval_count", "override_count", "last_seq", "head_hash",
    "parent_run_id", "fork_seq",
)


def fill(path: Path) -> None:
    """100,000 run summaries and 1,000 investigations, inserted directly."""
    al.open_store(path).close()  # the schema, as agentlab makes it
    rng = random.Random(7)
    workflows = ["support-triage", "billing", "refunds", "onboarding", "escalation"]
    rows = []
    inv = []
    for i in range(RUNS):
        started = T0_US + i * (SPAN_US // RUNS) + rng.randrange(SPAN_US // RUNS)
        status = rng.choices(["succeeded", "failed", "errored", "running"], [85, 8, 5, 2])[0]
        ended = None if status == "running" else started + int(rng.lognormvariate(17, 0.8))
        approvals = rng.choices([0, 1, 2], [70, 25, 5])[0]
        overrides = sum(rng.random() < 0.2 for _ in range(approvals))
        run_id = f"{i:08x}-bench-run"
        rows.append((
            run_id, workflows[i % 5], "bot", f"v{i % 3 + 1}", f"T-{i % 5000}", "team-a", "ops",
            rng.choice(["read", "draft", "act", None]), status,
            None if status == "running" else status == "succeeded", None, started, ended,
            round(rng.uniform(0.001, 0.2), 6), 4000, 800, STEPS_PER_RUN, 8, 12,
            rng.choices([0, 1, 2], [85, 12, 3])[0], rng.choices([0, 1], [90, 10])[0],
            rng.choices([0, 1], [95, 5])[0], approvals, overrides, STEPS_PER_RUN + 2, "0" * 64,
            None, None,
        ))
        if status in ("failed", "errored") and rng.random() < 0.12:
            opened = (ended or started) + 3_600_000_000
            done = opened + rng.randrange(60, 1800) * 1_000_000 if rng.random() < 0.9 else None
            inv.append((f"{i:08x}-inv", run_id, opened, "ann", done, "ann" if done else None,
                        2 if done else None, None))
    with sqlite3.connect(path) as conn:
        # Counters this script does not know (added to the schema later) start at zero.
        extra = [r[1] for r in conn.execute("PRAGMA table_info(agentlab_runs)")
                 if r[1] not in RUN_COLS and r[3]]
        cols = [*RUN_COLS, *extra]
        conn.executemany(f"INSERT INTO agentlab_runs ({', '.join(cols)}) VALUES "
                         f"({', '.join('?' * len(cols))})",
                         [(*row, *[0] * len(extra)) for row in rows])
        conn.executemany("INSERT INTO agentlab_investigations (investigation_id, run_id, "
                         "opened_us, opened_by, concluded_us, concluded_by, culprit_seq, note) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inv)
    with sqlite3.connect(path) as conn:  # a store at rest: the bulk load checkpointed
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def timed(cases: list[tuple[str, Callable[[], Any]]]) -> list[tuple[str, list[float], int]]:
    """Each case once to warm up (imports, page cache), then REPEAT rounds of every case in
    turn, so a noisy moment on the machine does not fall on one case only."""
    sizes = [len(fn()) for _, fn in cases]
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(REPEAT):
        for i, (_, fn) in enumerate(cases):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [(name, ts, n) for (name, _), ts, n in zip(cases, times, sizes, strict=True)]


def sql_floor(path: Path) -> Callable[[], Any]:
    # The statement agentlab sends, less its CASE expressions (SQLite sums booleans).
    sql = f"""SELECT (started_us / {DAY_US}) * {DAY_US}, status, workflow, agent_version,
        count(*), sum(cost_usd), sum(approval_count), sum(override_count), sum(retry_count),
        sum(error_count), sum(denied_count), sum(stale_count), sum(override_count > 0),
        sum(retry_count > 0),
        sum(error_count > 0 OR retry_count > 0 OR denied_count > 0 OR stale_count > 0),
        json_group_array(ended_us - started_us) FILTER (WHERE ended_us IS NOT NULL)
        FROM agentlab_runs GROUP BY 1, 2, 3, 4"""
    conn = sqlite3.connect(path)
    return lambda: conn.execute(sql).fetchall()


def pandas_naive(path: Path) -> Callable[[], Any]:
    import pandas as pd

    conn = sqlite3.connect(path)

    def run() -> Any:
        df = pd.read_sql("SELECT * FROM agentlab_runs", conn)
        df["day"] = df.started_us // DAY_US
        df["finished"] = df.status != "running"
        df["ok"] = df.status == "succeeded"
        df["dur_s"] = (df.ended_us - df.started_us) / 1e6
        df["incident"] = (df.error_count + df.retry_count + df.denied_count) > 0
        g = df.groupby(["workflow", "agent_version", "day"])
        return g.agg(runs=("run_id", "size"), finished=("finished", "sum"), ok=("ok", "sum"),
                     cost=("cost_usd", "sum"), approvals=("approval_count", "sum"),
                     overrides=("override_count", "sum"), incidents=("incident", "sum"),
                     p50=("dur_s", "median"), p95=("dur_s", lambda s: s.quantile(0.95)))

    return run


def polars_frames(store: Any) -> Callable[[], Any]:
    import polars as pl

    def run() -> Any:
        df = runs_df(store, engine="polars")
        return df.group_by("workflow", "agent_version", pl.col("started_at").dt.truncate("1d")
                           ).agg(
            runs=pl.len(), ok=(pl.col("status") == "succeeded").sum(),
            cost=pl.col("cost_usd").sum(), overrides=pl.col("override_count").sum(),
            p50=pl.col("duration_s").median(),
            p95=pl.col("duration_s").quantile(0.95, interpolation="linear"))

    return run


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    path = tmp / "metrics.db"
    t = time.perf_counter()
    fill(path)
    fill_s = time.perf_counter() - t
    store = al.open_store(path)
    by = ("workflow", "agent_version")
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("metrics(engine='pandas')", lambda: metrics(store, by=by, bucket="day")),
        ("metrics(engine='polars')",
         lambda: metrics(store, by=by, bucket="day", engine="polars")),
        ("metrics_summary (no frame)", lambda: metrics_summary(store, by=by, bucket="day")),
        ("baseline: the aggregate SQL alone", sql_floor(path)),
        ("baseline: pandas.read_sql + groupby", pandas_naive(path)),
        ("baseline: runs_df(polars) + group_by", polars_frames(store)),
    ]
    results = timed(cases)
    store.close()

    print(f"# bench_metrics | {machine_line()}")
    print(f"{RUNS:,} runs ({RUNS * STEPS_PER_RUN:,} steps in their counters), filled in "
          f"{fill_s:.1f} s; grouped by workflow x agent_version x day; median of {REPEAT}")
    print(table(["variant", "median s", "min s", "max s", "groups"], [
        (name, f"{statistics.median(ts):.3f}", f"{min(ts):.3f}", f"{max(ts):.3f}", n)
        for name, ts, n in results]))
    ours = statistics.median(results[0][1])
    floor = statistics.median(results[3][1])
    naive = statistics.median(results[4][1])
    print(f"target <= {TARGET_S} s: {verdict(ours <= TARGET_S)} ({ours:.3f} s); "
          f"{ours / floor:.2f}x the bare aggregate query; pandas.read_sql + groupby / "
          f"metrics = {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
