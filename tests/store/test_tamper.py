"""Tamper evidence: edits made behind the store's back, in SQL, are found by ``verify``.

Each test changes the database directly (``store._db.engine``) the way someone with write
access to the SQLite file or the PostgreSQL tables could, then checks that
``store.verify(run_id)`` reports the run as bad and names the first bad ``seq``.
"""

from __future__ import annotations

import random
import string
import uuid
import zlib
from typing import Any

import pytest
from sqlalchemy import select, text

from agentlab.model import loads
from agentlab.store import SqlStore, chain_hash
from agentlab.store._schema import blobs, checkpoints, events, runs

from .helpers import RunBuilder

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


# -- raw access -----------------------------------------------------------------------


def _sql(store: SqlStore, stmt: Any, params: dict[str, Any] | None = None) -> None:
    with store._db.engine.begin() as conn:
        if isinstance(stmt, str):
            conn.execute(text(stmt), params or {})
        else:
            conn.execute(stmt)


def _row(store: SqlStore, run_id: str, seq: int) -> dict[str, Any]:
    with store._db.read() as conn:
        row = conn.execute(
            select(events).where(events.c.run_id == run_id, events.c.seq == seq)
        ).one()
    return dict(row._mapping)


def _set(store: SqlStore, run_id: str, at: int, **values: Any) -> None:
    _sql(store, events.update()
         .where(events.c.run_id == run_id, events.c.seq == at).values(**values))


def _blob(store: SqlStore, h: str) -> dict[str, Any]:
    with store._db.read() as conn:
        return dict(conn.execute(select(blobs).where(blobs.c.hash == h)).one()._mapping)


def _bad(store: SqlStore, run_id: str) -> tuple[bool, int | None]:
    rep = store.verify(run_id)[0]
    assert rep.run_id == run_id
    if not rep.ok:
        assert rep.reason, "a failed report must say why"
    return rep.ok, rep.first_bad_seq


def _ok(store: SqlStore, run_id: str) -> None:
    rep = store.verify(run_id)[0]
    assert rep.ok, rep.reason


def _rand_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


def _make_run(store: SqlStore, rng: random.Random, *, big: bool = True) -> tuple[str, dict[str, Any]]:
    """A run of 12 events; returns its id and where the interesting parts are."""
    b = RunBuilder()
    start = b.started(task_input={"q": "why?"}, phase="read")
    plan = b.step("plan", parent_id=None)
    # a raw (codec 0) leaf: a state value just over the inline limit but under the
    # compression threshold
    state1 = {"note": _rand_text(rng, 300), "n": 1}
    state2 = {"note": _rand_text(rng, 300), "n": 2, "list": list(range(50))}
    evs = [
        start,                                                              # 1
        plan,                                                               # 2
        b.llm(parent_id=plan.event_id,
              response=_rand_text(rng, 4000) if big else "short"),         # 3
        b.checkpoint(state1, parent_id=plan.event_id),                     # 4
        b.tool(parent_id=plan.event_id, result={"rows": [1, 2, 3]}),        # 5
        b.step("act"),                                                      # 6
        b.llm(messages=[{"role": "user", "content": "x"}], cost_usd=0.3),   # 7
        b.error(),                                                          # 8
        b.retry(),                                                          # 9
        b.checkpoint(state2, writes=["n", "note", "list"]),                 # 10
        b.tool(status="error"),                                             # 11
        b.ended(score=0.5),                                                 # 12
    ]
    store.append(evs[:5])
    store.append(evs[5:])
    info = {"n": len(evs), "ref_seq": 3, "checkpoint_seq": 4, "plan_id": plan.event_id}
    return b.run_id, info


@pytest.fixture
def run(store: SqlStore) -> tuple[str, dict[str, Any]]:
    rid, info = _make_run(store, random.Random(11))
    _ok(store, rid)
    return rid, info


# -- single events --------------------------------------------------------------------


