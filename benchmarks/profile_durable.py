"""Diagnostic (no target): where a durable record and a side-effecting call spend their time.

Part 1, one durable record layer by layer on a ``durability="normal"`` store (no fsync hides
the Python): agentlab's own statements sent raw, then each layer the record goes through
(``append_rows`` in a raw transaction, the driver transaction, ``write_driver``,
``store.append``, ``write_now``). Medians of blocks of 200, the layers in a random order.
Part 2, each statement of one ``write_now`` timed inside it, at NORMAL and at FULL: what
the fsync does to the work around it.
Part 3, a fixed CPU loop timed right after a raw commit, NORMAL vs FULL.
Part 4, one side-effecting call by stage (NORMAL), including the admission's pieces.
Part 5, ``prepare_all`` of 50,000 checked events with the garbage collector on and off,
and the recorder end to end (50,000 read-only calls and the flush) likewise.

Uses agentlab internals (``SqlStore._db``, ``_heads``, ``agentlab.store._write``,
``agentlab.record._pipeline``); keep in step with them.

Run: .venv/bin/python benchmarks/profile_durable.py
"""

from __future__ import annotations

import collections
import functools
import gc
import hashlib
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, table
from bench_durable import intent_event
from bench_ingest import build_events, lookup_account

import agentlab
from agentlab.model import EventStats, dumps, new_id, now_ns
from agentlab.record import _admission, _core, _pipeline, _writer, writer_for
from agentlab.store import PendingEvent, SqlStore
from agentlab.store import _write as write_mod
from agentlab.testing import allow_all

ROUNDS, BLOCK = 11, 200


def open_run(path: Path, durability: str) -> tuple[SqlStore, _writer.BackgroundWriter, str]:
    store = agentlab.open_store(path, durability=durability)  # type: ignore[arg-type]
    writer = writer_for(store)
    start = PendingEvent(new_id(), new_id(), None, now_ns() // 1000, "run_started",
                         dumps({"kind": "run_started", "workflow": "p", "agent_name": "p"}),
                         None, EventStats())
    writer.write_now([start])
    return store, writer, start.run_id


def part1(tmp: Path) -> list[list[str]]:
    store, writer, run_id = open_run(tmp / "layers.db", "normal")
    db, heads = store._db, store._heads
    raw: Any = db._kept_write_conn().connection.driver_connection
    cur = raw.cursor()
    sql = write_mod._STATEMENTS["sqlite"]
    zero = tuple(EventStats())

    def raw_sql(e: PendingEvent) -> None:
        cur.execute("BEGIN IMMEDIATE")
        seq, prev = heads[run_id]
        h = hashlib.sha256(f"{prev}|{run_id}|{seq + 1}|{e.event_id}||{e.ts_us}|{e.kind}|"
                           .encode() + e.body).hexdigest()
        cur.execute(sql.counters_if, (seq + 1, h, *zero, run_id, prev))
        cur.execute(sql.insert_event, (e.event_id, run_id, seq + 1, None, e.kind, e.ts_us,
                                       e.body.decode(), h))
        cur.execute("COMMIT")
        heads[run_id] = (seq + 1, h)

    def prepared(e: PendingEvent) -> list[write_mod.Prepared]:
        return write_mod.prepare_all([e], 1 << 20, trusted=True)

    def rows_raw_tx(e: PendingEvent) -> None:
        p = prepared(e)
        cur.execute("BEGIN IMMEDIATE")
        write_mod.append_rows(cur, "sqlite", p, heads=heads)
        cur.execute("COMMIT")

    layers: dict[str, Callable[[PendingEvent], Any]] = {
        "agentlab's statements, raw (UPDATE summary, INSERT)": raw_sql,
        "append_rows (+ prepare_all) in a raw transaction": rows_raw_tx,
        "SqlEngine._sqlite_driver_transaction": lambda e: db._sqlite_driver_transaction(
            functools.partial(write_mod.append_rows, dialect="sqlite", batch=prepared(e),
                              heads=heads)),
        "SqlEngine.write_driver (retry loop)": lambda e: db.write_driver(
            functools.partial(write_mod.append_rows, dialect="sqlite", batch=prepared(e),
                              heads=heads)),
        "store.append([event], trusted=True)": lambda e: store.append([e], trusted=True),
        "writer.write_now([event])": lambda e: writer.write_now([e]),
    }
    out: dict[str, list[int]] = {k: [] for k in layers}
    for rnd in range(ROUNDS):
        names = list(layers)
        random.shuffle(names)
        for name in names:
            for i, e in enumerate([intent_event(run_id, i) for i in range(BLOCK + 1)]):
                t0 = time.perf_counter_ns()
                layers[name](e)
                took = time.perf_counter_ns() - t0
                if rnd and i:
                    out[name].append(took)
    close_store(store)
    return [[k, f"{statistics.median(v) / 1e3:.1f}"] for k, v in out.items()]


class _TimedCursor:
    """A cursor that times each statement by its first word."""

    def __init__(self, cur: Any, into: dict[str, list[int]]) -> None:
        self._cur, self._into = cur, into

    def execute(self, sql: str, *args: Any) -> Any:
        t0 = time.perf_counter_ns()
        out = self._cur.execute(sql, *args)
        self._into[sql.split()[0]].append(time.perf_counter_ns() - t0)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def part2(tmp: Path) -> list[list[str]]:
    rows = []
    for durability in ("normal", "full"):
        store, writer, run_id = open_run(tmp / f"stmts-{durability}.db", durability)
        writer.write_now([intent_event(run_id, 0)])  # the cursor exists from here on
        per: dict[str, list[int]] = collections.defaultdict(list)
        store._db._write_cursor = _TimedCursor(store._db._write_cursor, per)
        totals = []
        for i in range(1200):
            t0 = time.perf_counter_ns()
            writer.write_now([intent_event(run_id, i)])
            totals.append(time.perf_counter_ns() - t0)
        med = {k: statistics.median(v[200:]) / 1e3 for k, v in per.items()}
        total = statistics.median(totals[200:]) / 1e3
        rows.append([durability, *(f"{med[k]:.1f}" for k in ("BEGIN", "UPDATE", "INSERT",
                                                               "COMMIT")),
                     f"{total - sum(med.values()):.1f}", f"{total:.1f}"])
        close_store(store)
    return rows


