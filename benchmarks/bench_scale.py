"""Scale: what the everyday reads cost as one store grows from 1,000 to 1,000,000 runs.

One store is filled in steps (by default to 1,000, 10,000, 100,000 and 1,000,000 runs) and,
at each size, the reads people make every day are timed, each as the median of several
rounds after a warm-up:

* ``runs`` (the CLI's listing): the 50 newest runs and their short ids; the 50 newest
  failed runs; the abandoned runs (rare: 0.2 %); the 50 newest runs of one workflow; the
  explorer's first page;
* ``metrics`` over the last hour (1,000 runs at every size), by workflow, and for one
  workflow;
* ``explain`` of the newest failed run (its own events, the sibling runs of its task and
  theirs);
* ``verify`` of that run (hash chain, summary counters, its checkpoint's blob).

Each figure is printed next to its ratio to the same operation at the smallest size,
measured in the same run on the same store (the baseline). The work asked for is the
same at every size: a page of 50, one hour of runs, one run and its five siblings (but for
the abandoned runs: about 2 of them at 1,000 runs, 20 at 10,000, a full page from 100,000;
the last column says what each read returned at the smallest and largest size). A ratio
near 1 means the cost follows the work; one that grows with the store means a read walks
more than it returns (the docs/benchmarks.md "Scale" section has the query plans). Target:
every read at the largest size within 2x its time at the smallest.

The runs are small and realistic: 9 events (run_started, phases read and act, two LLM
calls with tokens and cost, two tool calls, a checkpoint of a small state, run_ended; a
failed run's second tool call errors), 1,000 runs an hour, five workflows, three agent
versions, tasks drawn from a pool of 1,000 (so a task gains siblings as the store grows),
86.8 % succeeded, 8 % failed, 5 % errored, 0.2 % abandoned (marked running, their
recorder's lease lapsed); one failed run in ten was investigated and concluded. They are
written as a recorder's writer writes them: ``store.append(batch, trusted=True)`` of 250
runs per transaction, oldest first, with the store opened at ``durability="normal"``; the
investigations through ``open_investigation`` and ``conclude_investigation``.

    .venv/bin/python benchmarks/bench_scale.py                      # SQLite, up to 10^6
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000,10000    # quick
    .venv/bin/python benchmarks/bench_scale.py --pg postgresql://postgres@127.0.0.1/test

On PostgreSQL the store is a schema of its own (dropped afterwards unless ``--keep``),
analysed after each fill as autovacuum would; the sizes go up to 10^5 by default.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _util import machine_line, table, verdict
from sqlalchemy import create_engine, text

import agentlab as al
from agentlab.analysis import explain, metrics_summary
from agentlab.model import TreeEncoder, dumps, event_stats, new_id, now_ns
from agentlab.store import PendingEvent, RunFilter, normalise_url

SQLITE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
PG_SIZES = (1_000, 10_000, 100_000)
REPEAT = 7
TARGET_RATIO = 2.0
RUNS_PER_BATCH = 250
RUN_SPACING_US = 3_600_000  # 1,000 runs an hour
HOUR_US = 3_600_000_000
WORKFLOWS = ("support-triage", "billing", "refunds", "onboarding", "escalation")
TASKS = 1_000
STATUS_WEIGHTS = (86.8, 8, 5, 0.2)  # succeeded, failed, errored, running (abandoned)
INVESTIGATED = 0.1  # of the failed runs


class Filler:
    """Writes runs number ``done`` .. ``n - 1`` (run i starts ``i`` spacings after t0)."""

    def __init__(self, store: Any, t0_us: int) -> None:
        self.store = store
        self.t0_us = t0_us
        self.done = 0
        self.rng = random.Random(13)
        self.leases: dict[str, tuple[str, int]] = {}
        self.investigated: list[tuple[str, int]] = []

    def fill_to(self, n: int) -> float:
        t = time.perf_counter()
        while self.done < n:
            batch: list[PendingEvent] = []
            for i in range(self.done, min(n, self.done + RUNS_PER_BATCH)):
                batch.extend(self._run(i))
            self.store.append(batch, trusted=True, acks=False, leases=self.leases)
            self.leases.clear()
            for run_id, ended_us in self.investigated:  # looked into an hour after it failed
                self.store.open_investigation(run_id, by="ann", at_us=ended_us + HOUR_US)
                self.store.conclude_investigation(
                    run_id, by="ann", at_us=ended_us + HOUR_US + self.rng.randrange(60, 1800)
                    * 1_000_000, culprit_seq=7, note="refund over the account's limit")
            self.investigated.clear()
            self.done = min(n, self.done + RUNS_PER_BATCH)
        return time.perf_counter() - t

    def _run(self, i: int) -> list[PendingEvent]:
        rng = self.rng
        run_id = new_id()
        ts = self.t0_us + i * RUN_SPACING_US
        status = rng.choices(("succeeded", "failed", "errored", "running"), STATUS_WEIGHTS)[0]
        if status == "running":  # its recorder died: the lease lapsed 10 minutes in
            self.leases[run_id] = ("host-7:4242:a1b2", ts + 600_000_000)
        task = f"T-{rng.randrange(TASKS):05d}"
        account = f"A-{rng.randrange(100_000):06d}"
        evs: list[PendingEvent] = []

        def ev(kind: str, body: dict[str, Any], *, parent: str | None = None,
               blobs: dict[str, bytes] | None = None) -> str:
            body["kind"] = kind
            eid = new_id()
            evs.append(PendingEvent(run_id, eid, parent, ts + 150_000 * len(evs), kind,
                                    dumps(body), blobs, event_stats(kind, body)))
            return eid

        ev("run_started", {"workflow": WORKFLOWS[i % 5], "agent_name": "support-bot",
                           "agent_version": f"v{i % 3 + 1}", "task_id": task,
                           "task_input": {"ticket": f"{task}-{i}", "account": account},
                           "owner": "ops", "team": "support"})
        ev("phase", {"phase": "read"})
        tokens = rng.randrange(800, 4000)
        ev("llm_call", {"model": "gpt-4o-mini", "provider": "openai",
                        "messages": [{"role": "user", "content": f"Ticket {task}: refund?"}],
                        "response": {"role": "assistant", "content": "Look up the account."},
                        "input_tokens": tokens, "output_tokens": tokens // 8,
                        "cost_usd": round(tokens * 1.5e-7, 8), "cost_source": "price_table"})
        lookup = ev("tool_call", {"tool": "lookup_account", "arguments": {"id": account},
                                  "result": {"tier": rng.choice(("gold", "silver")),
                                             "open_tickets": rng.randrange(5)},
                                  "duration_ms": 12.5})
        state = {"account": account, "tier": "gold", "ticket": f"{task}-{i}"}
        enc = TreeEncoder()
        root = enc.node(state)
        ev("checkpoint", {"root": root, "writes": sorted(state)}, parent=lookup,
           blobs=enc.blobs)
        ev("phase", {"phase": "act", "previous": "read"})
        if status == "failed":
            ev("tool_call", {"tool": "issue_refund", "arguments": {"id": account, "amount": 40},
                             "status": "error", "error": {"type": "HTTPError",
                                                         "message": "402 over limit"}})
        else:
            ev("tool_call", {"tool": "issue_refund", "arguments": {"id": account, "amount": 40},
                             "result": {"ok": True}, "duration_ms": 40.1})
        ev("llm_call", {"model": "gpt-4o-mini", "provider": "openai",
                        "messages": [{"role": "user", "content": "Summarise."}],
                        "response": {"role": "assistant", "content": "Refund handled."},
                        "input_tokens": 600, "output_tokens": 80, "cost_usd": 0.0001,
                        "cost_source": "price_table"})
        if status != "running":
            ev("run_ended", {"status": status, "success": status == "succeeded"})
        if status == "failed" and rng.random() < INVESTIGATED:
            self.investigated.append((run_id, evs[-1].ts_us))
        return evs


def operations(store: Any, now_us: int) -> list[tuple[str, Callable[[], Any]]]:
    """The timed reads, as the CLI and the analysis API make them."""
    failed = store.runs(RunFilter(status="failed", limit=1))[0]
    newest_failed = failed.run_id
    # explain compares with up to 5 successful runs of the task: fewer in a small store
    siblings = len(store.runs(RunFilter(task_id=failed.task_id, status="succeeded",
                                        run_kind="run", limit=5)))
    hour_ago = datetime.fromtimestamp((now_us - HOUR_US) / 1e6, UTC)

    def listing(**where: Any) -> Callable[[], Any]:
        def run() -> Any:  # what `agentlab runs` does: the page, then its printable ids
            found = store.runs(RunFilter(limit=50, **where))
            return store.short_ids(r.run_id for r in found)
        return run

    return [
        ("runs: 50 newest + short ids", listing()),
        ("runs --status failed", listing(status="failed")),
        ("runs --status abandoned", listing(status="abandoned")),
        ("runs --workflow billing", listing(workflow="billing")),
        ("run_page (explorer, page 1)", lambda: store.run_page(limit=50)),
        ("metrics: last hour by workflow",
         lambda: metrics_summary(store, by=("workflow",), since=hour_ago)),
        ("metrics: last hour, one workflow, by day",
         lambda: metrics_summary(store, by=("agent_version",), bucket="day",
                                 workflow="billing", since=hour_ago)),
        ("explain (newest failed run)", lambda: (explain(store, newest_failed), siblings)),
        ("verify (the same run)", lambda: store.verify(newest_failed)),
    ]


def returned(result: Any) -> str:
    """How many rows a read returned (runs listed, metric rows), events it verified or
    sibling runs it compared."""
    if hasattr(result, "runs"):  # a RunPage
        return str(len(result.runs))
    if isinstance(result, (list, dict)):
        if result and hasattr(result[0] if isinstance(result, list) else None, "events"):
            return f"{result[0].events} ev"  # a verify report
        return str(len(result))
    if isinstance(result, tuple):  # an explanation and how many siblings it compared
        return f"{result[1]} siblings"
    return "?"


def measure(cases: list[tuple[str, Callable[[], Any]]], repeat: int
            ) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per case (one warm-up each, then ``repeat`` interleaved rounds), and
    what each returned."""
    rows = {name: returned(fn()) for name, fn in cases}
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(repeat):
        for name, fn in cases:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="comma-separated store sizes in runs, ascending; the "
                    "first is the baseline (default 1000,10000,100000,1000000 on SQLite, "
                    "up to 100000 on PostgreSQL)")
    ap.add_argument("--pg", metavar="URL", help="measure on this PostgreSQL database (in a "
                    "new schema, dropped at the end) instead of a temporary SQLite file")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="timed rounds per size")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite file / PG schema")
    args = ap.parse_args()
    sizes = ([int(s.replace("_", "")) for s in args.sizes.split(",")] if args.sizes
             else list(PG_SIZES if args.pg else SQLITE_SIZES))
    if sizes != sorted(sizes) or sizes[0] < 10:
        ap.error("--sizes must be ascending, the first at least 10")

    schema: str | None = None
    if args.pg:
        schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
        store = al.open_store(args.pg, schema=schema)
        where = f"PostgreSQL schema {schema}"
    else:
        path = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "scale.db"
        store = al.open_store(path, durability="normal")
        where = f"SQLite {path}"
    now_us = now_ns() // 1000
    t0_us = now_us - sizes[-1] * RUN_SPACING_US
    filler = Filler(store, t0_us)
    print(f"# bench_scale | {machine_line()}")
    print(f"{where}; runs of ~9 events, {3_600_000_000 // RUN_SPACING_US:,} an hour; "
          f"median of {args.repeat} after a warm-up")
    results: list[tuple[int, float, dict[str, float]]] = []
    rows_at: dict[int, dict[str, str]] = {}
    try:
        for n in sizes:
            fill_s = filler.fill_to(n)
            if schema is not None:  # the statistics autovacuum keeps, taken now
                with store.atomic() as conn:
                    conn.execute(text("ANALYZE"))
            # "The last hour" ends at the newest run: it holds 1,000 runs at every size.
            got, rows_at[n] = measure(operations(store, t0_us + n * RUN_SPACING_US),
                                      args.repeat)
            results.append((n, fill_s, got))
            print(f"  {n:>9,} runs (filled +{fill_s:.1f} s): "
                  + ", ".join(f"{k.split(' ')[0]} {v * 1e3:.1f}" for k, v in got.items())
                  + " ms", flush=True)
    finally:
        store.close()
        if schema is not None and not args.keep:
            eng = create_engine(normalise_url(args.pg))
            with eng.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            eng.dispose()
        elif schema is None and not args.keep:
            for f in path.parent.iterdir():
                f.unlink()
            path.parent.rmdir()

    base = results[0][2]
    names = list(base)
    first, last = results[0][0], results[-1][0]
    headers = ["operation", *(f"{n:,} ms" for n, _, _ in results),
               *(f"x @{n:,}" for n, _, _ in results[1:]), "returned"]
    rows = [[name, *(f"{r[name] * 1e3:.2f}" for _, _, r in results),
             *(f"{r[name] / base[name]:.2f}" for _, _, r in results[1:]),
             f"{rows_at[first][name]} / {rows_at[last][name]}"] for name in names]
    print(table(headers, rows))
    print("fill: " + ", ".join(f"{n:,} runs +{s:.1f} s" for n, s, _ in results))
    # A read that returned more at the largest size than at the smallest did more work:
    # it is compared from the first size at which it returned as much.
    ratios = {}
    for k in names:
        at = next(i for i, (n, _, _) in enumerate(results)
                  if rows_at[n][k] == rows_at[last][k])
        ratios[k] = (results[-1][2][k] / results[at][2][k], results[at][0])
    worst = max(names, key=lambda k: ratios[k][0])
    ratio = ratios[worst][0]
    later = [f"{k} from {ratios[k][1]:,} runs ({ratios[k][0]:.2f}x)" for k in names
             if ratios[k][1] != first]
    print(f"target: every read at {last:,} runs <= {TARGET_RATIO}x its time at {first:,}"
          f"{' (' + '; '.join(later) + ', when it first returned as much)' if later else ''}: "
          f"{verdict(ratio <= TARGET_RATIO)} (worst: {worst}, {ratio:.2f}x)")


if __name__ == "__main__":
    main()
