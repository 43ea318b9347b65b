"""Checkpoints of ``run.state`` are fixed on the caller and built on the writer thread.

An assignment serialises the new value once (what is stored, and a snapshot the caller's
later mutations cannot reach); the writer thread makes the tree, the root and the event.
What is stored must be what the synchronous path stores, byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
import agentlab.record._state as state_module
from agentlab.model import TreeEncoder, loads
from agentlab.store import SqlStore, open_store

# sha256 of the checkpoint bodies and state blobs :func:`assign` stores, as recorded by the
# synchronous checkpoint (commit 6db1179, before checkpoints were built on the writer; the
# whole export of the run, ids and chain hashes included, was the same there as here).
STORED_BEFORE = "61905f54a0543d4d0d906581b404cf1e96452765a950dd828441209928e5271c"

SECRET = "password=Sup3rS3cretValue99"
SECRET_KEY = "cache:AKIAIOSFODNN7EXAMPLE"


def assign(run: al.RunRecorder) -> None:
    """Assignments of every kind: many keys (the map splits), nested values split into
    nodes, small inline ones, values the portability rule changes, secrets in values and in
    key names, deletes, updates, a value changed in place after it was read, and values the
    caller changes after assigning them."""
    state = run.state
    state.update({f"doc{i:02d}": f"{i} " + "lorem ipsum " * 30 for i in range(40)})
    state["small"] = 1
    nested = {"items": [{"n": i, "text": "t" * 300} for i in range(40)], "meta": {"a": 1}}
    state["nested"] = nested
    nested["meta"]["a"] = 2  # not in this checkpoint; the read below makes a later one look
    state["odd"] = {"nan": math.nan, "big": 2**80, "list": list(range(50))}
    state["notes"] = f"config {SECRET} " + "x" * 400
    state[SECRET_KEY] = {"valid": True}
    with al.step("read"):
        got = state["nested"]
    got["meta"]["b"] = 3  # in place after a read: recorded by the next checkpoint
    state["doc03"] = "changed"
    del state["doc04"]
    state.update(doc05="y" * 500, doc06=[1, 2, 3])
    for i in range(30):
        state[f"doc{i % 7:02d}"] = f"round {i} " + "z" * 400
    del state["doc05"]


def record(path: Path) -> tuple[SqlStore, str, list[bytes]]:
    store = open_store(path)
    ticks = itertools.count(1_700_000_000_000_000_000, 1_000_000)
    ids = (f"{i:032x}" for i in itertools.count(1))
    with al.record_run("w", agent="a", store=store, clock=lambda: next(ticks),
                       id_factory=lambda: next(ids)) as run:
        assign(run)
    buf = io.BytesIO()
    store.export_runs([run.run_id], buf)
    lines = [ln for ln in buf.getvalue().splitlines() if b'"type":"header"' not in ln]
    return store, run.run_id, lines


def stored(lines: list[bytes]) -> str:
    """Digest of the checkpoints' bodies, in order, and of every blob."""
    parsed = [json.loads(ln) for ln in lines]
    bodies = [p["body"] for p in parsed
              if p["type"] == "event" and p["body"]["kind"] == "checkpoint"]
    blobs = sorted((p["hash"], p["data"]) for p in parsed if p["type"] == "blob")
    return hashlib.sha256(json.dumps([bodies, blobs], sort_keys=True).encode()).hexdigest()


def test_stored_bytes_are_those_the_synchronous_checkpoint_stored(tmp_path: Path) -> None:
    store, run_id, lines = record(tmp_path / "a.db")
    assert stored(lines) == STORED_BEFORE
    # The record holds what the test says it does, so the digest covers all of it.
    cps = store.events(run_id, kinds=["checkpoint"])
    assert any(c.redacted for c in cps) and any(c.normalized for c in cps)
    final = store.state_at(run_id)
    assert final["nested"]["meta"] == {"a": 2, "b": 3}
    assert "doc05" not in final and final["doc06"] == "round 27 " + "z" * 400
    assert SECRET not in json.dumps(final) and SECRET_KEY not in final
    store.close()


def test_the_deferred_and_the_synchronous_path_store_the_same_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deferred = record(tmp_path / "a.db")
    monkeypatch.setattr(state_module, "_small", lambda *a: False)  # every checkpoint on the caller
    synchronous = record(tmp_path / "b.db")
    assert deferred[2] == synchronous[2]  # every line: ids, times, parents, chain hashes
    deferred[0].close()
    synchronous[0].close()


