"""Runs whose times an importer made up (migration 0009_synthetic_times): their start's
metadata says ``synthetic_times``, the summary row carries the mark, and latency leaves them
out, on SQLite and PostgreSQL, for new imports and for stores made before the column."""

from __future__ import annotations

from sqlalchemy import delete, select

from agentlab.analysis import metrics_summary
from agentlab.query import runs_df
from agentlab.store import SqlStore, open_store
from agentlab.store._schema import events as events_table
from agentlab.store._schema import migrations
from agentlab.store._schema import runs as runs_table

from .helpers import T0_US, RunBuilder

MADE_UP = {"synthetic_times": True, "times_note": "the file records no times"}


def _run(store: SqlStore, *, seconds: float, metadata: dict[str, object] | None = None,
         t0_us: int = T0_US) -> str:
    b = RunBuilder(t0_us=t0_us)
    started = b.started(metadata=metadata) if metadata is not None else b.started()
    ended = b.ended()
    ended = ended._replace(ts_us=t0_us + int(seconds * 1e6))
    store.append([started, b.step(), ended])
    return b.run_id


def _marked(store: SqlStore) -> dict[str, object]:
    with store._db.read() as conn:
        rows = conn.execute(select(runs_table.c.run_id, runs_table.c.synthetic_times))
        return {run_id: mark for run_id, mark in rows}


def test_latency_leaves_made_up_times_out(store: SqlStore) -> None:
    measured = _run(store, seconds=4.0)
    imported = _run(store, seconds=600.0, metadata=MADE_UP, t0_us=T0_US + 1000)
    other_meta = _run(store, seconds=8.0, metadata={"synthetic_times": False, "source": "x"},
                      t0_us=T0_US + 2000)
    assert {k: bool(v) for k, v in _marked(store).items()} == {
        measured: False, imported: True, other_meta: False}

    [row] = metrics_summary(store, by=())
    assert row.runs == row.finished == 3  # the imported run still counts as a run
    assert row.latency_p50_s == 6.0 and row.latency_p95_s is not None
    assert row.latency_p95_s <= 8.0  # 600 s of made-up time would dominate it

    frame = runs_df(store, engine="polars").sort("started_at")
    assert frame["synthetic_times"].to_list() == [False, True, False]
    assert frame["duration_s"].to_list() == [4.0, None, 8.0]


def test_only_made_up_runs_have_no_latency(store: SqlStore) -> None:
    _run(store, seconds=600.0, metadata=MADE_UP)
    [row] = metrics_summary(store, by=())
    assert row.finished == 1 and row.latency_p50_s is None and row.latency_p95_s is None


def test_a_store_made_before_the_column_marks_its_imported_runs(
        store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    store = open_store(url, schema=schema)
    try:
        measured = _run(store, seconds=4.0)
        small = _run(store, seconds=60.0, metadata=MADE_UP, t0_us=T0_US + 1000)
        # Metadata this large is stored in a blob, so the mark is not in the event's text.
        big_meta = {**MADE_UP, "notes": ["x" * 200 for _ in range(20)]}
        big = _run(store, seconds=60.0, metadata=big_meta, t0_us=T0_US + 2000)
        with store._db.read() as conn:
            body = conn.execute(select(events_table.c.body).where(
                events_table.c.run_id == big, events_table.c.kind == "run_started")).scalar_one()
        assert "$refs" in body and "synthetic_times" not in body
        with store.atomic() as conn:  # the store as 0001-0008 left it
            conn.exec_driver_sql(f"ALTER TABLE {runs_table.name} DROP COLUMN synthetic_times")
            conn.execute(delete(migrations).where(migrations.c.name == "0009_synthetic_times"))
    finally:
        store.close()
    store = open_store(url, schema=schema)
    try:
        assert "0009_synthetic_times" in store.applied_migrations()  # ran again
        assert {k: bool(v) for k, v in _marked(store).items()} == {
            measured: False, small: True, big: True}
        [row] = metrics_summary(store, by=())
        assert row.latency_p50_s == 4.0
        assert all(v.ok for v in store.verify())
    finally:
        store.close()
