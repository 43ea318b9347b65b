"""Durable side-effect records: agentlab's synchronous commit vs a raw sqlite3 commit.

A side-effecting tool pays one durable record for its intent before it runs and one for
its result after. Measured here, in one process and one database file, so both sides
fsync the same write-ahead log on the same disk:

* one durable record: ``BackgroundWriter.write_now([event])`` of one pre-built
  ``tool_intent`` event (the recorder's ``writer_for(store)``, queue empty) vs one raw
  sqlite3 ``BEGIN IMMEDIATE; INSERT (one row); COMMIT`` into a copy of agentlab's events
  table (its own DDL: PK event_id, UNIQUE(run_id, seq)) made in the store's file, on a
  connection of its own with the same pragmas;
* one whole side-effecting call: a ``@tool(side_effect=True)`` trivial function inside
  ``record_run`` (intent + result = 2 durable records) vs 2 raw single-row commits;
* for information, agentlab's own statements sent raw (``UPDATE`` of the run's summary
  row, ``INSERT`` of the event, rows and hashes computed before timing): the floor of a
  record that keeps its run's summary in the same transaction, which writes one page more
  than the baseline (4 WAL frames, not 3).

Both with ``synchronous=FULL`` (agentlab's default; the target applies here) and, for
information, with ``durability="normal"`` vs raw ``synchronous=NORMAL``. Medians of 300
samples each, taken in blocks: each of 15 rounds runs every operation 21 times in a row
(the first not counted) with the operations in a random (seeded) order, after a warm-up
round. On this disk an fsync costs more right after an fsync of another file, and files
differ (the same raw commit took 0.14-0.21 ms by file and 0.28 ms alternating with
another file), so the sides share one file and each follows itself in a block, as an
agent's consecutive commits to its store do; the rounds spread any drift over all.

Run: .venv/bin/python benchmarks/bench_durable.py
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, events_ddl, header, median, quantile, table, verdict

import agentlab
from agentlab.model import EventStats, dumps, new_id, now_ns
from agentlab.record import writer_for
from agentlab.store import PendingEvent, chain_hash
from agentlab.testing import allow_all

BLOCK = 20
ROUNDS = 15
SAMPLES = BLOCK * ROUNDS
TARGET_RATIO = 1.2
COLS = "event_id, run_id, seq, parent_id, kind, ts_us, body, hash"




class Raw:
    """Single-row INSERT + COMMIT into a copy of agentlab's events table, in the store's
    file; ``floor`` sends agentlab's own statements for one record of ``run_id``."""

    TABLE = "bench_raw_events"

    def __init__(self, path: Path, ddl: list[str], synchronous: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for p in ("journal_mode=WAL", f"synchronous={synchronous}", "busy_timeout=5000",
                  "secure_delete=ON"):
            self.conn.execute(f"PRAGMA {p}")
        for stmt in ddl:
            self.conn.execute(stmt.replace("agentlab_events", self.TABLE))
        self.run_id = new_id()
        self.seq = 0
        self.sql = f"INSERT INTO {self.TABLE} ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

    def row(self) -> tuple[Any, ...]:
        self.seq += 1
        eid = new_id()
        body = dumps({"kind": "tool_intent", "tool": "create_ticket", "call_id": eid,
                      "arguments": {"title": f"T-{self.seq}"},
                      "idempotency_key": f"create_ticket:{self.seq:024x}:1"}).decode()
        return (eid, self.run_id, self.seq, None, "tool_intent", now_ns() // 1000, body,
                f"{self.seq:064x}")

    def commit_one(self, *rows: tuple[Any, ...]) -> None:
        """One transaction per row, each its own single-row INSERT and COMMIT."""
        c = self.conn
        for row in rows:
            c.execute("BEGIN IMMEDIATE")
            c.execute(self.sql, row)
            c.execute("COMMIT")

    def floor(self, row: tuple[Any, ...]) -> None:
        """One record as agentlab's store writes it, without its Python: the run's
        summary row moved on and the event inserted, in one transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE agentlab_runs SET last_seq = ?, head_hash = ? WHERE run_id = ?",
                  (row[2], row[7], row[1]))
        c.execute(f"INSERT INTO agentlab_events ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        c.execute("COMMIT")


def chained_rows(run_id: str, head: tuple[int, str], n: int) -> list[tuple[Any, ...]]:
    """``n`` tool_intent rows continuing ``run_id``'s chain from ``head`` (seq, hash)."""
    seq, prev = head
    rows = []
    for i in range(n):
        ev = intent_event(run_id, 10_000_000 + i)
        seq += 1
        prev = chain_hash(prev, run_id, seq, str(ev.event_id), None, ev.ts_us, ev.kind, ev.body)
        rows.append((ev.event_id, run_id, seq, None, ev.kind, ev.ts_us, ev.body.decode(), prev))
    return rows


def intent_event(run_id: str, i: int) -> PendingEvent:
    eid = new_id()
    body = dumps({"kind": "tool_intent", "tool": "create_ticket", "call_id": eid,
                  "arguments": {"title": f"T-{i}"},
                  "idempotency_key": f"create_ticket:{i:024x}:1"})
    return PendingEvent(run_id, eid, None, now_ns() // 1000, "tool_intent", body, None,
                        EventStats())


def timed(f: Callable[[], Any]) -> int:
    t0 = time.perf_counter_ns()
    f()
    return time.perf_counter_ns() - t0


def measure(tmp: Path, ddl: list[str], durability: str) -> dict[str, list[int]]:
    """Samples (ns) of the four operations, interleaved."""
    sync = durability.upper()
    store = agentlab.open_store(tmp / f"al-{durability}.db", durability=durability)  # type: ignore[arg-type]
    raw = Raw(tmp / f"al-{durability}.db", ddl, sync)
    writer = writer_for(store)
    out: dict[str, list[int]] = {"al_one": [], "raw_one": [], "al_call": [], "raw_two": [],
                                 "floor": []}

    @agentlab.tool(side_effect=True, scope="tickets:write")
    def create_ticket(title: str) -> dict[str, Any]:
        return {"id": f"SUP-{len(title)}", "status": "created"}

    # One run for the single records (appended straight through the writer), one recorded
    # run for the whole side-effecting calls. Rounds of blocks: in each round every
    # operation runs BLOCK + 1 times in a row (the first not counted), in a random order.
    start = PendingEvent(new_id(), new_id(), None, now_ns() // 1000, "run_started",
                         dumps({"kind": "run_started", "workflow": "bench",
                                "agent_name": "durable"}), None, EventStats())
    floor_start = start._replace(run_id=new_id(), event_id=new_id())
    writer.write_now([start, floor_start])
    each = (ROUNDS + 1) * (BLOCK + 1)
    floor_rows = iter(chained_rows(floor_start.run_id, (1, store.run(floor_start.run_id).head_hash),
                                   each))
    pending = iter([intent_event(start.run_id, i) for i in range(each)])
    rows = iter([raw.row() for _ in range(3 * each)])
    titles = iter([f"ticket {i}" for i in range(each)])
    ops: dict[str, Callable[[], Any]] = {
        "al_one": lambda: writer.write_now([next(pending)]),
        "raw_one": lambda: raw.commit_one(next(rows)),
        "al_call": lambda: create_ticket(next(titles)),
        "raw_two": lambda: raw.commit_one(next(rows), next(rows)),
        "floor": lambda: raw.floor(next(floor_rows)),
    }
    order = random.Random(13)
    grant = allow_all(store, agent="durable-tool")
    with agentlab.record_run("bench", agent="durable-tool", store=store, grants=[grant]) as run:
        for rnd in range(ROUNDS + 1):  # round 0 warms up
            names = list(ops)
            order.shuffle(names)
            for name in names:
                for k in range(BLOCK + 1):
                    took = timed(ops[name])
                    if rnd and k:
                        out[name].append(took)
    acts = store.actions(run.run_id)
    assert len(acts) == each, len(acts)
    assert store.verify(floor_start.run_id)[0].ok  # the floor wrote a real record
    raw.conn.close()
    close_store(store)
    return out


def ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def main() -> None:
    header(f"bench_durable: synchronous durable records, {SAMPLES} samples each (ms)")
    results: dict[str, dict[str, list[int]]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ddl = events_ddl(tmp)
        for durability in ("full", "normal"):
            results[durability] = measure(tmp, ddl, durability)

    rows = []
    for durability, r in results.items():
        for what, al, raw, label in (
            ("one durable record", "al_one", "raw_one", "1 raw INSERT+COMMIT"),
            ("side-effecting call", "al_call", "raw_two", "2 raw INSERT+COMMIT"),
            ("(info) agentlab's SQL, raw", "floor", "raw_one", "1 raw INSERT+COMMIT"),
        ):
            a, b = r[al], r[raw]
            rows.append([
                f"{durability}: {what}", ms(median(a)), ms(quantile(a, 0.9)), label,
                ms(median(b)), ms(quantile(b, 0.9)), f"{median(a) / median(b):.2f}x",
            ])
    print()
    print(table(["synchronous / operation", "agentlab p50", "agentlab p90", "baseline",
                 "baseline p50", "baseline p90", "ratio p50"], rows))
    print()
    for what, al, raw in (("one durable record", "al_one", "raw_one"),
                          ("side-effecting call", "al_call", "raw_two")):
        ratio = median(results["full"][al]) / median(results["full"][raw])
        print(f"target: {what} (FULL) <= {TARGET_RATIO}x raw: {ratio:.2f}x "
              f"-> {verdict(ratio <= TARGET_RATIO)}")


if __name__ == "__main__":
    main()