def test_single_character_changes_in_bodies_are_caught(
    store: SqlStore, run: tuple[str, dict[str, Any]]
) -> None:
    rid, info = run
    rng = random.Random(12345)
    for _ in range(60):
        seq = rng.randint(1, info["n"])
        original = _row(store, rid, seq)["body"]
        pos = rng.randrange(len(original))
        repl = rng.choice([c for c in PRINTABLE if c != original[pos]])
        _set(store, rid, seq, body=original[:pos] + repl + original[pos + 1:])
        assert _bad(store, rid) == (False, seq), (seq, pos, repl)
        _set(store, rid, seq, body=original)
        _ok(store, rid)


def test_equivalent_json_with_other_bytes_is_caught(
    store: SqlStore, run: tuple[str, dict[str, Any]]
) -> None:
    """Re-serialising a body (same JSON value, other bytes) still breaks the chain."""
    rid, _ = run
    original = _row(store, rid, 5)["body"]
    _set(store, rid, 5, body=original.replace(",", ", ", 1))
    assert loads(_row(store, rid, 5)["body"]) == loads(original)
    assert _bad(store, rid) == (False, 5)


@pytest.mark.parametrize("seq", [1, 6, 12])
def test_changed_hash_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]],
                                seq: int) -> None:
    rid, _ = run
    h = _row(store, rid, seq)["hash"]
    flipped = h[:10] + ("0" if h[10] != "0" else "1") + h[11:]
    _set(store, rid, seq, hash=flipped)
    if seq == 12:  # even with the run's head moved along with it
        _sql(store, runs.update().where(runs.c.run_id == rid).values(head_hash=flipped))
    assert _bad(store, rid) == (False, seq)


@pytest.mark.parametrize("delta", [1, -1, 1_000_000])
def test_changed_timestamp_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]],
                                     delta: int) -> None:
    rid, _ = run
    ts = _row(store, rid, 7)["ts_us"]
    _set(store, rid, 7, ts_us=ts + delta)
    assert _bad(store, rid) == (False, 7)


def test_changed_parent_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]]) -> None:
    rid, info = run
    row = _row(store, rid, 3)
    assert row["parent_id"] == info["plan_id"]
    pid = row["parent_id"]
    _set(store, rid, 3, parent_id=pid[:-1] + ("0" if pid[-1] != "0" else "1"))
    assert _bad(store, rid) == (False, 3)
    _set(store, rid, 3, parent_id=None)
    assert _bad(store, rid) == (False, 3)
    _set(store, rid, 3, parent_id=pid)
    _ok(store, rid)
    # giving a parent to an event that had none
    assert _row(store, rid, 8)["parent_id"] is None
    _set(store, rid, 8, parent_id=info["plan_id"])
    assert _bad(store, rid) == (False, 8)


@pytest.mark.parametrize(("seq", "new_kind"), [(7, "tool_call"), (8, "retry"), (2, "stepx")])
def test_changed_kind_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]], seq: int,
                                new_kind: str) -> None:
    rid, _ = run
    _set(store, rid, seq, kind=new_kind)
    assert _bad(store, rid) == (False, seq)


def test_kind_changed_in_column_and_body_is_caught(
    store: SqlStore, run: tuple[str, dict[str, Any]]
) -> None:
    rid, _ = run
    row = _row(store, rid, 9)
    assert row["kind"] == "retry"
    _set(store, rid, 9, kind="error", body=row["body"].replace('"kind":"retry"', '"kind":"error"'))
    assert _bad(store, rid) == (False, 9)


# -- deletions, swaps, insertions ----------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 5, 11])
def test_deleted_event_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]],
                                 seq: int) -> None:
    rid, _ = run
    _sql(store, events.delete().where(events.c.run_id == rid, events.c.seq == seq))
    assert _bad(store, rid) == (False, seq)


def test_deleted_last_event_is_caught(store: SqlStore,
                                      run: tuple[str, dict[str, Any]]) -> None:
    rid, info = run
    n = info["n"]
    _sql(store, events.delete().where(events.c.run_id == rid, events.c.seq == n))
    assert _bad(store, rid) == (False, n)


def test_deleted_last_event_with_summary_rewound_is_caught(
    store: SqlStore, run: tuple[str, dict[str, Any]]
) -> None:
    """Removing the tail and moving last_seq back still leaves the head hash disagreeing."""
    rid, info = run
    n = info["n"]
    _sql(store, events.delete().where(events.c.run_id == rid, events.c.seq == n))
    _sql(store, runs.update().where(runs.c.run_id == rid).values(last_seq=n - 1))
    ok, first = _bad(store, rid)
    assert not ok and first in (n - 1, n)


