"""Reads that must cost what they return, not what the store holds (migration
0008_scale_indexes): the newest runs of a task (explain's siblings) are read along
(task_id, started_us), the newest runs of a status (``agentlab runs --status``) along
(status, started_us), and metrics over a time window join the investigations from the
window's runs. Checked in the plan each backend makes for the statement agentlab sends
(EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL after ANALYZE), and in a store made
before the migration, which gains the indexes when opened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, inspect, text

import agentlab.store._columns as columns_mod
from agentlab.analysis import metrics_summary
from agentlab.store import RunFilter, SqlStore, open_store
from agentlab.store._read import runs_query
from agentlab.store._schema import migrations
from agentlab.store._schema import runs as runs_table

from .helpers import T0_US, RunBuilder

RUNS = 3000
TASKS = 100
SECOND = 1_000_000


def _fill(store: SqlStore) -> list[str]:
    """3,000 runs one second apart over 100 tasks, 1 % failed, and a concluded investigation
    of every failed run; a PostgreSQL store is then analysed, as autovacuum would."""
    events = []
    ids = []
    for i in range(RUNS):
        b = RunBuilder(t0_us=T0_US + i * SECOND)
        ids.append(b.run_id)
        failed = i % 100 == 7
        events += [b.started(task_id=f"task-{i % TASKS}"),
                   b.ended("failed" if failed else "succeeded", success=not failed)]
    store.append(events)
    for i in range(7, RUNS, 100):
        store.open_investigation(ids[i], by="ann", at_us=T0_US + i * SECOND + 60 * SECOND)
        store.conclude_investigation(ids[i], by="ann", at_us=T0_US + i * SECOND + 90 * SECOND,
                                     culprit_seq=1, note=None)
    if store.dialect == "postgresql":
        with store.atomic() as conn:
            conn.execute(text("ANALYZE"))
    return ids


def _plan(store: SqlStore, sql: str, params: Any = None) -> str:
    """The plan of a statement, as one text."""
    with store._db.read() as conn:
        cur: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            cur.execute(prefix + sql, tuple(params or ()))
            return "\n".join(" ".join(str(c) for c in row) for row in cur.fetchall())
        finally:
            cur.close()


def _runs_plan(store: SqlStore, where: RunFilter) -> str:
    with store._db.read() as conn:
        sql = str(runs_query(where).compile(dialect=conn.dialect,
                                            compile_kwargs={"literal_binds": True}))
    return _plan(store, sql)


def test_the_newest_runs_of_a_task_are_read_along_its_index(store: SqlStore) -> None:
    _fill(store)
    # explain's sibling search: a task's newest successful runs
    where = RunFilter(task_id="task-3", status="succeeded", run_kind="run", limit=5)
    plan = _runs_plan(store, where)
    assert "ix_agentlab_runs_task_started" in plan, plan
    found = store.runs(where)
    assert [r.started_at for r in found] == sorted((r.started_at for r in found), reverse=True)
    assert len(found) == 5 and {r.task_id for r in found} == {"task-3"}
    assert found[0].started_at.timestamp() * SECOND == T0_US + (RUNS - 97) * SECOND
    # a task alone too (`agentlab runs --task`)
    assert "ix_agentlab_runs_task_started" in _runs_plan(store, RunFilter(task_id="task-3",
                                                                          limit=50))


def test_the_newest_runs_of_a_status_are_read_along_its_index(store: SqlStore) -> None:
    _fill(store)
    where = RunFilter(status="failed", limit=50)
    plan = _runs_plan(store, where)
    assert "ix_agentlab_runs_status_started" in plan, plan
    found = store.runs(where)
    assert len(found) == RUNS // 100 and {r.status for r in found} == {"failed"}
    # abandoned runs are marked running: the same index finds them
    assert "ix_agentlab_runs_status_started" in _runs_plan(store, RunFilter(status="abandoned",
                                                                            limit=50))


@pytest.mark.sqlite_only
def test_metrics_over_a_window_join_investigations_from_the_windows_runs(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _fill(store)
    sent: list[tuple[str, list[Any]]] = []
    fetch = columns_mod._fetch

    def spy(s: SqlStore, statements: Any) -> Any:
        sent.extend((sql, list(params)) for sql, params in statements)
        return fetch(s, statements)

    monkeypatch.setattr(columns_mod, "_fetch", spy)
    since = T0_US + (RUNS - 500) * SECOND  # the last 500 runs: 5 failed, 5 investigated
    [row] = metrics_summary(store, by=(), since=datetime.fromtimestamp(since / SECOND, UTC))
    assert row.runs == 500 and row.explained == 5
    inv_sql, params = next((sql, p) for sql, p in sent if "agentlab_investigations" in sql)
    plan = _plan(store, inv_sql, params).splitlines()
    # the window's runs first (the started_us index), then each one's investigations
    assert "ix_agentlab_runs_started" in plan[0] or "workflow_started" in plan[0], plan
    assert any("ix_agentlab_investigations_run" in line for line in plan[1:]), plan
    # without a window the investigations lead: there are far fewer of them than runs
    sent.clear()
    [everything] = metrics_summary(store, by=())
    assert everything.runs == RUNS and everything.explained == len(ids) // 100
    inv_sql, params = next((sql, p) for sql, p in sent if "agentlab_investigations" in sql)
    assert "SCAN i" in _plan(store, inv_sql, params).splitlines()[0]


def test_a_store_made_before_the_migration_gains_the_indexes(
        store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    store = open_store(url, schema=schema)
    try:
        with store.atomic() as conn:  # the store as 0001-0006 left it
            conn.exec_driver_sql("DROP INDEX ix_agentlab_runs_task_started")
            conn.exec_driver_sql("DROP INDEX ix_agentlab_runs_status_started")
            conn.exec_driver_sql(f"CREATE INDEX ix_agentlab_runs_task ON {runs_table.name} "
                                 "(task_id)")
            conn.execute(delete(migrations).where(migrations.c.name == "0008_scale_indexes"))
    finally:
        store.close()
    store = open_store(url, schema=schema)
    try:
        assert "0008_scale_indexes" in store.applied_migrations()
        with store._db.read() as conn:
            indexes = {ix["name"]: ix["column_names"]
                       for ix in inspect(conn).get_indexes(runs_table.name)}
        assert indexes["ix_agentlab_runs_task_started"] == ["task_id", "started_us"]
        assert indexes["ix_agentlab_runs_status_started"] == ["status", "started_us"]
        assert "ix_agentlab_runs_task" not in indexes
    finally:
        store.close()
