"""Diagnostic (no target): what agentlab's store write path spends its time on.

Part 1, cost per one-event write transaction (what a durable side-effect record pays):
medians of 300 interleaved samples, next to raw sqlite3 running agentlab's statements and
bench_durable's single-row baseline; (a) on a ``durability="normal"`` store, so no fsync
hides the Python cost, with the fixed parts timed alone, and (b) with synchronous=FULL.
Part 2, cost per event in a 50,000-event ingest: each step of ``store.append`` timed on its
own over the same events bench_ingest uses, untrusted (any caller) and ``trusted=True``
(the recorder's writer).
Part 3: cProfile of 1,000 one-event ``store.append(..., trusted=True)`` transactions
(``--cprofile``; times inflated by the profiler).

Uses agentlab internals (``SqlStore._db``, ``agentlab.store._write``); keep in step with them.

Run: .venv/bin/python benchmarks/profile_store_path.py [--cprofile]
"""

from __future__ import annotations

import cProfile
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, table
from bench_durable import Raw, events_ddl
from bench_ingest import BATCH, build_events, raw_rows

import agentlab
from agentlab.model import EventStats, dumps, loads, new_id, now_ns
from agentlab.record import writer_for
from agentlab.store import GENESIS, PendingEvent, chain_hash
from agentlab.store import _write as write_mod
from agentlab.store._body import body_facts

SAMPLES = 300
N = 50_000
HEAD_SQL = "SELECT last_seq, head_hash FROM agentlab_runs WHERE run_id = ?"


def med_us(f: Callable[[], Any], n: int = SAMPLES) -> float:
    for _ in range(20):
        f()
    xs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        f()
        xs.append(time.perf_counter_ns() - t0)
    return statistics.median(xs) / 1000


