"""Timeline of a 10,000-step run: rows, chart and spec, against the 0.3 s target.

A run of 10,000 step-like events is recorded into a temporary SQLite store (1,000 steps,
each with seven tool calls, one LLM call with cost and duration and one state write; a tool
call in 50 fails and one call in 140 is denied by policy) and read back with
``store.events``. Measured, median and p90 over REPEATS: ``timeline_rows`` on the events,
``timeline_chart`` on the rows (more than 5,000 rows: aggregated into time buckets), and
``chart.to_dict()`` (what every renderer starts from), and the three end to end (the
target: <= 0.3 s). Baselines, same run and rows: ``pd.DataFrame(rows)`` (what a notebook
would build instead) and ``json.dumps`` of the 10,000 values an unaggregated chart would
carry (the least it costs to ship them to a browser); for information, the chart without
aggregation end to end (``max_rows=20_000``), the notebook's HTML of the aggregated chart
(``to_html()``: Vega inline, bundle built once beforehand) and the first chart in a fresh
process, which imports altair.

Run: .venv/bin/python benchmarks/bench_timeline.py
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, median, quantile, table, verdict

import agentlab as al
from agentlab.analysis import timeline_rows
from agentlab.display import timeline_chart
from agentlab.model import Event
from agentlab.testing import allow_all

STEPS = 1_000  # x 10 step-like events each
REPEATS = 15
TARGET_S = 0.3


@al.tool
def lookup(i: int) -> dict[str, int]:
    if i % 50 == 0:
        raise LookupError(f"no record {i}")
    return {"i": i, "plan": i % 3}


@al.tool(side_effect=True, scope="x:write")
def forbidden(i: int) -> int:
    return i


def record(path: Path) -> list[Event]:
    store = al.open_store(path)
    grant = allow_all(store, agent="bench")
    policy = al.Policy([al.Rule("no", "deny", tool="forbidden")])
    with al.record_run("bench", agent="bench", store=store, grants=[grant],
                       policy=policy) as run:
        n = 0
        for s in range(STEPS):
            with al.step(f"step{s % 25}"):
                for _ in range(7):
                    n += 1
                    with contextlib.suppress(LookupError, al.ToolDeniedError):
                        forbidden(n) if n % 140 == 0 else lookup(n)
                run.llm_call("gpt-4o", input_tokens=400, output_tokens=60, duration_ms=1.5)
                run.state["last"] = s
    events = store.events(run.run_id)
    close_store(store)
    return events


def timed(fn: Callable[[], Any], repeat: int = REPEATS) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def first_chart_in_fresh_process() -> float:
    code = ("import time; t = time.perf_counter(); from agentlab.display import timeline_chart; "
            "timeline_chart([]).to_dict(); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main() -> None:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        events = record(Path(tmp) / "bench.db")
    rows = timeline_rows(events)
    spec = timeline_chart(rows).to_dict()  # also imports altair, outside the timings
    full = timeline_chart(rows, max_rows=20_000).to_dict()
    values = spec["datasets"][spec["data"]["name"]]
    raw_values = full["datasets"][full["data"]["name"]]

    def end_to_end() -> None:
        timeline_chart(timeline_rows(events)).to_dict()

    chart = timeline_chart(rows)
    chart.to_html()  # builds the Vega bundle once (about a second), outside the timings
    results = {
        "timeline_rows(events)": timed(lambda: timeline_rows(events)),
        "timeline_chart(rows)": timed(lambda: timeline_chart(rows)),
        "chart.to_dict()": timed(chart.to_dict),
        "end to end (the target)": timed(end_to_end),
        "baseline: pd.DataFrame(rows)": timed(lambda: pd.DataFrame(rows), repeat=5),
        "baseline: json.dumps(10,000 chart values)": timed(lambda: json.dumps(raw_values)),
        "info: chart not aggregated, end to end": timed(
            lambda: timeline_chart(timeline_rows(events), max_rows=20_000).to_dict(),
            repeat=5),
        "info: chart.to_html() (notebook output)": timed(chart.to_html, repeat=5),
    }
    header("bench_timeline: a 10,000-step run as rows, chart and Vega-Lite spec")
    print(f"{len(events):,} events -> {len(rows):,} rows "
          f"({sum(r.status == 'error' for r in rows)} errors, "
          f"{sum(r.status == 'denied' for r in rows)} denied); chart data "
          f"{len(values):,} buckets, spec {len(json.dumps(spec)) / 1024:,.0f} KB "
          f"(not aggregated: {len(json.dumps(full)) / 1024:,.0f} KB)")
    print(table(["variant", "p50 ms", "p90 ms"], [
        (name, f"{median(xs) * 1000:.1f}", f"{quantile(xs, 0.9) * 1000:.1f}")
        for name, xs in results.items()]))
    print(f"first chart in a fresh process (imports altair): "
          f"{first_chart_in_fresh_process():.2f} s, once")
    p50 = median(results["end to end (the target)"])
    frame = median(results["baseline: pd.DataFrame(rows)"])
    print(f"target <= {TARGET_S * 1000:.0f} ms end to end: {verdict(p50 <= TARGET_S)} "
          f"({p50 * 1000:.1f} ms); pd.DataFrame(rows) / end to end = {frame / p50:.2f}x")


if __name__ == "__main__":
    main()
