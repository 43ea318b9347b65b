"""Durable side-effect records: agentlab's synchronous commit vs a raw sqlite3 commit.

A side-effecting tool pays one durable record for its intent before it runs and one for
its result after. Measured here, in the same directory and process, interleaved call by
call so both sides see the same disk:

* one durable record: ``BackgroundWriter.write_now([event])`` of one pre-built
  ``tool_intent`` event (the recorder's ``writer_for(store)``, queue empty) vs one raw
  sqlite3 ``BEGIN IMMEDIATE; INSERT (one row); COMMIT`` into a table made from agentlab's
  own DDL (PK event_id, UNIQUE(run_id, seq)) with the same pragmas;
* one whole side-effecting call: a ``@tool(side_effect=True)`` trivial function inside
  ``record_run`` (intent + result = 2 durable records) vs 2 raw single-row commits.

Both with ``synchronous=FULL`` (agentlab's default; the target applies here) and, for
information, with ``durability="normal"`` vs raw ``synchronous=NORMAL``. Medians of 300
samples each after 20 warm-up samples. Each sample runs the four operations in a random
(seeded) order: a commit costs more right after another file's fsync on this disk, and a
fixed order charged that to whichever side always came second.

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
from agentlab.store import PendingEvent
from agentlab.testing import allow_all

SAMPLES = 300
WARMUP = 20
TARGET_RATIO = 1.2
COLS = "event_id, run_id, seq, parent_id, kind, ts_us, body, hash"




class Raw:
    """Single-row INSERT + COMMIT into a copy of agentlab's events table."""

    def __init__(self, path: Path, ddl: list[str], synchronous: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for p in ("journal_mode=WAL", f"synchronous={synchronous}", "busy_timeout=5000",
                  "secure_delete=ON"):
            self.conn.execute(f"PRAGMA {p}")
        for stmt in ddl:
            self.conn.execute(stmt)
        self.run_id = new_id()
        self.seq = 0
        self.sql = f"INSERT INTO agentlab_events ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

    def row(self) -> tuple[Any, ...]:
        self.seq += 1
        eid = new_id()
        body = dumps({"kind": "tool_intent", "tool": "create_ticket", "call_id": eid,
                      "arguments": {"title": f"T-{self.seq}"},
                      "idempotency_key": f"create_ticket:{self.seq:024x}:1"}).decode()
        return (eid, self.run_id, self.seq, None, "tool_intent", now_ns() // 1000, body,
                f"{self.seq:064x}")

    def commit_one(self, row: tuple[Any, ...]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute(self.sql, row)
        c.execute("COMMIT")


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
    raw = Raw(tmp / f"raw-{durability}.db", ddl, sync)
    writer = writer_for(store)
    out: dict[str, list[int]] = {"al_one": [], "raw_one": [], "al_call": [], "raw_two": []}

    @agentlab.tool(side_effect=True, scope="tickets:write")
    def create_ticket(title: str) -> dict[str, Any]:
        return {"id": f"SUP-{len(title)}", "status": "created"}

    # One run for the single records (appended straight through the writer), one recorded
    # run for the whole side-effecting calls; the four operations in a random order.
    start = PendingEvent(new_id(), new_id(), None, now_ns() // 1000, "run_started",
                         dumps({"kind": "run_started", "workflow": "bench",
                                "agent_name": "durable"}), None, EventStats())
    writer.write_now([start])
    pending = [intent_event(start.run_id, i) for i in range(WARMUP + SAMPLES)]
    rows = [raw.row() for _ in range(3 * (WARMUP + SAMPLES))]
    order = random.Random(13)
    grant = allow_all(store, agent="durable-tool")
    with agentlab.record_run("bench", agent="durable-tool", store=store, grants=[grant]) as run:
        for i in range(WARMUP + SAMPLES):
            ev, title = pending[i], f"ticket {i}"
            r0, r1, r2 = rows[3 * i : 3 * i + 3]
            ops: list[tuple[str, Callable[[], Any]]] = [
                ("al_one", lambda ev=ev: writer.write_now([ev])),  # type: ignore[misc]
                ("raw_one", lambda r0=r0: raw.commit_one(r0)),  # type: ignore[misc]
                ("al_call", lambda title=title: create_ticket(title)),  # type: ignore[misc]
                ("raw_two", lambda r1=r1, r2=r2: (raw.commit_one(r1),  # type: ignore[misc]
                                                   raw.commit_one(r2))),
            ]
            order.shuffle(ops)
            for name, op in ops:
                took = timed(op)
                if i >= WARMUP:
                    out[name].append(took)
    acts = store.actions(run.run_id)
    assert len(acts) == WARMUP + SAMPLES, len(acts)
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