def _renumber(store: SqlStore, rid: str, moves: dict[int, int]) -> None:
    """Change seqs without tripping UNIQUE(run_id, seq) halfway (via negative numbers)."""
    for old in moves:
        _set(store, rid, old, seq=-old)
    for old, new in moves.items():
        _set(store, rid, -old, seq=new)


@pytest.mark.parametrize(("i", "j"), [(2, 3), (5, 9), (11, 12), (1, 12)])
def test_swapped_events_are_caught(store: SqlStore, run: tuple[str, dict[str, Any]], i: int,
                                   j: int) -> None:
    rid, _ = run
    _renumber(store, rid, {i: j, j: i})
    assert _row(store, rid, i)["seq"] == i
    assert _bad(store, rid) == (False, i)


def _insert(store: SqlStore, rid: str, seq: int, prev: str, *, good_hash: bool) -> None:
    ev_id = str(uuid.uuid4())
    body = '{"kind":"step","name":"forged"}'
    ts = 1_700_000_000_500_000
    h = chain_hash(prev, rid, seq, ev_id, None, ts, "step", body.encode()) if good_hash \
        else "ab" * 32
    _sql(store, events.insert().values(event_id=ev_id, run_id=rid, seq=seq, parent_id=None,
                                       kind="step", ts_us=ts, body=body, hash=h))


@pytest.mark.parametrize("good_hash", [True, False])
def test_event_inserted_at_the_end_is_caught(store: SqlStore,
                                             run: tuple[str, dict[str, Any]],
                                             good_hash: bool) -> None:
    rid, info = run
    n = info["n"]
    _insert(store, rid, n + 1, _row(store, rid, n)["hash"], good_hash=good_hash)
    assert _bad(store, rid) == (False, n + 1)


@pytest.mark.parametrize("good_hash", [True, False])
def test_event_inserted_in_the_middle_is_caught(store: SqlStore,
                                                run: tuple[str, dict[str, Any]],
                                                good_hash: bool) -> None:
    rid, info = run
    n, k = info["n"], 6
    prev = _row(store, rid, k - 1)["hash"]
    _renumber(store, rid, {s: s + 1 for s in range(k, n + 1)})
    _insert(store, rid, k, prev, good_hash=good_hash)
    # the forger also fixes the summary's event count and step counter
    _sql(store, runs.update().where(runs.c.run_id == rid).values(
        last_seq=n + 1, step_count=runs.c.step_count + 1))
    assert sorted(_row(store, rid, s)["seq"] for s in range(1, n + 2)) == list(range(1, n + 2))
    # a forged event with a correct link is only exposed by the event after it
    assert _bad(store, rid) == (False, k + 1 if good_hash else k)


# -- blobs ------------------------------------------------------------------------------


def _checkpoint_root(store: SqlStore, rid: str, seq: int) -> str:
    with store._db.read() as conn:
        return str(conn.scalar(select(checkpoints.c.root).where(
            checkpoints.c.run_id == rid, checkpoints.c.seq == seq)))


def test_modified_raw_blob_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]]) -> None:
    rid, info = run
    seq = info["checkpoint_seq"]
    root = _checkpoint_root(store, rid, seq)
    blob = _blob(store, root)
    assert blob["codec"] == 0
    data = bytes(blob["data"])
    rng = random.Random(5)
    for pos in rng.sample(range(len(data)), 15):
        changed = data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]
        _sql(store, blobs.update().where(blobs.c.hash == root).values(data=changed))
        assert _bad(store, rid) == (False, seq), pos
    _sql(store, blobs.update().where(blobs.c.hash == root).values(data=data))
    _ok(store, rid)


