"""The store contract (agentlab/store/_base.py), checked on every backend.

Every test here takes the ``store`` fixture, which tests/conftest.py runs on SQLite and, when
AGENTLAB_TEST_PG_URL is set, on PostgreSQL (each test in its own schema).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import string
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from agentlab.errors import (
    AgentlabError,
    AmbiguousIdError,
    ImportFormatError,
    PayloadTooLargeError,
    RecordingError,
    RunNotFoundError,
    SchemaError,
)
from agentlab.model import FORMAT_VERSION, dumps, dumps_ordered, loads
from agentlab.store import GENESIS, RunFilter, SqlStore, chain_hash, open_store
from agentlab.store._read import fetch_blobs
from agentlab.store._schema import blobs, checkpoints, events, migrations, runs
from agentlab.store._write import decode_blob

from .helpers import RunBuilder, blob_bytes, blob_count, drop_pg_schema, new_run_id

# -- helpers ------------------------------------------------------------------------------


def _count(store: SqlStore, table: Any) -> int:
    with store._db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)))


def _nothing_written(store: SqlStore) -> None:
    for table in (runs, events, blobs, checkpoints):
        assert _count(store, table) == 0, f"{table.name} is not empty"


def _rand_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _stored_seqs(store: SqlStore, run_id: str) -> list[int]:
    with store._db.read() as conn:
        return list(conn.scalars(
            select(events.c.seq).where(events.c.run_id == run_id).order_by(events.c.seq)
        ))


@pytest.fixture
def other_store(store_url: tuple[str, str | None], tmp_path: Path) -> Iterator[SqlStore]:
    """A second, empty store on the same backend as ``store``."""
    url, schema = store_url
    if schema is None:
        s = open_store(tmp_path / "other.db")
        try:
            yield s
        finally:
            s.close()
        return
    other = f"t_{uuid.uuid4().hex[:12]}"
    s = open_store(url, schema=other)
    try:
        yield s
    finally:
        s.close()
        drop_pg_schema(other)


def _full_run(rng: random.Random | None = None) -> tuple[RunBuilder, list[Any]]:
    """A run with every kind, big payloads in $refs and two checkpoints."""
    rng = rng or random.Random(7)
    b = RunBuilder()
    big = _rand_text(rng, 6000)
    state1 = {"notes": _rand_text(rng, 2000), "n": 1, "items": list(range(100))}
    state2 = {**state1, "n": 2, "extra": {"deep": [_rand_text(rng, 300) for _ in range(40)]}}
    intent = b.intent(arguments={"to": "a@b.c", "body": _rand_text(rng, 900)})
    evs = [
        b.started(task_input={"q": _rand_text(rng, 3000)}, phase="act", task_id="t-1"),
        b.llm(response=big, messages=[{"role": "user", "content": "hi"}]),
        b.checkpoint(state1),
        b.step("plan"),
        intent,
        b.tool(call_id="c1", intent_id=intent.event_id, result={"sent": True}),
        b.retry(),
        b.error(),
        b.llm(status="error", cost_usd=0.5, input_tokens=3, output_tokens=0),
        b.checkpoint(state2, writes=["n", "extra"]),
        b.ended("succeeded", success=True, score=0.75),
    ]
    return b, evs


# -- invariant 1: seq from 1, no gaps, unique -----------------------------------------------


def test_seq_starts_at_one_without_gaps_across_appends(store: SqlStore) -> None:
    b = RunBuilder()
    got = store.append([b.started()])
    got += store.append([b.llm(), b.tool()])
    got += store.append([b.step()])
    got += store.append([b.llm() for _ in range(5)])
    got += store.append([b.ended()])
    assert [a.seq for a in got] == list(range(1, 11))
    assert all(a.run_id == b.run_id for a in got)
    assert _stored_seqs(store, b.run_id) == list(range(1, 11))
    assert [e.seq for e in store.events(b.run_id)] == list(range(1, 11))
    assert store.run(b.run_id).last_seq == 10
    # each returned hash is the chain value over the previous one
    prev = GENESIS
    for line in store.raw_events(b.run_id):
        prev = chain_hash(prev, line.run_id, line.seq, line.id, line.parent_id, line.ts_us,
                          line.body["kind"], dumps(line.body))
        assert line.hash == prev
    assert [a.hash for a in got] == [ln.hash for ln in store.raw_events(b.run_id)]
    assert store.run(b.run_id).head_hash == got[-1].hash


def test_seq_is_per_run_in_a_mixed_batch(store: SqlStore) -> None:
    a, b = RunBuilder(), RunBuilder()
    got = store.append([a.started(), b.started(), a.llm(), b.llm(), b.tool(), a.ended()])
    by_run: dict[str, list[int]] = {}
    for x in got:
        by_run.setdefault(x.run_id, []).append(x.seq)
    assert by_run == {a.run_id: [1, 2, 3], b.run_id: [1, 2, 3]}
    assert store.verify(a.run_id)[0].ok and store.verify(b.run_id)[0].ok


def test_run_seq_pair_is_unique_in_the_database(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(), b.llm()])
    with pytest.raises(SqlIntegrityError), store._db.engine.begin() as conn:
        conn.execute(events.insert().values(
            event_id=str(uuid.uuid4()), run_id=b.run_id, seq=2, parent_id=None,
            kind="step", ts_us=1, body='{"kind":"step","name":"x"}', hash="0" * 64,
        ))
    assert _stored_seqs(store, b.run_id) == [1, 2]


def test_concurrent_writers_get_unique_gapless_seqs(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started()])
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(n):
                store.append([b.llm(), b.step()])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(10,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _stored_seqs(store, b.run_id) == list(range(1, 1 + 1 + 6 * 10 * 2))
    s = store.run(b.run_id)
    assert s.last_seq == 121 and s.llm_calls == 60 and s.step_count == 120
    assert store.verify(b.run_id)[0].ok


# -- invariant 2: idempotent, all or nothing -------------------------------------------------


def test_append_is_idempotent_on_event_ids(store: SqlStore) -> None:
    b = RunBuilder()
    batch = [b.started(), b.llm(response="x" * 5000), b.checkpoint({"k": "v" * 400}), b.tool()]
    first = store.append(batch)
    assert [a.seq for a in first] == [1, 2, 3, 4]
    before = (store.run(b.run_id), _count(store, events), blob_count(store),
              _count(store, checkpoints))
    assert store.append(batch) == []
    assert store.append(batch[1:3]) == []
    after = (store.run(b.run_id), _count(store, events), blob_count(store),
             _count(store, checkpoints))
    assert after == before
    # a batch mixing stored and new events writes only the new ones, numbered on
    new = b.step()
    got = store.append([batch[0], new, batch[3]])
    assert [(a.event_id, a.seq) for a in got] == [(new.event_id, 5)]
    assert store.run(b.run_id).step_count == 3  # llm + tool + the new step
    assert store.verify(b.run_id)[0].ok


def test_duplicate_event_id_within_one_batch_is_written_once(store: SqlStore) -> None:
    b = RunBuilder()
    start, llm = b.started(), b.llm()
    got = store.append([start, llm, llm])
    assert [a.seq for a in got] == [1, 2]
    assert store.run(b.run_id).llm_calls == 1


def test_concurrent_duplicate_append_is_a_noop(store: SqlStore) -> None:
    """Two writers retrying the same batch at once: the events are stored once, no error.

    Both writers are held behind a third transaction that has the run locked, so both read
    "none of these ids is stored" before either can write.
    """
    b = RunBuilder()
    store.append([b.started()])
    batch = [b.llm(), b.tool()]
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(store.append(batch))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    with store.atomic() as conn:
        conn.execute(select(runs.c.last_seq).where(runs.c.run_id == b.run_id).with_for_update())
        for t in threads:
            t.start()
        time.sleep(1.0)
    for t in threads:
        t.join()
    assert errors == [], f"a concurrent re-append failed instead of being a no-op: {errors!r}"
    assert sorted(len(r) for r in results) == [0, 2]
    assert _stored_seqs(store, b.run_id) == [1, 2, 3]
    assert store.verify(b.run_id)[0].ok


def test_batch_is_all_or_nothing(store: SqlStore) -> None:
    a = RunBuilder()
    ghost = RunBuilder()
    batch = [
        a.started(task_input={"big": "q" * 5000}),
        a.llm(response="r" * 8000),
        a.checkpoint({"s": "z" * 3000, "t": list(range(300))}),
        ghost.tool(),  # a run that never started
    ]
    with pytest.raises(RecordingError, match="run_started"):
        store.append(batch)
    _nothing_written(store)
    with pytest.raises(RunNotFoundError):
        store.run(a.run_id)


def test_failed_batch_leaves_an_existing_run_untouched(store: SqlStore) -> None:
    a = RunBuilder()
    store.append([a.started(), a.llm()])
    before = (store.run(a.run_id), _count(store, events), blob_count(store))
    with pytest.raises(RecordingError, match="already started"):
        store.append([a.llm(response="y" * 9000), a.checkpoint({"k": "v" * 600}), a.started()])
    assert (store.run(a.run_id), _count(store, events), blob_count(store)) == before
    assert _count(store, checkpoints) == 0
    assert store.verify(a.run_id)[0].ok


# -- invariant 5: the summary row ------------------------------------------------------------


def test_summary_counters(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(agent_version="1.2", task_id="T7", owner="ann", team="core",
                            phase="draft")])
    s = store.run(b.run_id)
    assert (s.status, s.success, s.score, s.ended_at) == ("running", None, None, None)
    assert (s.step_count, s.llm_calls, s.tool_calls, s.error_count, s.retry_count) == (0,) * 5
    assert (s.agent_version, s.task_id, s.owner, s.team, s.phase) == (
        "1.2", "T7", "ann", "core", "draft")
    store.append([
        b.llm(input_tokens=100, output_tokens=20, cost_usd=0.25),
        b.llm(input_tokens=7, output_tokens=3, cost_usd=0.125, status="error"),
        b.tool(cost_usd=0.5),
        b.tool(status="error"),
    ])
    store.append([b.step(), b.step(status="error"), b.error(), b.retry(), b.retry(attempt=2),
                  b.checkpoint({"a": 1}), b.intent()])
    s = store.run(b.run_id)
    assert s.step_count == 6          # 2 llm + 2 tool + 2 step
    assert s.llm_calls == 2
    assert s.tool_calls == 2
    assert s.error_count == 3         # failed llm + failed tool + error event (steps don't count)
    assert s.retry_count == 2
    assert s.cost_usd == pytest.approx(0.875)
    assert (s.input_tokens, s.output_tokens) == (107, 23)
    assert s.status == "running" and s.ended_at is None
    end = b.ended("failed", success=False, score=0.25)
    store.append([end])
    s = store.run(b.run_id)
    assert (s.status, s.success, s.score) == ("failed", False, 0.25)
    assert s.ended_at is not None
    assert round(s.ended_at.timestamp() * 1_000_000) == end.ts_us
    assert s.last_seq == 13
    assert store.verify(b.run_id)[0].ok
    assert store.runs(RunFilter(status="failed"))[0].run_id == b.run_id


def test_summary_after_success(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(), b.llm(cost_usd=0.0), b.ended("succeeded", success=True,
                                                            score=1.0)])
    s = store.run(b.run_id)
    assert (s.status, s.success, s.score, s.llm_calls, s.step_count) == (
        "succeeded", True, 1.0, 1, 1)
    assert s.duration_s is not None and s.duration_s >= 0


# -- payloads, blobs ---------------------------------------------------------------------


def test_large_payload_fields_move_to_blobs(store: SqlStore) -> None:
    rng = random.Random(1)
    b = RunBuilder()
    response = {"text": _rand_text(rng, 4000), "n": [1, 2, 3]}
    messages = [{"role": "user", "content": _rand_text(rng, 3000)}]
    small = b.llm(response="short")
    # over 2 KB in all, but no payload field over 512 bytes: stays inline
    wide = b.tool(arguments={"a": "x" * 450}, result="y" * 450, grant="g" * 1500)
    assert len(wide.body) > 2048
    big = b.llm(response=response, messages=messages)
    store.append([b.started(), small, wide, big])
    raw = {ln.id: ln.body for ln in store.raw_events(b.run_id)}
    assert "$refs" not in raw[small.event_id] and raw[small.event_id]["response"] == "short"
    assert "$refs" not in raw[wide.event_id] and raw[wide.event_id]["result"] == "y" * 450
    refs = raw[big.event_id]["$refs"]
    assert set(refs) == {"response", "messages"}
    assert "response" not in raw[big.event_id] and "messages" not in raw[big.event_id]
    assert raw[big.event_id]["model"] == "m-1"  # the small fields stay inline
    with store._db.read() as conn:
        assert set(fetch_blobs(conn, list(refs.values()))) == set(refs.values())
    resolved = {e.id: e for e in store.events(b.run_id)}
    assert resolved[big.event_id].response == response
    assert resolved[big.event_id].messages == messages
    assert resolved[small.event_id].response == "short"
    assert store.value(refs["response"]) == response
    assert store.verify(b.run_id)[0].ok


def test_blobs_are_content_addressed(store: SqlStore) -> None:
    rng = random.Random(2)
    payload = {"doc": _rand_text(rng, 20_000)}
    a, b = RunBuilder(), RunBuilder()
    store.append([a.started(), a.llm(response=payload)])
    n = blob_count(store)
    size = blob_bytes(store)
    store.append([a.llm(response=payload)])
    store.append([b.started(), b.tool(result=payload)])
    assert blob_count(store) == n
    assert blob_bytes(store) == size
    refs = [ln.body["$refs"] for r in (a, b) for ln in store.raw_events(r.run_id)
            if "$refs" in ln.body]
    assert len(refs) == 3 and refs[0]["response"] == refs[1]["response"] == refs[2]["result"]
    # every key is the SHA-256 of the blob's bytes, and those bytes are canonical: a payload's
    # nodes in the stored form (its own key order), with no whitespace
    with store._db.read() as conn:
        for h, codec, data, stored_size in conn.execute(
            select(blobs.c.hash, blobs.c.codec, blobs.c.data, blobs.c.size)
        ):
            raw = decode_blob(codec, data)
            assert hashlib.sha256(raw).hexdigest() == h
            assert dumps_ordered(loads(raw)) == raw
            assert stored_size == len(raw)


def test_events_kind_filter(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(), b.llm(), b.tool(), b.llm(), b.ended()])
    assert [e.kind for e in store.events(b.run_id, kinds=["llm_call"])] == ["llm_call"] * 2
    assert [e.seq for e in store.events(b.run_id, kinds=["tool_call", "run_ended"])] == [3, 5]
    assert store.events(b.run_id, kinds=[]) == []


# -- checkpoints and state ----------------------------------------------------------------


def test_checkpoints_and_state_at(store: SqlStore) -> None:
    rng = random.Random(3)
    b = RunBuilder()
    s1 = {"plan": ["a", "b"], "count": 1}
    s2 = {**s1, "count": 2, "doc": _rand_text(rng, 5000)}
    s3 = {f"k{i}": {"v": i, "pad": _rand_text(rng, 100)} for i in range(80)}
    s3["count"] = 3
    store.append([b.started(), b.llm()])                                   # 1, 2
    store.append([b.checkpoint(s1), b.llm()])                              # 3, 4
    store.append([b.checkpoint(s2, writes=["count", "doc"]), b.tool()])    # 5, 6
    store.append([b.checkpoint(s3), b.step(), b.ended()])                  # 7, 8, 9
    cps = store.checkpoints(b.run_id)
    assert [c.seq for c in cps] == [3, 5, 7]
    assert cps[1].writes == ["count", "doc"]
    assert cps[0].writes == ["count", "plan"]
    assert store.state_at(b.run_id, 1) == {}
    assert store.state_at(b.run_id, 2) == {}
    assert store.state_at(b.run_id, 3) == s1
    assert store.state_at(b.run_id, 4) == s1
    assert store.state_at(b.run_id, 5) == s2
    assert store.state_at(b.run_id, 6) == s2
    assert store.state_at(b.run_id, 7) == s3
    assert store.state_at(b.run_id, 100) == s3
    assert store.state_at(b.run_id) == s3
    assert store.value(cps[1].root) == s2
    evs = store.events(b.run_id, kinds=["checkpoint"])
    assert [e.root for e in evs] == [c.root for c in cps]
    assert store.verify(b.run_id)[0].ok


def test_structure_sharing_keeps_checkpoints_small(store: SqlStore) -> None:
    rng = random.Random(4)
    steps = 200
    state = {f"key{i:03d}": _rand_text(rng, 1000) for i in range(200)}
    assert len(dumps(state)) > 190_000
    b = RunBuilder()
    store.append([b.started()])
    base = blob_bytes(store)
    batch = []
    roots = []
    snapshots: dict[int, dict[str, Any]] = {}
    for step in range(steps):
        key = f"key{rng.randrange(200):03d}"
        state[key] = _rand_text(rng, 1000)
        ev = b.checkpoint(state, writes=[key])
        roots.append(loads(ev.body)["root"])
        batch.append(ev)
        if step in (0, 57, steps - 1):
            snapshots[step + 2] = dict(state)  # seq of this checkpoint
        if len(batch) == 25:
            store.append(batch)
            batch = []
    store.append(batch)
    added = blob_bytes(store) - base
    assert added < 10 * 1024 * steps, f"{added} bytes of blobs for {steps} checkpoints"
    assert added < len(dumps(state)) * steps / 20
    assert len(set(roots)) == steps
    for seq, snap in snapshots.items():
        assert store.state_at(b.run_id, seq) == snap
    assert store.verify(b.run_id)[0].ok


# -- actions ---------------------------------------------------------------------------


def test_actions_classifies_intents(store: SqlStore) -> None:
    b = RunBuilder()
    big_args = {"body": "z" * 3000, "to": "x@y.z"}
    i1 = b.intent(tool="send_email", call_id="c1", idempotency_key="k1", arguments={"n": 1})
    i2 = b.intent(tool="charge", call_id="c2", idempotency_key="k2", arguments={"n": 2})
    i3 = b.intent(tool="send_email", call_id="c3", idempotency_key="k3", arguments=big_args)
    store.append([b.started(), i1, b.tool(tool="send_email", call_id="c1",
                                          intent_id=i1.event_id, side_effect=True)])
    store.append([i2, b.tool(tool="lookup", call_id="c9"),  # an ordinary call, no intent
                  b.tool(tool="charge", call_id="c2", intent_id=i2.event_id, status="error")])
    store.append([i3])
    acts = store.actions(b.run_id)
    assert [(a.call_id, a.tool, a.idempotency_key, a.state, a.intent_seq, a.result_seq)
            for a in acts] == [
        ("c1", "send_email", "k1", "finished", 2, 3),
        ("c2", "charge", "k2", "failed", 4, 6),
        ("c3", "send_email", "k3", "started-not-finished", 7, None),
    ]
    assert acts[0].arguments == {"n": 1}
    assert acts[2].arguments == big_args  # resolved from its blob
    assert all(a.run_id == b.run_id for a in acts)


def test_actions_of_a_run_without_intents_is_empty(store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started(), b.tool(), b.llm()])
    assert store.actions(b.run_id) == []


# -- run ids ---------------------------------------------------------------------------


def test_run_id_prefix_resolution(store: SqlStore) -> None:
    r1 = RunBuilder(new_run_id("abcd1111"))
    r2 = RunBuilder(new_run_id("abcd2222"))
    r3 = RunBuilder(new_run_id("ef01"))
    for r in (r1, r2, r3):
        store.append([r.started(), r.llm()])
    assert store.resolve(r1.run_id) == r1.run_id
    assert store.resolve("abcd1") == r1.run_id
    assert store.resolve("abcd2222") == r2.run_id
    assert store.run("ef01").run_id == r3.run_id
    assert [e.seq for e in store.events("abcd11")] == [1, 2]
    assert store.verify("abcd22")[0].run_id == r2.run_id
    assert store.state_at("ef01") == {}
    with pytest.raises(RunNotFoundError) as info:
        store.run("9999")
    assert info.value.run_id == "9999"
    with pytest.raises(RunNotFoundError):
        store.events("ab")  # too short to be a prefix
    with pytest.raises(RunNotFoundError):
        store.run(r1.run_id + "0")
    with pytest.raises(AmbiguousIdError, match="names more than one run") as amb:
        store.run("abcd")
    assert not isinstance(amb.value, RunNotFoundError)
    assert sorted(amb.value.candidates) == sorted([r1.run_id, r2.run_id])
    # LIKE wildcards in a prefix are taken literally
    with pytest.raises(RunNotFoundError):
        store.run("ab_d1")
    with pytest.raises(RunNotFoundError):
        store.run("abc%")


def test_run_id_prefix_is_case_sensitive(store: SqlStore) -> None:
    """A prefix names the same runs on every backend (SQLite's LIKE ignores ASCII case)."""
    upper = RunBuilder(new_run_id("ABCD"))
    lower = RunBuilder(new_run_id("abcd"))
    store.append([upper.started(), lower.started()])
    assert store.resolve("ABCD") == upper.run_id
    assert store.resolve("abcd") == lower.run_id


def test_run_filter(store: SqlStore) -> None:
    t0 = 1_750_000_000_000_000
    r1 = RunBuilder(t0_us=t0, workflow="alpha", agent_name="x")
    r2 = RunBuilder(t0_us=t0 + 10_000_000, workflow="alpha", agent_name="y")
    r3 = RunBuilder(t0_us=t0 + 20_000_000, workflow="beta", agent_name="x")
    store.append([r1.started(agent_version="1", phase="read", task_id="t1"), r1.ended()])
    store.append([r2.started(agent_version="2", phase="act", task_id="t2"),
                  r2.ended("failed", success=False)])
    store.append([r3.started(agent_version="1", task_id="t1"), r3.llm()])

    def ids(**kw: Any) -> list[str]:
        return [s.run_id for s in store.runs(RunFilter(**kw))]

    assert ids() == [r3.run_id, r2.run_id, r1.run_id]
    assert store.runs() == store.runs(RunFilter())
    assert ids(workflow="alpha") == [r2.run_id, r1.run_id]
    assert ids(agent_name="x") == [r3.run_id, r1.run_id]
    assert ids(agent_version="2") == [r2.run_id]
    assert ids(status="running") == [r3.run_id]
    assert ids(status="succeeded") == [r1.run_id]
    assert ids(status="failed") == [r2.run_id]
    assert ids(phase="act") == [r2.run_id]
    assert ids(task_id="t1") == [r3.run_id, r1.run_id]
    assert ids(since_us=t0 + 10_000_000) == [r3.run_id, r2.run_id]
    assert ids(until_us=t0 + 10_000_000) == [r1.run_id]
    assert ids(since_us=t0 + 1, until_us=t0 + 20_000_001) == [r3.run_id, r2.run_id]
    assert ids(workflow="alpha", agent_name="x") == [r1.run_id]
    assert ids(workflow="beta", status="succeeded") == []
    assert ids(limit=2) == [r3.run_id, r2.run_id]
    assert ids(workflow="gamma") == []


# -- schema --------------------------------------------------------------------------


def test_migrations_recorded_once(store: SqlStore, store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    assert store.applied_migrations() == ["0001_initial", "0002_governance", "0003_investigations",
                                           "0004_stale_incidents", "0005_recovery", "0006_approvers",
                                           "0007_approver_groups", "0008_scale_indexes",
                                           "0009_synthetic_times", "0010_unpriced_calls"]
    with store._db.read() as conn:
        first = list(conn.execute(select(migrations.c.name, migrations.c.applied_us)))
    b = RunBuilder()
    store.append([b.started()])
    again = open_store(url, schema=schema)
    try:
        assert again.applied_migrations() == ["0001_initial", "0002_governance", "0003_investigations",
                                           "0004_stale_incidents", "0005_recovery", "0006_approvers",
                                           "0007_approver_groups", "0008_scale_indexes",
                                           "0009_synthetic_times", "0010_unpriced_calls"]
        with again._db.read() as conn:
            assert list(conn.execute(select(migrations.c.name, migrations.c.applied_us))) == first
        assert again.run(b.run_id).run_id == b.run_id  # data survives re-opening
    finally:
        again.close()


def test_unknown_migration_is_a_schema_error(store: SqlStore,
                                             store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    with store._db.engine.begin() as conn:
        conn.execute(migrations.insert().values(name="0099_from_the_future", applied_us=1))
    store.close()
    with pytest.raises(SchemaError, match="0099_from_the_future"):
        open_store(url, schema=schema)


def test_foreign_tables_are_a_schema_error(store: SqlStore,
                                           store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    with store._db.engine.begin() as conn:
        conn.execute(text("DROP TABLE agentlab_migrations"))
    store.close()
    with pytest.raises(SchemaError, match="no migration record"):
        open_store(url, schema=schema)


@pytest.mark.sqlite_only
def test_sqlite_pragmas(tmp_path: Path) -> None:
    full = open_store(tmp_path / "full.db")
    normal = open_store(tmp_path / "normal.db", durability="normal")
    try:
        p = full.pragmas()
        assert str(p["journal_mode"]).lower() == "wal"
        assert p["synchronous"] == 2
        assert p["busy_timeout"] >= 5000
        assert p["secure_delete"] == 1
        q = normal.pragmas()
        assert q["synchronous"] == 1
        assert str(q["journal_mode"]).lower() == "wal"
        assert q["busy_timeout"] >= 5000 and q["secure_delete"] == 1
        # the pragmas hold on every pooled connection, not only the first
        with full._db.engine.connect() as c1, full._db.engine.connect() as c2:
            for c in (c1, c2):
                assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        full.close()
        normal.close()


def test_pragmas_are_empty_on_postgres(store: SqlStore) -> None:
    if store.dialect == "sqlite":
        assert store.pragmas()["synchronous"] == 2
    else:
        assert store.pragmas() == {}


# -- transactions ----------------------------------------------------------------------


def test_atomic_nests_as_savepoints(store: SqlStore) -> None:
    a, b, c = RunBuilder(), RunBuilder(), RunBuilder()
    with store.atomic():
        store.append([a.started()])
        with pytest.raises(RuntimeError), store.atomic():
            store.append([b.started(), b.llm(response="w" * 6000)])
            assert store.run(b.run_id).llm_calls == 1  # visible inside
            raise RuntimeError("inner fails")
        # a failing append inside the outer transaction is its own savepoint too
        with pytest.raises(RecordingError):
            store.append([a.llm(), c.tool()])
        store.append([a.llm()])
    assert store.run(a.run_id).llm_calls == 1
    assert store.run(a.run_id).last_seq == 2
    assert [r.run_id for r in store.runs()] == [a.run_id]
    with pytest.raises(RunNotFoundError):
        store.run(b.run_id)
    assert blob_count(store) == 0
    assert store.verify(a.run_id)[0].ok


def test_atomic_outer_failure_rolls_back_everything(store: SqlStore) -> None:
    a = RunBuilder()
    with pytest.raises(KeyError), store.atomic():
        store.append([a.started()])
        with store.atomic():
            store.append([a.llm()])
        raise KeyError("outer fails")
    _nothing_written(store)


# -- invariant 6: payload limits -------------------------------------------------------


@pytest.fixture
def small_store(store_url: tuple[str, str | None], tmp_path: Path) -> Iterator[SqlStore]:
    url, schema = store_url
    s = open_store(url if schema else tmp_path / "small.db", schema=schema,
                   max_payload_bytes=4096)
    try:
        yield s
    finally:
        s.close()


def test_payload_too_large(store: SqlStore, small_store: SqlStore) -> None:
    b = RunBuilder()
    batch = [b.started(task_input="a" * 1000), b.llm(response="b" * 3000),
             b.tool(result="c" * 5000)]
    with pytest.raises(PayloadTooLargeError) as info:
        small_store.append(batch)
    assert info.value.limit == 4096 and info.value.size > 5000
    assert "result" in info.value.what
    _nothing_written(small_store)
    ok = RunBuilder()
    got = small_store.append([ok.started(), ok.llm(response="b" * 4000)])
    assert len(got) == 2  # under the limit is fine, and moved to a blob
    assert "$refs" in list(small_store.raw_events(ok.run_id))[1].body


def test_payload_limit_applies_to_small_bodies(store_url: tuple[str, str | None],
                                               tmp_path: Path) -> None:
    """A limit below the 2 KB inline threshold is still a limit."""
    url, schema = store_url
    s = open_store(url if schema else tmp_path / "tiny.db", schema=schema,
                   max_payload_bytes=1000)
    try:
        b = RunBuilder()
        with pytest.raises(PayloadTooLargeError):
            s.append([b.started(), b.tool(result="x" * 1500)])
        _nothing_written(s)
    finally:
        s.close()


def test_payload_limit_applies_to_the_body_left_after_splitting(
    store_url: tuple[str, str | None], tmp_path: Path
) -> None:
    """Moving one payload field to a blob must not wave through a huge non-payload field."""
    url, schema = store_url
    s = open_store(url if schema else tmp_path / "split.db", schema=schema,
                   max_payload_bytes=4096)
    try:
        b = RunBuilder()
        ev = b.tool(result="r" * 1000, status="error",
                    error={"type": "E", "message": "m" * 20_000})
        with pytest.raises(PayloadTooLargeError):
            s.append([b.started(), ev])
        _nothing_written(s)
    finally:
        s.close()


# -- portable form ---------------------------------------------------------------------


def _export(store: SqlStore, *run_ids: str) -> bytes:
    out = io.BytesIO()
    n = store.export_runs(list(run_ids), out)
    data = out.getvalue()
    assert n == data.count(b"\n")
    return data


def test_export_import_round_trip(store: SqlStore, other_store: SqlStore) -> None:
    b, evs = _full_run()
    c = RunBuilder()
    store.append(evs)
    store.append([c.started(), c.llm(response={"same": "x" * 3000})])
    data = _export(store, b.run_id, c.run_id)
    lines = [loads(x) for x in data.splitlines()]
    assert [x["type"] for x in lines].count("header") == 2
    assert [x["type"] for x in lines].count("end") == 2
    assert all(x["version"] == FORMAT_VERSION for x in lines if x["type"] == "header")

    res = other_store.import_runs(io.BytesIO(data))
    assert res.imported == [b.run_id, c.run_id] and res.skipped == []
    for rid in (b.run_id, c.run_id):
        assert list(other_store.raw_events(rid)) == list(store.raw_events(rid))
        assert other_store.events(rid) == store.events(rid)
        assert other_store.run(rid) == store.run(rid)
        assert other_store.checkpoints(rid) == store.checkpoints(rid)
        assert other_store.actions(rid) == store.actions(rid)
        assert other_store.verify(rid)[0].ok
    for cp in store.checkpoints(b.run_id):
        assert other_store.state_at(b.run_id, cp.seq) == store.state_at(b.run_id, cp.seq)
    assert other_store.state_at(b.run_id)["n"] == 2
    assert blob_count(other_store) == blob_count(store)
    # the re-export is the same but for the headers' export time
    again = _export(other_store, b.run_id, c.run_id)
    strip = [x for x in data.splitlines() if b'"type":"header"' not in x]
    assert [x for x in again.splitlines() if b'"type":"header"' not in x] == strip

    # re-import is idempotent
    before = (_count(other_store, events), blob_count(other_store))
    res2 = other_store.import_runs(io.BytesIO(data))
    assert res2.imported == [] and res2.skipped == [b.run_id, c.run_id]
    assert (_count(other_store, events), blob_count(other_store)) == before
    # and importing into the store it came from is skipped too
    assert store.import_runs(io.BytesIO(data)).skipped == [b.run_id, c.run_id]


def test_import_from_a_path(store: SqlStore, other_store: SqlStore, tmp_path: Path) -> None:
    b, evs = _full_run()
    store.append(evs)
    f = tmp_path / "run.jsonl"
    f.write_bytes(_export(store, b.run_id[:8]))
    assert other_store.import_runs(f).imported == [b.run_id]
    assert other_store.verify(b.run_id)[0].ok


def test_import_of_a_run_with_different_contents(store: SqlStore,
                                                 other_store: SqlStore) -> None:
    b = RunBuilder()
    start = b.started()
    store.append([start, b.llm()])
    other_store.append([start, b.tool()])  # same run id, other history
    before = list(other_store.raw_events(b.run_id))
    with pytest.raises(ImportFormatError, match="different contents"):
        other_store.import_runs(io.BytesIO(_export(store, b.run_id)))
    assert list(other_store.raw_events(b.run_id)) == before
    # a longer version of the same run is different contents as well
    store.append([b.step()])
    with pytest.raises(ImportFormatError):
        other_store.import_runs(io.BytesIO(_export(store, b.run_id)))


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines()


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("damage", [
    "truncated_at_line", "truncated_mid_line", "modified_body", "missing_blob",
    "newer_version", "wrong_end_count", "modified_blob", "reordered_events",
])
def test_bad_import_files_are_rejected(store: SqlStore, other_store: SqlStore,
                                       damage: str) -> None:
    b, evs = _full_run()
    store.append(evs)
    lines = _lines(_export(store, b.run_id))
    kinds = [loads(x)["type"] for x in lines]
    ev_idx = [i for i, k in enumerate(kinds) if k == "event"]
    blob_idx = [i for i, k in enumerate(kinds) if k == "blob"]
    assert blob_idx and len(ev_idx) == len(evs)
    if damage == "truncated_at_line":
        bad = _join(lines[:-1])
    elif damage == "truncated_mid_line":
        whole = _join(lines)
        bad = whole[: len(whole) - len(lines[-1]) // 2 - 1]
    elif damage == "modified_body":
        i = ev_idx[3]
        obj = loads(lines[i])
        obj["body"]["name"] = "plan!"  # the step event
        lines[i] = dumps(obj)
        bad = _join(lines)
    elif damage == "missing_blob":
        bad = _join([x for i, x in enumerate(lines) if i != blob_idx[0]])
    elif damage == "newer_version":
        obj = loads(lines[0])
        obj["version"] = FORMAT_VERSION + 1
        lines[0] = dumps(obj)
        bad = _join(lines)
    elif damage == "wrong_end_count":
        obj = loads(lines[-1])
        obj["events"] += 1
        lines[-1] = dumps(obj)
        bad = _join(lines)
    elif damage == "modified_blob":
        i = blob_idx[-1]
        obj = loads(lines[i])
        obj["data"]["t"] = "x" + str(obj["data"]["t"])
        lines[i] = dumps(obj)
        bad = _join(lines)
    else:  # reordered_events
        i, j = ev_idx[1], ev_idx[2]
        lines[i], lines[j] = lines[j], lines[i]
        bad = _join(lines)
    with pytest.raises(ImportFormatError):
        other_store.import_runs(io.BytesIO(bad))
    _nothing_written(other_store)


def test_import_with_a_blob_already_in_the_target(store: SqlStore,
                                                  other_store: SqlStore) -> None:
    """A blob missing from the file is fine when the target already holds it."""
    payload = {"doc": "p" * 5000}
    a, b = RunBuilder(), RunBuilder()
    store.append([a.started(), a.llm(response=payload)])
    other_store.append([b.started(), b.llm(response=payload)])
    lines = [x for x in _lines(_export(store, a.run_id)) if b'"type":"blob"' not in x]
    assert other_store.import_runs(io.BytesIO(_join(lines))).imported == [a.run_id]
    assert other_store.events(a.run_id)[1].response == payload
    assert other_store.verify(a.run_id)[0].ok


def test_import_is_all_or_nothing_per_run(store: SqlStore, other_store: SqlStore) -> None:
    a, b = RunBuilder(), RunBuilder()
    store.append([a.started(), a.llm()])
    store.append([b.started(), b.llm(), b.tool()])
    lines = _lines(_export(store, a.run_id, b.run_id))
    # damage the second run's last event body
    obj = loads(lines[-2])
    obj["body"]["tool"] = "other"
    lines[-2] = dumps(obj)
    with pytest.raises(ImportFormatError):
        other_store.import_runs(io.BytesIO(_join(lines)))
    assert [r.run_id for r in other_store.runs()] == [a.run_id]  # the first run went in whole
    with pytest.raises(RunNotFoundError):
        other_store.run(b.run_id)
    assert other_store.verify(a.run_id)[0].ok


# -- verify --------------------------------------------------------------------------


def test_verify_all_runs_ok(store: SqlStore) -> None:
    rids = []
    for seed in range(3):
        b, evs = _full_run(random.Random(seed))
        store.append(evs)
        rids.append(b.run_id)
    reports = store.verify()
    assert sorted(r.run_id for r in reports) == sorted(rids)
    assert all(r.ok and r.first_bad_seq is None and r.reason is None for r in reports)
    assert all(r.events == 11 for r in reports)


def test_verify_detects_a_wrong_summary(store: SqlStore) -> None:
    b, evs = _full_run()
    store.append(evs)
    with store._db.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == b.run_id).values(
            llm_calls=runs.c.llm_calls + 1))
    rep = store.verify(b.run_id)[0]
    assert not rep.ok and "llm_calls" in (rep.reason or "")


def _forged_file(run_id: str, bodies: list[dict[str, Any]],
                 blobs_: dict[str, bytes] | None = None,
                 ids: list[str] | None = None) -> bytes:
    """A portable file whose hash chain, counts and head are all consistent, as anyone can
    write one: only its contents can be wrong."""
    lines = [dumps({"type": "header", "format": "agentlab.run", "version": FORMAT_VERSION,
                    "run_id": run_id, "exported_at": "2025-01-01T00:00:00+00:00",
                    "agentlab_version": "0"})]
    for h, data in (blobs_ or {}).items():
        lines.append(dumps({"type": "blob", "hash": h, "data": loads(data)}))
    prev = GENESIS
    for seq, body in enumerate(bodies, start=1):
        ev_id = ids[seq - 1] if ids else str(uuid.uuid4())
        ts = 1_700_000_000_000_000 + seq
        prev = chain_hash(prev, run_id, seq, ev_id, None, ts, body["kind"], dumps(body))
        lines.append(dumps({"type": "event", "id": ev_id, "run_id": run_id, "seq": seq,
                            "parent_id": None, "ts_us": ts, "body": body, "hash": prev}))
    lines.append(dumps({"type": "end", "run_id": run_id, "events": len(bodies), "head": prev}))
    return _join(lines)


START = {"kind": "run_started", "workflow": "wf", "agent_name": "a"}


def test_a_forged_but_well_formed_file_imports(other_store: SqlStore) -> None:
    """The forging helper itself makes files the store accepts (so the cases below fail
    for the reason they name)."""
    node = dumps({"t": "v", "v": "x" * 600})
    h = hashlib.sha256(node).hexdigest()
    rid = new_run_id()
    data = _forged_file(rid, [START, {"kind": "step", "name": "s", "$refs": {"output": h}}],
                        {h: node})
    assert other_store.import_runs(io.BytesIO(data)).imported == [rid]
    assert other_store.events(rid)[1].output == "x" * 600
    assert other_store.verify(rid)[0].ok


@pytest.mark.parametrize("case", [
    "first_event_not_run_started", "second_run_started", "step_without_name",
    "unknown_kind", "checkpoint_without_root", "malformed_blob_node", "body_field_wrong_type",
])
def test_import_rejects_well_chained_files_with_bad_contents(other_store: SqlStore,
                                                             case: str) -> None:
    """A file is only as trustworthy as its contents: a consistent hash chain over events
    the store cannot represent is still an ImportFormatError, and nothing is written."""
    rid = new_run_id()
    blobs_: dict[str, bytes] = {}
    if case == "first_event_not_run_started":
        bodies = [{"kind": "step", "name": "s"}]
    elif case == "second_run_started":
        bodies = [START, {"kind": "step", "name": "s"}, START]
    elif case == "step_without_name":
        bodies = [START, {"kind": "step"}]
    elif case == "unknown_kind":
        bodies = [START, {"kind": "teleport", "to": "mars"}]
    elif case == "checkpoint_without_root":
        bodies = [START, {"kind": "checkpoint", "writes": []}]
    elif case == "malformed_blob_node":
        node = dumps({"not": "a tree node"})
        h = hashlib.sha256(node).hexdigest()
        blobs_[h] = node
        bodies = [START, {"kind": "step", "name": "s", "$refs": {"output": h}}]
    else:  # body_field_wrong_type
        bodies = [START, {"kind": "llm_call", "model": "m", "input_tokens": "many"}]
    with pytest.raises(ImportFormatError):
        other_store.import_runs(io.BytesIO(_forged_file(rid, bodies, blobs_)))
    _nothing_written(other_store)


def test_import_of_an_event_id_stored_in_another_run(other_store: SqlStore) -> None:
    """Event ids are unique store-wide: a file reusing one is refused as a file error."""
    b = RunBuilder()
    taken = b.step("mine")
    other_store.append([b.started(), taken])
    before = (list(other_store.raw_events(b.run_id)), _count(other_store, runs))
    rid = new_run_id()
    data = _forged_file(rid, [START, {"kind": "step", "name": "theirs"}],
                        ids=[str(uuid.uuid4()), taken.event_id])
    with pytest.raises(ImportFormatError):
        other_store.import_runs(io.BytesIO(data))
    assert (list(other_store.raw_events(b.run_id)), _count(other_store, runs)) == before
    with pytest.raises(RunNotFoundError):
        other_store.run(rid)


@pytest.mark.parametrize("case", ["non_canonical_body", "kind_disagrees_with_body"])
def test_append_never_stores_what_verify_or_import_rejects(store: SqlStore,
                                                           other_store: SqlStore,
                                                           case: str) -> None:
    """Either append refuses the event, or the run verifies and survives export/import."""
    b = RunBuilder()
    ev = b.step("s")
    if case == "non_canonical_body":
        ev = replace_body(ev, b'{"name": "s", "kind": "step"}')
    else:
        ev = replace_body(ev, dumps({"kind": "error", "error": {"type": "E", "message": "m"}}))
    try:
        store.append([b.started(), ev])
    except (AgentlabError, ValueError):
        _nothing_written(store)
        return
    assert store.verify(b.run_id)[0].ok
    other_store.import_runs(io.BytesIO(_export(store, b.run_id)))
    assert other_store.verify(b.run_id)[0].ok


def replace_body(ev: Any, body: bytes) -> Any:
    """``ev`` with another body (PendingEvent is a dataclass or a NamedTuple)."""
    if dataclasses.is_dataclass(ev):
        return dataclasses.replace(ev, body=body)
    return ev._replace(body=body)


@pytest.mark.sqlite_only
def test_a_store_from_before_governance_is_upgraded(store_url: tuple[str, str | None]) -> None:
    """0002 adds the governance counters and tables to a store that 0001 made."""
    url, _ = store_url
    s = open_store(url)
    b = RunBuilder()
    s.append([b.started()])
    with s._db.engine.begin() as conn:  # take the store back to its 0001 shape
        for col in ("denied_count", "approval_count", "override_count"):
            conn.exec_driver_sql(f"ALTER TABLE agentlab_runs DROP COLUMN {col}")
        conn.exec_driver_sql("DROP TABLE agentlab_grants")
        conn.exec_driver_sql("DROP TABLE agentlab_approvals")
        conn.exec_driver_sql("DELETE FROM agentlab_migrations WHERE name = '0002_governance'")
    s.close()
    again = open_store(url)
    try:
        assert again.applied_migrations() == ["0001_initial", "0002_governance", "0003_investigations",
                                           "0004_stale_incidents", "0005_recovery", "0006_approvers",
                                           "0007_approver_groups", "0008_scale_indexes",
                                           "0009_synthetic_times", "0010_unpriced_calls"]
        summary = again.run(b.run_id)
        assert (summary.denied_count, summary.approval_count, summary.override_count) == (0, 0, 0)
        assert again.grants() == [] and again.approvals() == []
    finally:
        again.close()


def test_the_store_takes_foreign_bodies_in_either_key_order_and_keeps_it(
        store: SqlStore) -> None:
    b = RunBuilder()
    store.append([b.started()])
    tool = b.tool()  # the builder writes the identity (sorted) form
    body = loads(tool.body)
    body["result"] = {"z": 1, "a": 2}
    store.append([tool._replace(body=dumps_ordered(body)), b.ended()])
    got = next(e for e in store.events(b.run_id) if e.kind == "tool_call")
    assert list(got.result) == ["z", "a"]
    assert store.verify(b.run_id)[0].ok
    # Whitespace or a repeated key is still refused: one byte form per parsed body.
    bad = b.tool(call_id="c2")
    with pytest.raises(RecordingError, match="not canonical JSON"):
        store.append([bad._replace(body=bad.body.replace(b",", b", ", 1))])
