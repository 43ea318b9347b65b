"""Storage per checkpoint: a ~200 KB state with one key changed per step, 200 steps.

agentlab: inside ``record_run`` the state (200 keys of ~1 KB text plus a nested ``meta``
structure) is set once, then ``run.state[key] = new_value`` changes one key per step.
Each step is one checkpoint event whose state tree shares every unchanged node with the
previous one. Bytes per step are measured two ways over the 200 steps:

* file growth: ``PRAGMA wal_checkpoint(TRUNCATE)`` then ``page_count * page_size``,
  before the first step and after the last (the run is flushed first);
* stored bytes: growth of sum(length(data)) over agentlab_blobs (as stored, compressed
  where that helps) plus sum(length(body)) over agentlab_events.

Baseline, same run and directory, same pragmas: a full-snapshot checkpointer that
stores the whole state as JSON per step in one row (what LangGraph's SQLite checkpointer
does), and for information the same with each snapshot zlib-compressed.

The caller's time per assignment is timed too (target <= 30 us: the caller serialises the
new value once; the tree, its hashes, the redaction scan and the event body are made on the
writer thread), with the following ``run.flush()``, which makes any tree the writer thread
has not made yet before it commits.

Run: .venv/bin/python benchmarks/bench_storage.py  [--profile: cProfile the assignments]
"""

from __future__ import annotations

import cProfile
import pstats
import random
import sqlite3
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from _util import close_store, header, median, quantile, table, verdict

import agentlab
from agentlab.model import dumps

KEYS = 200
STEPS = 200
TEXT_BYTES = 1_000
TARGET_BYTES = 5 * 1024
TARGET_SET_US = 30
SEED = 7


def make_text(rng: random.Random, words: list[str]) -> str:
    out: list[str] = []
    size = 0
    while size < TEXT_BYTES:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:TEXT_BYTES]


def make_state(rng: random.Random, words: list[str]) -> dict[str, Any]:
    state: dict[str, Any] = {f"doc_{i:03d}": make_text(rng, words) for i in range(KEYS)}
    state["meta"] = {
        "customer": {"id": "C-1042", "tier": "gold", "region": "eu-west",
                     "contacts": [{"name": f"contact {i}", "email": f"c{i}@example.com"}
                                  for i in range(5)]},
        "history": [{"step": i, "action": rng.choice(words), "ok": i % 3 != 0,
                     "note": make_text(rng, words)[:80]} for i in range(40)],
        "settings": {"locale": "en-GB", "limits": {"tokens": 8000, "tools": 12}},
    }
    return state


def file_bytes(path: Path) -> dict[str, int]:
    """Checkpoint the WAL into the file, then measure the file and the stored payloads."""
    conn = sqlite3.connect(path)
    try:
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "WAL checkpoint was blocked by a reader"
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        out = {"file": page_count * page_size}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "agentlab_blobs" in tables:
            blobs, blob_bytes, blob_raw = conn.execute(
                "SELECT count(*), coalesce(sum(length(data)), 0), coalesce(sum(size), 0) "
                "FROM agentlab_blobs").fetchone()
            events, body_bytes = conn.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM agentlab_events"
            ).fetchone()
            out.update(blobs=blobs, blob_bytes=blob_bytes, blob_raw=blob_raw, events=events,
                       body_bytes=body_bytes)
        else:
            out["payload"] = conn.execute(
                "SELECT coalesce(sum(length(checkpoint)), 0) FROM snapshots").fetchone()[0]
        return out
    finally:
        conn.close()


def run_agentlab(path: Path, initial: dict[str, Any], changes: list[tuple[str, str]],
                 profile: bool = False
                 ) -> tuple[dict[str, int], dict[str, int], list[int], int]:
    store = agentlab.open_store(path)
    set_ns: list[int] = []
    with agentlab.record_run("bench", agent="storage", store=store) as run:
        run.state.update(initial)
        run.flush()
        before = file_bytes(path)
        prof = cProfile.Profile() if profile else None
        if prof is not None:
            prof.enable()
        for key, value in changes:
            t0 = time.perf_counter_ns()
            run.state[key] = value
            set_ns.append(time.perf_counter_ns() - t0)
        if prof is not None:
            prof.disable()
            print(f"cProfile of the {STEPS} assignments (times inflated by the profiler):")
            pstats.Stats(prof).sort_stats("tottime").print_stats(6)
        t0 = time.perf_counter_ns()
        run.flush()
        flush_ns = time.perf_counter_ns() - t0
        after = file_bytes(path)
        final = run.state.snapshot()
    cps = store.checkpoints(run.run_id)
    assert len(cps) == STEPS + 1, len(cps)
    assert store.state_at(run.run_id) == final, "stored state differs from the run's"
    close_store(store)
    return before, after, set_ns, flush_ns


