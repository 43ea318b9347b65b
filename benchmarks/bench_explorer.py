"""The run explorer's requests on a store of 100,000 runs and a run of 10,000 steps: target
each well under 0.2 s.

The store: 100,000 run summaries inserted straight into ``agentlab_runs`` (bench_metrics'
generator), plus two runs recorded with the real recorder: 1,000 steps of eight tool calls,
one LLM call and one state write each (about 11,000 events), the second identical except
for one tool call's argument near the end. Timed, median and p90 over REPEATS, each request
as the widget answers it (``ExplorerPages.handle``): the first runs page; a filtered page
(workflow and status); a search page (a task id that 20 runs match, so most of the table
is searched); a deep page (keyset cursor at run 99,950); the filter facets;
the run's first tree page; the children of its last step; a step's detail (arguments,
grant, state diff); the timeline (first window of 2,000 bars and the whole run's
histogram); one comparison request of the two long runs (it reads 2,000 tool calls of
each and says where to go on: they part near the end) and, for information, every request
until the divergence shows. Baselines in the same run: the deep page by OFFSET (plain
sqlite3), every summary (``store.runs()``), every event of the run (``store.events``) and
its full ``timeline_rows``.

    .venv/bin/python benchmarks/bench_explorer.py
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, median, quantile, table, verdict
from bench_metrics import fill

import agentlab as al
from agentlab.analysis import timeline_rows
from agentlab.display._explorer_pages import ExplorerPages
from agentlab.testing import allow_all

STEPS = 1_000
CALLS = 8
REPEATS = 15
TARGET_S = 0.2


@al.tool
def lookup(i: int) -> dict[str, int]:
    return {"i": i, "plan": i % 3}


def record_long(store: Any, odd: int | None) -> str:
    with al.record_run("long-run", agent="bench", store=store, task_id="long",
                       grants=[allow_all(store, agent="bench")]) as run:
        n = 0
        for s in range(STEPS):
            with al.step(f"step{s % 25}"):
                for _ in range(CALLS):
                    n += 1
                    lookup(odd if odd is not None and n == STEPS * CALLS - 40 else n)
                run.llm_call("gpt-4o", input_tokens=400, output_tokens=60, duration_ms=1.5)
                run.state["last"] = s
        return run.run_id


def timed(fn: Callable[[], Any]) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    header("run explorer: 100,000 runs, a run of 10,000+ steps")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "explorer.db"
        t = time.perf_counter()
        fill(path)
        store = al.open_store(path, durability="normal")
        long_a = record_long(store, None)
        long_b = record_long(store, -1)
        print(f"fixture built in {time.perf_counter() - t:.1f} s: "
              f"{store.run(long_a).last_seq} events in the long run")
        pages = ExplorerPages(store)
        with sqlite3.connect(path) as conn:
            deep = conn.execute("SELECT started_us, run_id FROM agentlab_runs ORDER BY "
                                "started_us DESC, run_id DESC LIMIT 1 OFFSET 99949").fetchone()
        last_step = pages.handle({"type": "tree", "run_id": long_a,
                                  "after": store.run(long_a).last_seq - 4})["nodes"][0]
        assert last_step["kind"] == "step", last_step
        call_seq = last_step["seq"] - 3  # a tool call inside it, followed by a state write

        def offset_page() -> Any:
            with sqlite3.connect(path) as conn:
                return conn.execute("SELECT * FROM agentlab_runs ORDER BY started_us DESC, "
                                    "run_id DESC LIMIT 50 OFFSET 99950").fetchall()

        def compare_all() -> Any:
            """Every request the page makes until the divergence near the end shows."""
            reply = pages.handle({"type": "compare", "a": long_a, "b": long_b})
            while reply["resume"] is not None:
                reply = pages.handle({"type": "compare", "a": long_a, "b": long_b,
                                      "from": reply["resume"]})
            assert reply["divergence"] is not None
            return reply

        def ask(**request: Any) -> Callable[[], Any]:
            return lambda: pages.handle(request)

        cases: list[tuple[str, Callable[[], Any], bool]] = [
            ("runs: first page", ask(type="runs"), True),
            ("runs: workflow + status", ask(type="runs", filters={
                "workflow": "billing", "status": "failed"}), True),
            ("runs: search a task id", ask(type="runs", filters={"search": "t-4999"}), True),
            ("runs: deep page (keyset)", ask(type="runs", after=list(deep)), True),
            ("runs: filter facets", ask(type="facets"), True),
            ("tree: first page", ask(type="tree", run_id=long_a), True),
            ("tree: last step's children", ask(type="tree", run_id=long_a,
                                               parent=last_step["id"]), True),
            ("step detail + state diff", ask(type="step", run_id=long_a, seq=call_seq), True),
            ("timeline (window + histogram)", ask(type="timeline", run_id=long_a), True),
            ("compare: one request (2,000 calls)", ask(type="compare", a=long_a, b=long_b),
             True),
            ("compare: on to the divergence", compare_all, False),
            ("baseline: deep page by OFFSET", offset_page, False),
            ("baseline: store.runs() (all)", lambda: store.runs(), False),
            ("baseline: store.events(run)", lambda: store.events(long_a), False),
            ("baseline: events + timeline_rows",
             lambda: timeline_rows(store.events(long_a)), False),
        ]
        rows = []
        worst = 0.0
        for name, fn, targeted in cases:
            times = timed(fn)
            med, p90 = median(times), quantile(times, 0.9)
            if targeted:
                worst = max(worst, p90)
            rows.append((name, f"{med * 1000:.1f}", f"{p90 * 1000:.1f}",
                         verdict(p90 < TARGET_S) if targeted else "-"))
        close_store(store)
    print(table(["request", "median ms", "p90 ms", f"< {TARGET_S * 1000:.0f} ms"], rows))
    print(f"slowest targeted request p90: {worst * 1000:.1f} ms -> {verdict(worst < TARGET_S)}")


if __name__ == "__main__":
    main()