def test_modified_raw_child_blob_is_caught(store: SqlStore,
                                           run: tuple[str, dict[str, Any]]) -> None:
    """A blob below the root (the state's long 'note' leaf) is checked too."""
    rid, info = run
    seq = info["checkpoint_seq"]
    root_node = loads(bytes(_blob(store, _checkpoint_root(store, rid, seq))["data"]))
    leaf = root_node["r"]["note"]
    blob = _blob(store, leaf)
    assert blob["codec"] == 0
    data = bytes(blob["data"])
    changed = data.replace(b'"v":"', b'"v":"X', 1)[:-2] + b'"}'
    _sql(store, blobs.update().where(blobs.c.hash == leaf).values(data=changed))
    assert _bad(store, rid) == (False, seq)


def test_modified_compressed_blob_is_caught(store: SqlStore,
                                            run: tuple[str, dict[str, Any]]) -> None:
    """A flipped byte in zlib data is a failed check, not an exception out of verify."""
    rid, info = run
    ref = _row(store, rid, info["ref_seq"])
    h = loads(ref["body"])["$refs"]["response"]
    blob = _blob(store, h)
    assert blob["codec"] == 1
    data = bytes(blob["data"])
    changed = data[:20] + bytes([data[20] ^ 0xFF]) + data[21:]
    _sql(store, blobs.update().where(blobs.c.hash == h).values(data=changed))
    assert _bad(store, rid) == (False, info["ref_seq"])


def test_recompressed_blob_with_other_content_is_caught(
    store: SqlStore, run: tuple[str, dict[str, Any]]
) -> None:
    rid, info = run
    ref = _row(store, rid, info["ref_seq"])
    h = loads(ref["body"])["$refs"]["response"]
    data = zlib.decompress(bytes(_blob(store, h)["data"]))
    forged = zlib.compress(data.replace(b"a", b"b", 1))
    _sql(store, blobs.update().where(blobs.c.hash == h).values(data=forged))
    assert _bad(store, rid) == (False, info["ref_seq"])


def test_deleted_blob_is_caught(store: SqlStore, run: tuple[str, dict[str, Any]]) -> None:
    rid, info = run
    h = loads(_row(store, rid, info["ref_seq"])["body"])["$refs"]["response"]
    _sql(store, blobs.delete().where(blobs.c.hash == h))
    assert _bad(store, rid) == (False, info["ref_seq"])


def test_deleted_checkpoint_blob_is_caught(store: SqlStore,
                                           run: tuple[str, dict[str, Any]]) -> None:
    rid, info = run
    seq = info["checkpoint_seq"]
    root_node = loads(bytes(_blob(store, _checkpoint_root(store, rid, seq))["data"]))
    _sql(store, blobs.delete().where(blobs.c.hash == root_node["r"]["note"]))
    assert _bad(store, rid) == (False, seq)


# -- many runs, one tampered --------------------------------------------------------------


TAMPERS = ["body", "hash", "ts", "parent", "kind", "delete_mid", "delete_last", "swap",
           "insert_end", "insert_mid", "blob_modify", "blob_delete"]


def _tamper(store: SqlStore, rid: str, info: dict[str, Any], how: str) -> int:
    """Apply one tampering to run ``rid``; returns the seq verify must name."""
    n = info["n"]
    if how == "body":
        body = _row(store, rid, 5)["body"]
        assert "[1,2,3]" in body
        _set(store, rid, 5, body=body.replace("[1,2,3]", "[1,2,4]"))
        return 5
    if how == "hash":
        _set(store, rid, 2, hash="f" * 64)
        return 2
    if how == "ts":
        _set(store, rid, 9, ts_us=_row(store, rid, 9)["ts_us"] + 1)
        return 9
    if how == "parent":
        _set(store, rid, 5, parent_id=None)
        return 5
    if how == "kind":
        _set(store, rid, 6, kind="llm_call")
        return 6
    if how == "delete_mid":
        _sql(store, events.delete().where(events.c.run_id == rid, events.c.seq == 7))
        return 7
    if how == "delete_last":
        _sql(store, events.delete().where(events.c.run_id == rid, events.c.seq == n))
        return n
    if how == "swap":
        _renumber(store, rid, {3: 4, 4: 3})
        return 3
    if how == "insert_end":
        _insert(store, rid, n + 1, _row(store, rid, n)["hash"], good_hash=True)
        return n + 1
    if how == "insert_mid":
        prev = _row(store, rid, 2)["hash"]
        _renumber(store, rid, {s: s + 1 for s in range(3, n + 1)})
        _insert(store, rid, 3, prev, good_hash=False)
        return 3
    h = loads(_row(store, rid, info["ref_seq"])["body"])["$refs"]["response"]
    if how == "blob_modify":
        data = zlib.decompress(bytes(_blob(store, h)["data"]))
        _sql(store, blobs.update().where(blobs.c.hash == h).values(
            codec=0, data=data.replace(b"a", b"c", 1)))
    else:
        _sql(store, blobs.delete().where(blobs.c.hash == h))
    return info["ref_seq"]