def run_snapshots(path: Path, initial: dict[str, Any], changes: list[tuple[str, str]],
                  compress: bool) -> tuple[dict[str, int], dict[str, int]]:
    conn = sqlite3.connect(path, isolation_level=None)
    for p in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000", "secure_delete=ON"):
        conn.execute(f"PRAGMA {p}")
    conn.execute("CREATE TABLE snapshots (thread_id TEXT NOT NULL, checkpoint_id TEXT NOT NULL, "
                 "checkpoint BLOB NOT NULL, PRIMARY KEY (thread_id, checkpoint_id))")
    state = dict(initial)

    def put(i: int) -> None:
        data = dumps(state)
        conn.execute("INSERT INTO snapshots VALUES (?, ?, ?)",
                     ("thread-1", f"{i:08d}", zlib.compress(data, 6) if compress else data))

    put(0)
    before = file_bytes(path)
    for i, (key, value) in enumerate(changes, start=1):
        state[key] = value
        put(i)
    after = file_bytes(path)
    conn.close()
    return before, after


def kb(n: float) -> str:
    return f"{n / 1024:.1f}"


def main() -> None:
    rng = random.Random(SEED)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(2_000)]
    initial = make_state(rng, words)
    keys = [k for k in initial if k.startswith("doc_")]
    changes = [(rng.choice(keys), make_text(rng, words)) for _ in range(STEPS)]
    state_size = len(dumps(initial))
    header(f"bench_storage: {state_size / 1024:.0f} KB state ({KEYS} text keys + nested meta), "
           f"one key changed per step, {STEPS} steps")

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        b, a, set_ns, flush_ns = run_agentlab(tmp / "agentlab.db", initial, changes,
                                    profile="--profile" in sys.argv)
        fb, fa = run_snapshots(tmp / "full.db", initial, changes, compress=False)
        zb, za = run_snapshots(tmp / "full-zlib.db", initial, changes, compress=True)

    al_file = (a["file"] - b["file"]) / STEPS
    al_payload = (a["blob_bytes"] - b["blob_bytes"] + a["body_bytes"] - b["body_bytes"]) / STEPS
    rows = [
        ["agentlab (content-addressed checkpoints)", kb(al_file), kb(al_payload)],
        ["full JSON snapshot per step (baseline)", kb((fa["file"] - fb["file"]) / STEPS),
         kb((fa["payload"] - fb["payload"]) / STEPS)],
        ["full snapshot, zlib-compressed (info)", kb((za["file"] - zb["file"]) / STEPS),
         kb((za["payload"] - zb["payload"]) / STEPS)],
    ]
    print()
    print(table(["layout", "KB/step (file growth)", "KB/step (stored payload bytes)"], rows))
    print()
    print("agentlab detail per step: "
          f"{(a['blobs'] - b['blobs']) / STEPS:.1f} new blobs, "
          f"{kb((a['blob_bytes'] - b['blob_bytes']) / STEPS)} KB blob data as stored "
          f"({kb((a['blob_raw'] - b['blob_raw']) / STEPS)} KB before compression), "
          f"{kb((a['body_bytes'] - b['body_bytes']) / STEPS)} KB event body; "
          f"initial state: {kb(b['file'])} KB file, {b['blobs']} blobs; "
          f"caller time per run.state[key] = value: median {median(set_ns) / 1000:.0f} us "
          f"(p99 {quantile(set_ns, 0.99) / 1000:.0f} us); then run.flush() "
          f"{flush_ns / 1e6:.1f} ms")
    print(f"full snapshot ratio (file growth): "
          f"{(fa['file'] - fb['file']) / max(a['file'] - b['file'], 1):.0f}x agentlab")
    print()
    print(f"target: <= {TARGET_BYTES / 1024:.0f} KB per step (file growth): {kb(al_file)} KB "
          f"-> {verdict(al_file <= TARGET_BYTES)}")
    set_us = median(set_ns) / 1000
    print(f"target: <= {TARGET_SET_US} us on the caller per run.state[key] = value: "
          f"{set_us:.0f} us -> {verdict(set_us <= TARGET_SET_US)}")


if __name__ == "__main__":
    main()
