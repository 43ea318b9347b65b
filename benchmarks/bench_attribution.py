"""Attribution accuracy on Who&When, and explain latency on a 200-step run (target <= 50 ms).

Part 1, accuracy: the 126 algorithm-generated Who&When runs vendored in
sample_traces/third_party/who-and-when are imported into a temporary SQLite store
(``import_who_and_when``, timed once, and re-imported to show it adds nothing) and scored
against their human labels with ``score_attribution``: the share of runs whose first
ranked culprit is the labelled step (step top-1), whose first three hold it (step top-3),
and whose first culprit's agent is the labelled agent (agent top-1), next to the trivial
baselines on the same runs. Each ``explain`` is timed on its own (through the
``explainer`` hook): median, p90 and max per run.

Part 2, latency: a constructed failed run of 200 steps (four agents taking turns: a
message, a ``@tool`` read, an LLM call and a state write per turn, a tool error every 25
steps, a side-effecting call under a grant every 20) is recorded beside a successful
sibling of the same task, and ``explain(store, run_id)`` is timed, median and p90 over
REPEATS after a warm-up, against the 50 ms target. Baseline, same process and run:
``store.events(run_id)``, the load every explain starts with; for information, the
explain without a sibling to compare with.

Run: .venv/bin/python benchmarks/bench_attribution.py [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, median, quantile, table, verdict

import agentlab as al
from agentlab.analysis import Culprit, explain, score_attribution
from agentlab.integrations import import_who_and_when, who_and_when_labels
from agentlab.store import RunStore
from agentlab.testing import allow_all

ROOT = Path(__file__).resolve().parent.parent
WHO_AND_WHEN = ROOT / "sample_traces" / "third_party" / "who-and-when" / "algorithm-generated"
STEPS = 200
AGENTS = ("planner", "researcher", "coder", "verifier")
REPEATS = 25
TARGET_MS = 50.0


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds per call, after one untimed warm-up call."""
    fn()
    gc.collect()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(xs: list[float], q: float = 0.5) -> str:
    return f"{quantile(xs, q) * 1000:.1f}"


# -- part 1: Who&When ------------------------------------------------------------------------


def who_and_when(tmp: Path) -> None:
    store = al.open_store(tmp / "who-and-when.db")
    t0 = time.perf_counter()
    ids = import_who_and_when(WHO_AND_WHEN, store)
    imported_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = import_who_and_when(WHO_AND_WHEN, store)
    reimport_s = time.perf_counter() - t0
    assert again == ids and len(store.runs()) == len(set(ids))
    labels = list(who_and_when_labels(WHO_AND_WHEN))
    steps = sum(store.run(i).step_count for i in ids)

    per_run: list[float] = []

    def timed_explain(s: RunStore, run_id: str) -> list[Culprit]:
        t = time.perf_counter()
        culprits = explain(s, run_id, limit=10).culprits
        per_run.append(time.perf_counter() - t)
        return culprits

    report = score_attribution(store, labels, explainer=timed_explain)
    close_store(store)

    print(f"\n-- Who&When algorithm-generated: {len(ids)} runs, {steps:,} steps, "
          f"{len(labels)} labels")
    print(f"import {imported_s:.2f} s; re-import {reimport_s:.2f} s, adds nothing")
    print(report.to_text())
    print(f"explain per run: p50 {ms(per_run)} ms, p90 {ms(per_run, 0.9)} ms, "
          f"max {max(per_run) * 1000:.1f} ms")


# -- part 2: a constructed 200-step run ----------------------------------------------------------


@al.tool
def search(query: str, i: int) -> dict[str, Any]:
    if i % 25 == 0:
        raise TimeoutError(f"search timed out on {query!r}")
    return {"query": query, "hits": [f"doc-{i}-{k}" for k in range(3)], "total": 3 + i % 7}


@al.tool(side_effect=True, scope="notes:write")
def save_note(i: int, text: str) -> dict[str, Any]:
    return {"note": i, "saved": len(text)}


def record_pair(store: RunStore) -> tuple[str, str]:
    """A successful run and a failed run of the same task, each of STEPS steps; returns
    (failed run id, successful run id)."""
    grant = allow_all(store, agent="group-chat")
    ids = []
    for ok in (True, False):
        with al.record_run("bench-attribution", agent="group-chat", task_id="T-200",
                           store=store, grants=[grant],
                           task_input={"question": "How many even street numbers?"},
                           expected={"outputs": ["42"]}) as run:
            run.message("How many even street numbers are there?", role="user")
            steps = 1
            turn = 0
            while steps < STEPS - 1:
                who = AGENTS[turn % len(AGENTS)]
                run.message(f"{who}: turn {turn}, working on it", agent=who)
                with contextlib.suppress(TimeoutError):
                    search(f"streets {turn if ok or turn < 20 else turn + 1000}", turn + 1)
                run.llm_call("gpt-4o", messages=[{"role": "user", "content": f"turn {turn}"}],
                             response=f"answer {turn}", input_tokens=300, output_tokens=40,
                             duration_ms=2.0)
                run.state[f"turn/{who}"] = {"turn": turn, "count": turn * (2 if ok else 3)}
                steps += 3
                if turn % 5 == 4 and steps < STEPS - 1:
                    save_note(turn, f"turn {turn} by {who}")
                    steps += 1
                turn += 1
            run.message("42" if ok else "57", agent="verifier")
            run.outcome(success=ok)
        ids.append(run.run_id)
    return ids[1], ids[0]


def constructed(tmp: Path, repeats: int) -> None:
    store = al.open_store(tmp / "constructed.db")
    failed, good = record_pair(store)
    summary = store.run(failed)
    events = store.events(failed)
    ex = explain(store, failed)
    assert store.run(good).success and ex.sibling_run_id == good, ex.sibling_run_id

    results = {
        "explain(store, run) (the target)": timed(lambda: explain(store, failed), repeats),
        "baseline: store.events(run)": timed(lambda: store.events(failed), repeats),
        "info: explain, no sibling": timed(lambda: explain(store, failed, siblings=[]),
                                           repeats),
    }
    close_store(store)

    print(f"\n-- constructed run: {summary.step_count} steps, {len(events)} events, "
          f"status {summary.status}; a successful sibling of the same task")
    top = ex.culprits[:3]
    print("top culprits: " + "; ".join(f"seq {c.seq} ({c.agent or '-'})" for c in top))
    print(table(["variant", "p50 ms", "p90 ms"],
                [(name, ms(xs), ms(xs, 0.9)) for name, xs in results.items()]))
    p50 = median(results["explain(store, run) (the target)"]) * 1000
    load = median(results["baseline: store.events(run)"]) * 1000
    print(f"target explain <= {TARGET_MS:.0f} ms for a {STEPS}-step run: "
          f"{verdict(p50 <= TARGET_MS)} ({p50:.1f} ms, {p50 / load:.1f}x the "
          f"store.events load of {load:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    header("bench_attribution: Who&When attribution accuracy, explain latency on 200 steps")
    with tempfile.TemporaryDirectory() as tmp:
        who_and_when(Path(tmp))
        constructed(Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