def per_event_us(f: Callable[[], Any], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter_ns()
        f()
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


def intent(run_id: str, i: int) -> PendingEvent:
    eid = new_id()
    body = dumps({"kind": "tool_intent", "tool": "create_ticket", "call_id": eid,
                  "arguments": {"title": f"T-{i}"}, "idempotency_key": f"k:{i}"})
    return PendingEvent(run_id, eid, None, now_ns() // 1000, "tool_intent", body, None,
                        EventStats())


def start_event() -> PendingEvent:
    return PendingEvent(new_id(), new_id(), None, now_ns() // 1000, "run_started",
                        dumps({"kind": "run_started", "workflow": "b", "agent_name": "a"}),
                        None, EventStats())


def part1(tmp: Path, durability: str, ddl: list[str]) -> list[list[str]]:
    """Whole transactions (interleaved sample by sample, so WAL growth, checkpoints and the
    disk fall on all of them alike) and, with durability='normal', their fixed parts."""
    sync = durability.upper()
    store = agentlab.open_store(tmp / f"fixed-{durability}.db", durability=durability)  # type: ignore[arg-type]
    db = store._db  # type: ignore[attr-defined]
    start = start_event()
    store.append([start])
    rid = start.run_id
    # Raw sqlite3 runs agentlab's statements on a file of its own (made by agentlab, with a
    # run in it): a second connection writing to the store's file would make the store's
    # connection reload its page cache before every transaction.
    setup = agentlab.open_store(tmp / f"raw-{durability}.db", durability=durability)  # type: ignore[arg-type]
    raw_start = start_event()
    setup.append([raw_start])
    close_store(setup)
    raw_rid = raw_start.run_id
    raw = sqlite3.connect(tmp / f"raw-{durability}.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", f"synchronous={sync}", "busy_timeout=5000",
                   "secure_delete=ON"):
        raw.execute(f"PRAGMA {pragma}")
    single = Raw(tmp / f"single-{durability}.db", ddl, sync)  # bench_durable's baseline
    evs = iter([intent(rid, i) for i in range(8 * SAMPLES + 400)])
    upd = ("UPDATE agentlab_runs SET last_seq = ?, head_hash = ?, step_count = step_count + 0, "
           "llm_calls = llm_calls + 0, tool_calls = tool_calls + 0, error_count = error_count + 0, "
           "retry_count = retry_count + 0, cost_usd = cost_usd + 0, "
           "input_tokens = input_tokens + 0, output_tokens = output_tokens + 0 WHERE run_id = ?")
    ins = ("INSERT INTO agentlab_events (event_id, run_id, seq, parent_id, kind, ts_us, body, "
           "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

    def raw_append(ev: PendingEvent) -> None:
        raw.execute("BEGIN IMMEDIATE")
        seq, prev = raw.execute(HEAD_SQL, (raw_rid,)).fetchone()
        seq += 1
        h = chain_hash(prev, raw_rid, seq, ev.event_id, None, ev.ts_us, ev.kind, ev.body)
        raw.execute(ins, (ev.event_id, raw_rid, seq, None, ev.kind, ev.ts_us, ev.body.decode(),
                          h))
        raw.execute(upd, (seq, h, raw_rid))
        raw.execute("COMMIT")

    def head_on_cursor(conn: Any) -> Any:
        cur = conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(HEAD_SQL, (rid,))
            return cur.fetchone()
        finally:
            cur.close()

    writer = writer_for(store)
    singles = [single.row() for _ in range(20 + SAMPLES)]
    whole: dict[str, list[int]] = {}
    for i in range(20 + SAMPLES):
        for name, f in (
            ("raw sqlite3: 1 single-row INSERT + COMMIT (bench_durable's baseline)",
             lambda i=i: single.commit_one(singles[i])),
            ("raw sqlite3: agentlab's transaction for 1 event (SELECT head, INSERT, UPDATE)",
             lambda: raw_append(next(evs))),
            ("store.append([one event], trusted=True)",
             lambda: store.append([next(evs)], trusted=True)),
            ("store.append([one event]) (untrusted)", lambda: store.append([next(evs)])),
            ("writer.write_now([one event]) (bench_durable's operation)",
             lambda: writer.write_now([next(evs)])),
        ):
            t0 = time.perf_counter_ns()
            f()
            if i >= 20:
                whole.setdefault(name, []).append(time.perf_counter_ns() - t0)
    rows = [[name, f"{statistics.median(xs) / 1000:.0f}"] for name, xs in whole.items()]
    if durability == "normal":
        rows += [
            ["raw sqlite3: BEGIN IMMEDIATE; COMMIT",
             f"{med_us(lambda: (raw.execute('BEGIN IMMEDIATE'), raw.execute('COMMIT'))):.0f}"],
            ["SqlEngine.write(no-op): lock, persistent connection, begin hook, COMMIT",
             f"{med_us(lambda: db.write(lambda c: None)):.0f}"],
            ["  + the head SELECT on the driver cursor (as append_in runs it)",
             f"{med_us(lambda: db.write(head_on_cursor)):.0f}"],
            ["prepare() of one event, untrusted (parse, body_facts, re-dump)",
             f"{med_us(lambda: write_mod.prepare(intent(rid, 0), 1 << 24)):.0f}"],
            ["prepare() of one event, trusted",
             f"{med_us(lambda: write_mod.prepare_all([intent(rid, 0)], 1 << 24, trusted=True)[0]):.0f}"],
        ]
    raw.close()
    single.conn.close()
    close_store(store)
    return rows


def part2(tmp: Path) -> list[list[str]]:
    evs = build_events(N)
    rows_raw = raw_rows(evs)

    def chain() -> None:
        prev = GENESIS
        for seq, ev in enumerate(evs, 1):
            prev = chain_hash(prev, ev.run_id, seq, ev.event_id, ev.parent_id, ev.ts_us,
                              ev.kind, ev.body)

    def flatten() -> None:
        for i in range(0, len(rows_raw), 500):
            tuple(v for row in rows_raw[i : i + 500] for v in row)

    counter = iter(range(100))

    def whole_append(trusted: bool, out: list[float]) -> None:
        store = agentlab.open_store(tmp / f"ingest-{next(counter)}.db")
        batch = build_events(N)
        t0 = time.perf_counter_ns()
        for i in range(0, N, BATCH):
            store.append(batch[i : i + BATCH], trusted=trusted)
        out.append((time.perf_counter_ns() - t0) / N / 1000)
        close_store(store)

    def append_in_only(out: list[float]) -> None:
        """The transaction part alone: each batch prepared (trusted, as the writer) untimed
        just before its transaction, so as many objects are alive as in store.append."""
        store = agentlab.open_store(tmp / f"ingest-{next(counter)}.db")
        db = store._db  # type: ignore[attr-defined]
        batch = build_events(N)
        elapsed = 0
        for i in range(0, N, BATCH):
            ready = write_mod.prepare_all(batch[i : i + BATCH], 1 << 24, trusted=True)
            t0 = time.perf_counter_ns()
            db.write(lambda conn, ready=ready: write_mod.append_in(conn, ready))
            elapsed += time.perf_counter_ns() - t0
        out.append(elapsed / N / 1000)
        close_store(store)

    parsed = [loads(ev.body) for ev in evs]

    def facts() -> None:
        for ev, b in zip(evs, parsed, strict=True):
            body_facts(ev.kind, b, stats=False)

    # Results kept alive batch by batch, as store.append keeps them.
    def prepare_all(trusted: bool) -> None:
        for i in range(0, N, BATCH):
            _ready = write_mod.prepare_all(evs[i : i + BATCH], 1 << 24, trusted=trusted)

    def loads_dumps() -> None:
        for i in range(0, N, BATCH):
            _kept = [(b := loads(ev.body), dumps(b)) for ev in evs[i : i + BATCH]]

    untrusted: list[float] = []
    trusted: list[float] = []
    txn: list[float] = []
    for _ in range(3):
        whole_append(False, untrusted)
        whole_append(True, trusted)
        append_in_only(txn)
    return [
        ["store.append in all, untrusted (bench_ingest's agentlab row)", f"{min(untrusted):.2f}"],
        ["  prepare(), untrusted: parse body, body_facts, canonical re-dump check",
         f"{per_event_us(lambda: prepare_all(False), N):.2f}"],
        ["    of which orjson loads + dumps of the body (bodies kept, as prepare keeps them)",
         f"{per_event_us(loads_dumps, N):.2f}"],
        ["    of which body_facts() on the parsed bodies (stats precomputed)",
         f"{per_event_us(facts, N):.2f}"],
        ["store.append in all, trusted=True (the recorder's writer)", f"{min(trusted):.2f}"],
        ["  prepare(), trusted",
         f"{per_event_us(lambda: prepare_all(True), N):.2f}"],
        ["  append_in() in SqlEngine.write (each batch prepared untimed)", f"{min(txn):.2f}"],
        ["    of which chain_hash() (SHA-256 chain, inherent)", f"{per_event_us(chain, N):.2f}"],
        ["    of which parameter flattening for multi-row INSERT",
         f"{per_event_us(flatten, N):.2f}"],
    ]


def part3(tmp: Path) -> None:
    store = agentlab.open_store(tmp / "prof.db", durability="normal")
    start = start_event()
    store.append([start])
    evs = [intent(start.run_id, i) for i in range(1_100)]
    for ev in evs[:100]:
        store.append([ev], trusted=True)
    prof = cProfile.Profile()
    prof.enable()
    for ev in evs[100:]:
        store.append([ev], trusted=True)
    prof.disable()
    close_store(store)
    print()
    print("Part 3: cProfile of 1,000 store.append([one event], trusted=True), durability='normal'")
    pstats.Stats(prof).sort_stats("tottime").print_stats(14)


def main() -> None:
    header("profile_store_path: where the store write path spends its time")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ddl = events_ddl(tmp)
        p1 = {d: part1(tmp, d, ddl) for d in ("normal", "full")}
        p2 = part2(tmp)
        print()
        print("Part 1a: one-event write transactions, durability='normal' (no fsync), "
              "and their fixed parts")
        print(table(["step", "median us"], p1["normal"]))
        print()
        print("Part 1b: the same transactions with synchronous=FULL (fsync per commit)")
        print(table(["step", "median us"], p1["full"]))
        print()
        print(f"Part 2: cost per event, {N:,} events in batches of {BATCH:,} (best of 3)")
        print(table(["step", "us/event"], p2))
        if "--cprofile" in sys.argv:
            part3(tmp)


if __name__ == "__main__":
    main()
