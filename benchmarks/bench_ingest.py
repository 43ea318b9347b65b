"""Sustained ingest: agentlab ``store.append`` vs raw sqlite3 ``executemany`` of the same rows.

Both sides write 50,000 pre-built events of one run (a ``run_started`` then tool calls) in
batches of 1,000, one commit per batch, into a fresh SQLite file in the same temporary
directory with agentlab's pragmas (WAL, synchronous=FULL, busy_timeout 5 s, secure_delete).

* agentlab: ``store.append(batch)`` of ``PendingEvent`` (bodies made with
  ``agentlab.model.dumps``, stats precomputed as the recorder does), which also assigns
  ``seq``, extends the hash chain and updates the run summary row in the same transaction.
  This is any caller's path (every body parsed and checked); the target applies to it.
* agentlab trusted (for information): ``store.append(batch, trusted=True)``, the path the
  recorder's own background writer takes (its small bodies are not parsed again).
* raw: ``BEGIN IMMEDIATE; executemany(INSERT ...); COMMIT`` of exactly the rows agentlab
  stores (same event ids, seq, bodies and chain hashes, computed before timing) into a
  table created from the DDL agentlab itself emitted (PK event_id, UNIQUE(run_id, seq)).
* raw multi-row (for information): the same rows as multi-row ``INSERT ... VALUES`` of
  500 rows, the statement shape agentlab uses.
* raw + hash chain (for information): raw executemany with seq and the SHA-256 hash
  chain computed inside the timed loop, the floor for any store that chains events.
* recorder end to end: ``record_run`` + 50,000 read-only ``@tool`` calls + the final flush.

Each figure is the median of 3 repeats (after a warm-up), the variants interleaved.

Run: .venv/bin/python benchmarks/bench_ingest.py
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import close_store, events_ddl, header, median, table, verdict

import agentlab
from agentlab.model import EventStats, dumps, new_id, now_ns
from agentlab.store import GENESIS, PendingEvent, chain_hash

N = 50_000
BATCH = 1_000
REPEATS = 3
TARGET_RATIO = 0.8
PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000", "secure_delete=ON")
COLS = "event_id, run_id, seq, parent_id, kind, ts_us, body, hash"
TOOL = EventStats(steps=1, tool_calls=1)


def build_events(n: int) -> list[PendingEvent]:
    run_id = new_id()
    ts = now_ns() // 1000
    evs = [PendingEvent(
        run_id, new_id(), None, ts, "run_started",
        dumps({"kind": "run_started", "workflow": "bench", "agent_name": "ingest"}),
        None, EventStats(),
    )]
    for i in range(1, n):
        eid = new_id()
        body = {
            "kind": "tool_call", "tool": "lookup_account", "call_id": eid,
            "arguments": {"account_id": f"A-{i:06d}"},
            "result": {"account_id": f"A-{i:06d}", "tier": "gold", "open_tickets": i % 7,
                       "region": "eu-west"},
            "duration_ms": 0.0012,
        }
        evs.append(PendingEvent(run_id, eid, None, ts + i, "tool_call", dumps(body), None, TOOL))
    return evs


def raw_rows(evs: list[PendingEvent]) -> list[tuple[Any, ...]]:
    """The rows agentlab stores for ``evs`` (seq and chain hash computed here, untimed)."""
    prev = GENESIS
    rows = []
    for seq, ev in enumerate(evs, start=1):
        prev = chain_hash(prev, ev.run_id, seq, ev.event_id, ev.parent_id, ev.ts_us, ev.kind,
                          ev.body)
        rows.append((ev.event_id, ev.run_id, seq, ev.parent_id, ev.kind, ev.ts_us,
                     ev.body.decode(), prev))
    return rows




def raw_connect(path: Path, ddl: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for p in PRAGMAS:
        conn.execute(f"PRAGMA {p}")
    for stmt in ddl:
        conn.execute(stmt)
    return conn


def run_agentlab(path: Path, evs: list[PendingEvent], trusted: bool = False) -> float:
    store = agentlab.open_store(path)
    t0 = time.perf_counter_ns()
    for i in range(0, len(evs), BATCH):
        store.append(evs[i : i + BATCH], trusted=trusted)
    elapsed = time.perf_counter_ns() - t0
    assert store.run(evs[0].run_id).tool_calls == len(evs) - 1
    close_store(store)
    return elapsed / 1e9


def run_raw(path: Path, ddl: list[str], rows: list[tuple[Any, ...]]) -> float:
    conn = raw_connect(path, ddl)
    sql = f"INSERT INTO agentlab_events ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    t0 = time.perf_counter_ns()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter_ns() - t0
    conn.close()
    return elapsed / 1e9


def run_raw_hashing(path: Path, ddl: list[str], evs: list[PendingEvent]) -> float:
    """Raw executemany, with seq and the hash chain computed inside the timed loop."""
    conn = raw_connect(path, ddl)
    sql = f"INSERT INTO agentlab_events ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    t0 = time.perf_counter_ns()
    prev, seq = GENESIS, 0
    for i in range(0, len(evs), BATCH):
        rows = []
        for ev in evs[i : i + BATCH]:
            seq += 1
            prev = chain_hash(prev, ev.run_id, seq, ev.event_id, ev.parent_id, ev.ts_us,
                              ev.kind, ev.body)
            rows.append((ev.event_id, ev.run_id, seq, ev.parent_id, ev.kind, ev.ts_us,
                         ev.body.decode(), prev))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter_ns() - t0
    conn.close()
    return elapsed / 1e9


def run_raw_multirow(path: Path, ddl: list[str], rows: list[tuple[Any, ...]]) -> float:
    conn = raw_connect(path, ddl)
    one = "(?, ?, ?, ?, ?, ?, ?, ?)"
    head = f"INSERT INTO agentlab_events ({COLS}) VALUES "
    per = 500
    t0 = time.perf_counter_ns()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        batch = rows[i : i + BATCH]
        for j in range(0, len(batch), per):
            chunk = batch[j : j + per]
            conn.execute(head + ", ".join([one] * len(chunk)),
                         tuple(v for r in chunk for v in r))
        conn.execute("COMMIT")
    elapsed = time.perf_counter_ns() - t0
    conn.close()
    return elapsed / 1e9


def lookup_account(account_id: str) -> dict[str, Any]:
    return {"account_id": account_id, "tier": "gold", "open_tickets": 2, "region": "eu-west"}


def run_recorder(path: Path, n: int) -> float:
    store = agentlab.open_store(path)
    tool = agentlab.tool(lookup_account)
    args = [f"A-{i:06d}" for i in range(n)]
    t0 = time.perf_counter_ns()
    with agentlab.record_run("bench", agent="ingest-e2e", store=store) as run:
        for a in args:
            tool(a)
    elapsed = time.perf_counter_ns() - t0  # run exit flushes everything
    assert store.run(run.run_id).tool_calls == n
    close_store(store)
    return elapsed / 1e9


def main() -> None:
    header(f"bench_ingest: {N:,} events in batches of {BATCH:,}, one commit per batch")
    results: dict[str, list[float]] = {
        "agentlab": [], "trusted": [], "raw": [], "raw_multi": [], "raw_hash": [], "e2e": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ddl = events_ddl(tmp)
        # Warm-up: imports, statement caches, page cache of the directory.
        w = build_events(5 * BATCH)
        run_agentlab(tmp / "warm-al.db", w)
        run_raw(tmp / "warm-raw.db", ddl, raw_rows(w))
        run_recorder(tmp / "warm-e2e.db", 5 * BATCH)
        for rep in range(REPEATS):
            evs = build_events(N)
            rows = raw_rows(evs)
            results["agentlab"].append(N / run_agentlab(tmp / f"al-{rep}.db", evs))
            results["trusted"].append(N / run_agentlab(tmp / f"alt-{rep}.db", evs, trusted=True))
            results["raw"].append(N / run_raw(tmp / f"raw-{rep}.db", ddl, rows))
            results["raw_multi"].append(N / run_raw_multirow(tmp / f"rawm-{rep}.db", ddl, rows))
            results["raw_hash"].append(N / run_raw_hashing(tmp / f"rawh-{rep}.db", ddl, evs))
            results["e2e"].append(N / run_recorder(tmp / f"e2e-{rep}.db", N))

    labels = {
        "agentlab": "agentlab store.append",
        "trusted": "agentlab store.append(trusted=True) (info)",
        "raw": "raw sqlite3 executemany (baseline)",
        "raw_multi": "raw sqlite3 multi-row INSERT (info)",
        "raw_hash": "raw executemany + hash chain in the loop (info)",
        "e2e": "recorder end to end (record_run + @tool + flush)",
    }
    base = median(results["raw"])
    rows = []
    for key, label in labels.items():
        v = results[key]
        rows.append([label, f"{median(v):,.0f}", " / ".join(f"{x:,.0f}" for x in v),
                     f"{median(v) / base:.2f}x"])
    print()
    print(table(["path", "events/s (median)", "repeats", "vs raw executemany"], rows))
    ratio = median(results["agentlab"]) / base
    print()
    print(f"target: agentlab store.append >= {TARGET_RATIO}x raw executemany: {ratio:.2f}x "
          f"-> {verdict(ratio >= TARGET_RATIO)}")


if __name__ == "__main__":
    main()