def part3(tmp: Path) -> list[list[str]]:
    def work() -> None:  # a little of everything a record does: hashing, dicts, JSON
        h = b"x" * 200
        for i in range(20):
            h = hashlib.sha256(h).digest()
            dumps({"kind": "tool_call", "tool": "t", "arguments": {"i": i}, "h": h.hex()})

    conns = {}
    for sync in ("NORMAL", "FULL"):
        c = sqlite3.connect(tmp / f"cpu-{sync}.db", isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute(f"PRAGMA synchronous={sync}")
        c.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        conns[sync] = c
    xs: dict[str, list[int]] = {k: [] for k in conns}
    for rnd in range(ROUNDS):
        for sync in random.sample(list(conns), 2):
            c = conns[sync]
            for i in range(BLOCK + 1):
                c.execute("BEGIN IMMEDIATE")
                c.execute("INSERT INTO t (b) VALUES (?)", ("x" * 200,))
                c.execute("COMMIT")
                t0 = time.perf_counter_ns()
                work()
                if rnd and i:
                    xs[sync].append(time.perf_counter_ns() - t0)
    for c in conns.values():
        c.close()
    return [[k, f"{statistics.median(v) / 1e3:.1f}"] for k, v in xs.items()]


def part4(tmp: Path) -> list[list[str]]:
    times: dict[str, list[int]] = collections.defaultdict(list)
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        f = getattr(owner, name)
        patched.append((owner, name, f))

        @functools.wraps(f)
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return f(*a, **k)
            finally:
                times[label].append(time.perf_counter_ns() - t0)
        setattr(owner, name, timed)

    store = agentlab.open_store(tmp / "call.db", durability="normal")

    @agentlab.tool(side_effect=True, scope="tickets:write")
    def create_ticket(title: str) -> dict[str, Any]:
        return {"id": len(title)}

    for owner, name, label in (
        (_pipeline, "_prepare", "binding, idempotency key, plan"),
        (_pipeline, "_admit", "admission"),
        (_admission, "_grants_of", "  grants and the revocation read"),
        (_admission, "choose_grant", "  choose_grant"),
        (_admission, "_policy", "  policy"),
        (_admission, "render_scope", "  render_scope"),
        (_pipeline, "_intent", "intent body"),
        (_core.RunCore, "_emit_durable", "the intent's durable record"),
        (_pipeline, "_execute", "the function"),
        (_pipeline, "_record", "the result's durable record"),
        (_writer.BackgroundWriter, "write_now", "  (each write_now)"),
    ):
        wrap(owner, name, label)
    totals = []
    try:
        with agentlab.record_run("p", agent="p", store=store,
                                 grants=[allow_all(store, agent="p")]):
            for i in range(300):
                create_ticket(f"warm {i}")
            times.clear()
            for i in range(3000):
                t0 = time.perf_counter_ns()
                create_ticket(f"t {i}")
                totals.append(time.perf_counter_ns() - t0)
    finally:
        for owner, name, f in patched:
            setattr(owner, name, f)
        close_store(store)
    rows = [["the whole call", f"{statistics.median(totals) / 1e3:.1f}", "1"]]
    rows += [[k, f"{statistics.median(v) / 1e3:.1f}", f"{len(v) / len(totals):.0f}"]
             for k, v in times.items()]
    return rows


def part5(tmp: Path) -> list[list[str]]:
    evs = build_events(50_000)
    rows: list[list[str]] = []
    for collect in (True, False, True, False):
        if not collect:
            gc.disable()
        try:
            t0 = time.perf_counter()
            write_mod.prepare_all(evs, 1 << 20)
            prep = (time.perf_counter() - t0) / len(evs) * 1e6
            store = agentlab.open_store(tmp / f"e2e-{len(rows)}.db")
            tool = agentlab.tool(lookup_account)
            t0 = time.perf_counter()
            with agentlab.record_run("p", agent="p", store=store):
                for i in range(50_000):
                    tool(f"A-{i:06d}")
            e2e = 50_000 / (time.perf_counter() - t0)
            close_store(store)
        finally:
            gc.enable()
        rows.append(["on" if collect else "off", f"{prep:.2f}", f"{e2e:,.0f}"])
    return rows


def main() -> None:
    header("profile_durable: where a durable record and a side-effecting call spend time")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        print("\nPart 1: one durable record layer by layer, NORMAL (p50, µs, each row "
              "includes the ones above)")
        print(table(["layer", "p50 µs"], part1(tmp)))
        print("\nPart 2: the statements inside one write_now (p50, µs)")
        print(table(["synchronous", "BEGIN", "UPDATE", "INSERT", "COMMIT", "the rest",
                     "write_now"], part2(tmp)))
        print("\nPart 3: a fixed CPU loop right after a raw commit (p50, µs)")
        print(table(["synchronous", "p50 µs"], part3(tmp)))
        print("\nPart 4: one side-effecting call by stage, NORMAL (p50, µs)")
        print(table(["stage", "p50 µs", "per call"], part4(tmp)))
        print("\nPart 5: the garbage collector, 50,000 events")
        print(table(["collector", "prepare_all checked µs/event", "recorder end to end ev/s"],
                    part5(tmp)))


if __name__ == "__main__":
    main()
