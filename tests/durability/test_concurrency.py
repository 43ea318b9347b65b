"""Concurrency: 4 processes x 5,000 events into one store, all at once.

Each worker is a separate interpreter (``_conc_child.py`` run with ``sys.executable``);
workers open the store, print READY, and start writing together when the parent releases
them, so their transactions contend from the first moment.

(a) ``recorder``: every worker records its own runs through ``record_run`` (read-only
    tools queued to the background writer, state changes, a few side-effecting tools and
    a ``run.flush()`` every 5-40 events).
(b) ``shared``: all four append to ONE run with ``store.append`` in batches of 1-20
    events, so every batch contends for that run's next sequence number.

Asserted: every worker exits 0 with no exception and no warning from agentlab (the
background writer logs, then retries, a batch it could not store, e.g. "database is
locked"; StoreBusyError would reach ``flush``/``append`` callers as an exception); 0 lost
(the store holds exactly the events each worker reports committed); no duplicate
(run_id, seq); seq is 1..N per run; ``verify()`` is ok for every run. Both variants run on
SQLite and, when AGENTLAB_TEST_PG_URL is set, on PostgreSQL (the ``store_url`` fixture of
tests/conftest.py gives each test its own schema and drops it afterwards).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from agentlab.model import dumps, new_id
from agentlab.store import PendingEvent, SqlStore, normalise_url, open_store
from agentlab.store._schema import events

from ._checks import duplicate_seqs, seq_problems

try:  # ``tests`` is a package only when run with the repository root on sys.path
    from tests.conftest import PG_SKIP, PG_URL, drop_pg_schema
except ModuleNotFoundError:  # pytest's default rootdir-less import: conftest is top-level
    from conftest import PG_SKIP, PG_URL, drop_pg_schema  # type: ignore[no-redef]

WORKERS = 4
EVENTS_PER_WORKER = 5_000
CHILD = Path(__file__).with_name("_conc_child.py")
WORKER_TIMEOUT_S = 300.0


def run_workers(mode: str, url: str, schema: str | None, workdir: Path,
                run_id: str = "") -> tuple[list[dict[str, Any]], float]:
    """Start the workers, release them together, wait; returns (reports, seconds)."""
    procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    try:
        for w in range(WORKERS):
            result = workdir / f"{mode}-{w}.json"
            err = workdir / f"{mode}-{w}.stderr"
            with err.open("wb") as err_fh:
                p = subprocess.Popen(
                    [sys.executable, str(CHILD), mode, url, schema or "-", str(w),
                     str(EVENTS_PER_WORKER), str(1000 + w), str(result), run_id],
                    cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_fh,
                )
            procs.append((p, result, err))
        for w, (p, _result, err) in enumerate(procs):
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != b"READY":
                p.wait(timeout=30)
                result = workdir / f"{mode}-{w}.json"
                errors = json.loads(result.read_text())["errors"] if result.exists() else []
                pytest.fail(f"worker {w} did not open the store (exit {p.returncode}):\n"
                            + "\n".join(errors)
                            + f"\nstderr:\n{err.read_text(errors='replace')[-3000:]}")
        t0 = time.monotonic()
        for p, _result, _err in procs:
            assert p.stdin is not None
            p.stdin.write(b"GO\n")
            p.stdin.flush()
        reports = []
        for w, (p, result, err) in enumerate(procs):
            rc = p.wait(timeout=WORKER_TIMEOUT_S)
            report = json.loads(result.read_text()) if result.exists() else {}
            errors = report.get("errors", ["no report written"])
            assert rc == 0 and not errors, (
                f"worker {w} ({mode}) exited {rc} with exceptions:\n"
                + "\n".join(errors) + f"\nstderr:\n{err.read_text(errors='replace')[-3000:]}"
            )
            assert report["warnings"] == [], (
                f"worker {w} ({mode}): agentlab logged warnings (failed batches, e.g. "
                f"'database is locked'): {report['warnings'][:5]}"
            )
            reports.append(report)
        return reports, time.monotonic() - t0
    finally:
        for p, _result, _err in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for fh in (p.stdin, p.stdout):
                if fh is not None:
                    fh.close()


def assert_all_verify(store: SqlStore) -> None:
    reports = store.verify()
    bad = [r for r in reports if not r.ok]
    assert not bad, f"{len(bad)} of {len(reports)} runs fail verify(): {bad[:5]}"


@pytest.mark.slow
def test_four_recorders_one_store(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    """(a) Four processes, each recording its own runs through the recorder."""
    url, schema = store_url
    if schema is not None:
        # Create the schema first: concurrent first opens of a PostgreSQL schema can fail
        # (see test_concurrent_first_open_of_a_pg_schema). On SQLite the four workers
        # create and migrate the file concurrently.
        open_store(url, schema=schema).close()
    reports, seconds = run_workers("recorder", url, schema, tmp_path)
    store = open_store(url, schema=schema)
    try:
        assert sorted(r["worker"] for r in reports) == list(range(WORKERS))
        for r in reports:
            assert r["committed"] == EVENTS_PER_WORKER, r["committed"]
        expected = {run["run_id"]: run for r in reports for run in r["runs"]}
        assert len(expected) == WORKERS * 10, "run ids collided across workers"

        stored = {s.run_id: s for s in store.runs()}
        assert set(stored) == set(expected), (
            f"runs missing: {sorted(set(expected) - set(stored))[:5]}, "
            f"unexpected: {sorted(set(stored) - set(expected))[:5]}"
        )
        lost = {rid: (run["events"], stored[rid].last_seq) for rid, run in expected.items()
                if stored[rid].last_seq != run["events"]}
        assert not lost, f"runs whose stored event count differs (reported, stored): {lost}"
        not_done = {rid: s.status for rid, s in stored.items() if s.status != "succeeded"}
        assert not not_done, not_done
        with store._db.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(events))
        assert total == WORKERS * EVENTS_PER_WORKER
        assert duplicate_seqs(store) == []
        assert seq_problems(store) == []
        assert_all_verify(store)
        for rid, run in expected.items():
            acts = store.actions(rid)
            assert len(acts) == run["actions"], (rid, len(acts), run["actions"])
            assert all(a.state == "finished" for a in acts), [a.state for a in acts]
    finally:
        store.close()
    print(f"\n(a) {WORKERS}x{EVENTS_PER_WORKER} recorded events ({store.dialect}) "
          f"in {seconds:.2f}s")


@pytest.mark.slow
def test_four_processes_append_to_one_run(store_url: tuple[str, str | None],
                                          tmp_path: Path) -> None:
    """(b) Four processes append to ONE run: every batch contends for its next seq."""
    url, schema = store_url
    store = open_store(url, schema=schema)
    try:
        run_id = new_id()
        start = {"kind": "run_started", "workflow": "concurrency", "agent_name": "shared"}
        store.append([PendingEvent(run_id, new_id(), None, time.time_ns() // 1000,
                                   "run_started", dumps(start))])
        reports, seconds = run_workers("shared", url, schema, tmp_path, run_id)
        end = {"kind": "run_ended", "status": "succeeded", "success": True}
        (ended,) = store.append([PendingEvent(run_id, new_id(), None,
                                              time.time_ns() // 1000, "run_ended",
                                              dumps(end))])

        n = 1 + WORKERS * EVENTS_PER_WORKER
        assert ended.seq == n + 1
        claimed: dict[int, tuple[int, str]] = {}
        for r in reports:
            assert r["committed"] == EVENTS_PER_WORKER, r["committed"]
            for batch in r["batches"]:
                seqs = [seq for _eid, seq in batch]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (
                    f"worker {r['worker']}: one append got non-contiguous seqs {seqs}"
                )
                for eid, seq in batch:
                    assert seq not in claimed, (
                        f"seq {seq} acknowledged to worker {r['worker']} and to worker "
                        f"{claimed[seq][0]}"
                    )
                    claimed[seq] = (r["worker"], eid)
        assert sorted(claimed) == list(range(2, n + 1)), "acknowledged seqs are not 2..N"

        with store._db.engine.connect() as conn:
            rows = conn.execute(select(events.c.seq, events.c.event_id)
                                .where(events.c.run_id == run_id)).all()
        stored = {int(seq): str(eid) for seq, eid in rows}
        assert len(rows) == n + 1, f"{len(rows)} events stored, {n + 1} committed"
        wrong = [(seq, eid) for seq, (_w, eid) in claimed.items() if stored.get(seq) != eid]
        assert not wrong, f"events not stored at the seq append() returned: {wrong[:5]}"
        assert duplicate_seqs(store) == []
        assert seq_problems(store) == []
        summary = store.run(run_id)
        assert summary.last_seq == n + 1 and summary.status == "succeeded"
        # Every 5th event a worker appends is a step, the rest are tool calls: the summary
        # row's counters were kept in step with the contended appends.
        assert summary.tool_calls == WORKERS * EVENTS_PER_WORKER * 4 // 5
        assert summary.step_count == WORKERS * EVENTS_PER_WORKER
        assert_all_verify(store)
    finally:
        store.close()
    print(f"\n(b) {WORKERS}x{EVENTS_PER_WORKER} appends to one run ({store.dialect}) "
          f"in {seconds:.2f}s")


@pytest.mark.postgres
def test_concurrent_first_open_of_a_pg_schema() -> None:
    """Two processes starting at once against a new schema must both open the store.

    ``SqlEngine`` runs ``CREATE SCHEMA IF NOT EXISTS`` for ``open_store(url, schema=...)``.
    That statement is not safe against a concurrent creator: when another session has
    created the schema but not committed yet, it waits on pg_namespace's unique index and
    then fails with UniqueViolation (23505) instead of finding the schema. Here the other
    session is held open deterministically: it creates the schema, we wait until
    ``open_store`` is blocked behind it, then it commits. (With 8 worker processes
    opening a fresh schema at the same moment, about 1 round in 15 hits this.)
    """
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    stmt = f'CREATE SCHEMA IF NOT EXISTS "{schema}"'
    eng = create_engine(normalise_url(PG_URL), poolclass=NullPool)
    outcome: dict[str, BaseException | None] = {}

    def opener() -> None:
        try:
            open_store(PG_URL, schema=schema).close()
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    try:
        with eng.connect() as other, eng.connect() as watch:
            tx = other.begin()
            other.execute(text(stmt))  # created, not committed
            t = threading.Thread(target=opener, daemon=True)
            t.start()
            deadline = time.monotonic() + 30
            waiting = 0
            while t.is_alive() and not waiting and time.monotonic() < deadline:
                time.sleep(0.02)
                waiting = watch.execute(
                    text("SELECT count(*) FROM pg_stat_activity "
                         "WHERE wait_event_type = 'Lock' AND query = :q"), {"q": stmt},
                ).scalar_one()
                watch.rollback()
            assert waiting or not t.is_alive(), "open_store never reached CREATE SCHEMA"
            tx.commit()
            t.join(timeout=30)
        assert not t.is_alive(), "open_store hung"
        err = outcome["error"]
        assert err is None, (
            f"open_store(url, schema=...) failed because another session created the "
            f"schema at the same time: {type(err).__name__}: {str(err).splitlines()[0]}"
        )
    finally:
        eng.dispose()
        drop_pg_schema(schema)
