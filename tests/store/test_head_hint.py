"""The append path's memory of where each run's chain ended (``heads``): a hint that spares
reading the run's head, and that a stale value can never turn into a broken chain."""

from __future__ import annotations

import pytest

from agentlab.model import dumps
from agentlab.store import GENESIS, SqlStore, chain_hash

from .helpers import RunBuilder


def _chain_ok(store: SqlStore, run_id: str, n: int) -> None:
    lines = list(store.raw_events(run_id))
    assert [ln.seq for ln in lines] == list(range(1, n + 1))
    prev = GENESIS
    for ln in lines:
        prev = chain_hash(prev, ln.run_id, ln.seq, ln.id, ln.parent_id, ln.ts_us,
                          ln.body["kind"], dumps(ln.body))
        assert ln.hash == prev
    summary = store.run(run_id)
    assert (summary.last_seq, summary.head_hash) == (n, prev)
    assert store.verify(run_id)[0].ok


def test_two_writers_taking_turns_on_one_run_keep_one_chain(store: SqlStore,
                                                            second_store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started()])
    for i in range(6):  # each writer's hint is stale every time it comes back
        (store if i % 2 else second_store).append([b.llm(), b.tool()])
    store.append([b.ended()])
    _chain_ok(store, b.run_id, 14)
    assert store.run(b.run_id).llm_calls == 6
    assert store.run(b.run_id).tool_calls == 6


def test_a_rolled_back_append_leaves_no_trace_in_the_chain(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(), b.llm()])
    with pytest.raises(RuntimeError), store.atomic():
        store.append([b.tool()])  # remembered as the head, then rolled back
        raise RuntimeError("the caller's transaction fails")
    assert store.run(b.run_id).last_seq == 2
    got = store.append([b.step(), b.ended()])
    assert [a.seq for a in got] == [3, 4]
    _chain_ok(store, b.run_id, 4)


def test_a_hint_for_a_run_that_is_gone_is_not_trusted(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started()])
    with store.atomic() as conn:  # the run disappears behind the hint's back
        conn.exec_driver_sql("DELETE FROM agentlab_events")
        conn.exec_driver_sql("DELETE FROM agentlab_runs")
    with pytest.raises(Exception, match="does not exist"):
        store.append([b.llm()])
    fresh = RunBuilder(b.run_id)
    store.append([fresh.started(), fresh.llm()])
    _chain_ok(store, b.run_id, 2)


@pytest.mark.sqlite_only
def test_the_next_append_to_a_run_does_not_read_its_head(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started()])
    statements: list[str] = []
    raw = store._db._kept_write_conn().connection.driver_connection
    raw.set_trace_callback(statements.append)
    try:
        store.append([b.llm()])
    finally:
        raw.set_trace_callback(None)
    assert not [s for s in statements if s.startswith("SELECT last_seq")], statements
    assert [s.split()[0] for s in statements] == ["BEGIN", "UPDATE", "INSERT", "COMMIT"]
    _chain_ok(store, b.run_id, 2)