def test_a_value_changed_after_its_assignment_is_recorded_as_assigned(tmp_path: Path) -> None:
    store = open_store(tmp_path / "m.db")
    with al.record_run("w", agent="a", store=store) as run:
        value = {"items": ["a" * 300, "b"], "n": 1}
        run.state["v"] = value
        root = run.state.root
        value["items"].append("after")
        value["n"] = 2
        value["items"][0] = "changed"
        run.state["other"] = "x"  # the next checkpoint does not look at "v" (never read)
        run.flush()
        cps = store.checkpoints(run.run_id)
        assert cps[0].root == root
        assert store.state_at(run.run_id, cps[0].seq) == {"v": {"items": ["a" * 300, "b"], "n": 1}}
        assert store.state_at(run.run_id)["v"] == {"items": ["a" * 300, "b"], "n": 1}
    store.close()


def test_the_root_on_demand_is_the_stored_one_and_a_fresh_encodings(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.db")
    with al.record_run("w", agent="a", store=store) as run:
        roots = []
        for i in range(60):
            run.state[f"k{i % 45}"] = {"i": i, "text": f"{i} " + "w" * 300}
            if i % 7 == 0:
                roots.append(run.state.root)  # made on the caller if the writer has not
                fresh = TreeEncoder().node(loads(json.dumps(run.state.snapshot())))
                assert roots[-1] == fresh
        assert run.state.checkpoint() == run.state.root
        run.flush()
        stored_roots = [c.root for c in store.checkpoints(run.run_id)]
    assert roots == stored_roots[0:60:7]
    store.close()


def test_the_writer_thread_builds_the_trees(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    built_on: set[str] = set()
    encode = state_module.RunState._encode

    def spy(self: Any, *args: Any) -> Any:
        built_on.add(threading.current_thread().name)
        return encode(self, *args)

    monkeypatch.setattr(state_module.RunState, "_encode", spy)
    store = open_store(tmp_path / "w.db")
    with al.record_run("w", agent="a", store=store) as run:
        for i in range(20):
            run.state[f"k{i}"] = "v" * 300
        deadline = time.monotonic() + 10
        while run.writer.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert built_on == {"agentlab-writer"}
    assert len(store.checkpoints(run.run_id)) == 20
    store.close()


def test_a_checkpoint_that_cannot_be_built_fails_its_run_at_the_next_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encode = state_module.RunState._encode

    def broken(self: Any, items: Any, *args: Any) -> Any:
        if "bad" in items:
            raise ValueError("cannot build this one")
        return encode(self, items, *args)

    monkeypatch.setattr(state_module.RunState, "_encode", broken)
    store = open_store(tmp_path / "f.db")
    with pytest.raises(al.RecordingError, match="cannot build this one"), \
            al.record_run("w", agent="a", store=store) as run:
        run.state["good"] = 1
        run.state["bad"] = 2
        run.state["after"] = 3
        run.flush()
    assert run.writer.failed[run.run_id].args == ("cannot build this one",)
    store.close()


def test_changes_from_two_threads_reach_the_tree_and_the_queue_in_one_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path / "t.db")
    with al.record_run("w", agent="a", store=store) as run:
        enqueue = run.writer.enqueue
        waiting, b_done = threading.Event(), threading.Event()

        def slow_enqueue(ev: Any) -> None:
            if threading.current_thread().name == "A" and not waiting.is_set():
                waiting.set()
                b_done.wait(0.5)  # B's change, made meanwhile, must still queue after A's
            enqueue(ev)

        monkeypatch.setattr(run.writer, "enqueue", slow_enqueue)

        def b() -> None:
            run.state["b"] = "y" * 300
            b_done.set()

        a_thread = threading.Thread(target=run.state.__setitem__, args=("a", "x" * 300),
                                    name="A")
        a_thread.start()
        assert waiting.wait(5)
        b_thread = threading.Thread(target=b, name="B")
        b_thread.start()
        b_thread.join()
        a_thread.join()
        final = run.state.snapshot()
    assert final == {"a": "x" * 300, "b": "y" * 300}
    assert [c.writes for c in store.checkpoints(run.run_id)] == [["a"], ["b"]]
    assert store.state_at(run.run_id) == final
    store.close()