@pytest.mark.parametrize("how", TAMPERS)
def test_only_the_tampered_run_is_flagged(store: SqlStore, how: str) -> None:
    rng = random.Random(99)
    shared = {"shared": _rand_text(rng, 5000)}
    clean: list[str] = []
    for i in range(30):
        b = RunBuilder()
        evs = [b.started(task_input=shared if i % 3 == 0 else {"i": i})]
        for j in range(rng.randint(1, 12)):
            pick = rng.random()
            if pick < 0.3:
                evs.append(b.llm(response=shared if j % 4 == 0 else _rand_text(rng, 50)))
            elif pick < 0.5:
                evs.append(b.tool(result={"j": j, "pad": _rand_text(rng, rng.choice([10, 900]))}))
            elif pick < 0.7:
                evs.append(b.checkpoint({"j": j, "text": _rand_text(rng, 400), **shared}))
            elif pick < 0.8:
                evs.append(b.error())
            else:
                evs.append(b.step())
        if i % 2 == 0:
            evs.append(b.ended())
        store.append(evs)
        clean.append(b.run_id)
    target, info = _make_run(store, rng)
    assert all(r.ok for r in store.verify())
    expected = _tamper(store, target, info, how)
    reports = {r.run_id: r for r in store.verify()}
    assert set(reports) == {*clean, target}
    assert [rid for rid, r in reports.items() if not r.ok] == [target]
    assert reports[target].first_bad_seq == expected
    for rid in clean:
        assert reports[rid].ok and reports[rid].first_bad_seq is None


# -- a forger who re-chains --------------------------------------------------------------


def _rechain(store: SqlStore, rid: str, at: int, kind: str, body: str) -> None:
    """Replace event ``at`` and recompute every later hash and the run head, as someone who
    knows the (public) chain rule can: verify cannot prove tampering, but must not crash."""
    _set(store, rid, at, kind=kind, body=body)
    with store._db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(events).where(events.c.run_id == rid).order_by(events.c.seq))]
    prev = rows[at - 2]["hash"] if at > 1 else "0" * 64
    for r in rows[at - 1:]:
        prev = chain_hash(prev, rid, r["seq"], r["event_id"], r["parent_id"], r["ts_us"],
                          r["kind"], r["body"].encode())
        _set(store, rid, r["seq"], hash=prev)
    _sql(store, runs.update().where(runs.c.run_id == rid).values(head_hash=prev))


@pytest.mark.parametrize(("kind", "body"), [
    ("step", "[]"),
    ("step", '"just a string"'),
    ("step", "not json"),
    ("checkpoint", '{"kind":"checkpoint","writes":[]}'),
    ("llm_call", '{"input_tokens":"many","kind":"llm_call","model":"m"}'),
    ("step", '{"$refs":"nope","kind":"step","name":"s"}'),
    ("step", '{"$refs":{"output":"' + "0" * 64 + '"},"kind":"step","name":"s"}'),
])
def test_verify_reports_rather_than_raises(store: SqlStore, run: tuple[str, dict[str, Any]],
                                           kind: str, body: str) -> None:
    rid, _ = run
    _rechain(store, rid, 6, kind, body)  # seq 6 is a plain step
    other = RunBuilder()
    store.append([other.started(), other.llm()])
    reports = {r.run_id: r for r in store.verify()}  # one bad run must not hide the others
    assert reports[other.run_id].ok
    rep = reports[rid]
    assert not rep.ok and rep.reason
    assert rep.first_bad_seq == 6
