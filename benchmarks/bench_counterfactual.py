"""Counterfactual search over the demo's bad run: every candidate fork, against the 2 s target.

Per repeat, a fresh SQLite store (``synchronous=FULL``, the default) gets the demo's three
runs (``run_demo``, untimed). Then, timed:

  search    ``counterfactuals(store, bad_run_id)`` (default budget: 20 forks, 30 s): every
            call of the bad run whose value differs from the good sibling's is forked with
            the sibling's value and the fork's outcome judged. Wall clock around the call
            and the report's own ``seconds``; the forks it made (``report.trials``, checked
            against the fork runs in the store) and which of them flip the outcome.
  baseline  recording the bad run once more (``run_triage(store, scenario="stale")``, the
            demo's own code, grants already issued): what one live run of the same agent
            costs, to compare with the time per fork.
  info      ``explain(store, bad_run_id, counterfactual=True)`` in the same process (the
            culprit ranking plus its own search), and, once per repeat, the command line in
            a fresh process on a copy of the store (``python -m agentlab explain RUN
            --counterfactual --json``: interpreter start, imports, search).

Target (issue): all candidates in <= 2 s.

Run: .venv/bin/python benchmarks/bench_counterfactual.py [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import close_store, header, median, table, verdict

import agentlab as al
from agentlab.analysis import explain
from agentlab.demo import DEMO_TICKET, run_demo, run_triage
from agentlab.recovery import counterfactuals
from agentlab.store import RunFilter

TARGET_S = 2.0
REPEATS = 5  # after one warm-up repeat


def timed(fn: Any) -> tuple[Any, float]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cli_search(db: Path, run_id: str) -> tuple[float, dict[str, Any]]:
    """``agentlab explain RUN --counterfactual --json`` in a fresh interpreter: wall clock
    of the whole process, and the JSON's counterfactual report."""
    # Run from the store's folder: with ``-m`` the working directory comes first on the
    # path, and a checkout there would shadow the agentlab this process imported.
    env, cwd = {**os.environ, "NO_COLOR": "1"}, db.parent
    where = subprocess.run([sys.executable, "-c", "import agentlab; print(agentlab.__file__)"],
                           capture_output=True, text=True, check=True, env=env, cwd=cwd)
    assert Path(where.stdout.strip()) == Path(al.__file__), (where.stdout, al.__file__)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agentlab", "explain", run_id, "--counterfactual", "--json",
         "--store", str(db)],
        capture_output=True, text=True, check=True, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    return wall, json.loads(done.stdout)["counterfactual"]


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy through SQLite's backup API (it reads the WAL too: after
    ``store.close()`` a store that made governed calls may still have its WAL open)."""
    with contextlib.closing(sqlite3.connect(src)) as a, contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)


def one_repeat(tmp: Path, i: int, *, cli: bool) -> dict[str, Any]:
    path = tmp / f"demo-{i}.db"
    store = al.open_store(path)
    try:
        demo = run_demo(store)
        if cli:  # a copy with only the demo's runs, for the fresh process
            copy_store(path, tmp / f"cli-{i}.db")
        report, wall = timed(lambda: counterfactuals(store, demo.bad_run_id))
        forks = store.runs(RunFilter(run_kind="fork", parent_run_id=demo.bad_run_id))
        assert len(forks) == len(report.trials), (len(forks), len(report.trials))
        _, baseline = timed(lambda: run_triage(store, scenario="stale", ticket_id=DEMO_TICKET))
        ex, explain_s = timed(lambda: explain(store, demo.bad_run_id, counterfactual=True))
        row: dict[str, Any] = {
            "wall": wall, "seconds": report.seconds, "trials": report.trials,
            "skipped": report.skipped, "exhausted": report.exhausted,
            "baseline": baseline, "explain": explain_s,
            "explain_forks": len(ex.counterfactual.trials) if ex.counterfactual else 0,
            "culprit": f"seq {ex.culprit.seq} {ex.culprit.name}" if ex.culprit else "-",
        }
    finally:
        close_store(store)
    if cli:
        row["cli_wall"], cf = cli_search(tmp / f"cli-{i}.db", demo.bad_run_id)
        row["cli_seconds"] = cf["seconds"]
        row["cli_forks"] = len(cf["trials"])
    return row


def short_source(source: str) -> str:
    """``sibling run <id> seq N`` with the id cut to 12 characters."""
    words = source.split()
    if len(words) == 5 and words[:2] == ["sibling", "run"]:
        return f"good run {words[2][:12]} seq {words[4]}"
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    header("bench_counterfactual: counterfactual search over the demo's bad run")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for i in range(args.repeats + 1):
            row = one_repeat(Path(tmp_name), i, cli=i > 0)
            if i:  # the first repeat is a warm-up (imports, type adapters, git state)
                rows.append(row)

    def stat(name: str, scale: float = 1000.0, fmt: str = "{:.0f}") -> list[str]:
        xs = [r[name] * scale for r in rows]
        return [fmt.format(min(xs)), fmt.format(median(xs)), fmt.format(max(xs))]

    r0 = rows[0]
    n = len(r0["trials"])
    per_fork = [r["wall"] / len(r["trials"]) for r in rows]
    print(f"{n} forks per search (budget 20 forks / 30 s, exhausted: {r0['exhausted']}); "
          f"{len(r0['skipped'])} calls skipped: "
          + "; ".join(f"seq {s} ({why})" for s, why in r0["skipped"]))
    print(table(["seq", "call", "substituted value from", "outcome"], [
        [t.seq, t.name, short_source(t.source),
         "FLIPS to success" if t.flipped else (t.error or "still fails")]
        for t in r0["trials"]]))
    same = all([(t.seq, t.flipped) for t in r["trials"]]
               == [(t.seq, t.flipped) for t in r0["trials"]] for r in rows)
    print(f"same forks and flips in every repeat: {same}")
    print()
    print(f"ms, {len(rows)} repeats after a warm-up; min / median / max")
    print(table(["variant", "min", "median", "max"], [
        ["counterfactuals(): wall clock, all candidates (the target)", *stat("wall")],
        ["counterfactuals(): report.seconds", *stat("seconds")],
        ["  per fork (wall / forks)", *[f"{x * 1000:.1f}" for x in
                                        (min(per_fork), median(per_fork), max(per_fork))]],
        ["baseline: recording the bad run once (run_triage, live)", *stat("baseline", fmt="{:.1f}")],
        ["info: explain(counterfactual=True), in process", *stat("explain")],
        ["info: CLI explain --counterfactual, fresh process, wall", *stat("cli_wall")],
        ["info: CLI, its report.seconds", *stat("cli_seconds")],
    ]))
    print(f"explain's culprit: {r0['culprit']} ({r0['explain_forks']} forks); "
          f"CLI forks: {r0['cli_forks']}")
    ratio = median(per_fork) / median([r["baseline"] for r in rows])
    print(f"one fork / one live recording of the run: {ratio:.2f}x")
    print(f"load avg after: {os.getloadavg()[0]:.2f}")
    worst = max(r["wall"] for r in rows)
    print(f"target: all candidates in <= {TARGET_S:.0f} s: median {median([r['wall'] for r in rows]):.3f} s, "
          f"worst {worst:.3f} s -> {verdict(worst <= TARGET_S)}")


if __name__ == "__main__":
    main()
