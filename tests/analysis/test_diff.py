"""State diffs: the tree diff agrees with the plain diff and skips unchanged subtrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

import agentlab as al
from agentlab.analysis import Change, diff_trees, diff_values, state_diff
from agentlab.model import TreeEncoder, TreeReader

keys = st.text(min_size=1, max_size=6)
leaves = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=300)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(keys, inner, max_size=40),
    max_leaves=120,
)


class CountingStore:
    """Blobs in memory, counting fetches to show which nodes a diff reads."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def add(self, value: Any) -> str:
        enc = TreeEncoder()
        root = enc.node(value)
        self.blobs.update(enc.blobs)
        return root

    def fetch(self, hashes: list[str]) -> dict[str, bytes]:
        self.fetched.extend(hashes)
        return {h: self.blobs[h] for h in hashes if h in self.blobs}


@given(values, values)
@settings(max_examples=150, deadline=None)
@example(False, 0)  # Python's == takes them as equal inside a dict; JSON does not
@example([1], [1.0])
def test_tree_diff_equals_plain_diff(a: Any, b: Any) -> None:
    s = CountingStore()
    ra, rb = s.add({"v": a}), s.add({"v": b})
    assert diff_trees(TreeReader(s.fetch), ra, rb) == diff_values({"v": a}, {"v": b})


@given(st.dictionaries(keys, values, max_size=80), st.data())
@settings(max_examples=80, deadline=None)
def test_tree_diff_after_small_edits(state: dict[str, Any], data: st.DataObject) -> None:
    edited = dict(state)
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(keys)
        if key in edited and data.draw(st.booleans()):
            del edited[key]
        else:
            edited[key] = data.draw(values)
    s = CountingStore()
    ra, rb = s.add(state), s.add(edited)
    assert diff_trees(TreeReader(s.fetch), ra, rb) == diff_values(state, edited)


def test_diff_reads_only_the_changed_paths() -> None:
    state: dict[str, Any] = {f"doc{i}": {"text": f"{i} " + "x" * 900, "n": i} for i in range(200)}
    state["log"] = [f"line {i} " + "y" * 40 for i in range(500)]
    edited = {**state, "doc7": {**state["doc7"], "n": -1}, "doc150": {"text": "new", "n": 150}}
    edited["log"] = [*state["log"][:-1], "last line changed"]
    del edited["doc42"]
    s = CountingStore()
    ra, rb = s.add(state), s.add(edited)
    changes = diff_trees(TreeReader(s.fetch), ra, rb)
    assert changes == [
        Change("change", "/doc150/text", old=state["doc150"]["text"], new="new"),
        Change("remove", "/doc42", old=state["doc42"]),
        Change("change", "/doc7/n", old=7, new=-1),
        Change("change", "/log/499", old=state["log"][499], new="last line changed"),
    ]
    assert changes == diff_values(state, edited)
    assert len(s.fetched) < 30, f"read {len(s.fetched)} of {len(s.blobs)} nodes"


# Cheap to generate yet large enough to cross FANOUT (32 keys) and INLINE_MAX (256 bytes).
cheap = st.none() | st.integers(-5, 5) | st.integers(0, 600).map(lambda n: "z" * n)
big_dicts = st.lists(st.tuples(st.integers(0, 120).map(str), cheap), min_size=33,
                     max_size=90).map(dict)


@given(big_dicts, big_dicts)
@settings(max_examples=60, deadline=None)
def test_tree_diff_of_hashed_mappings_equals_plain_diff(a: dict[str, Any], b: dict[str, Any]) -> None:
    s = CountingStore()
    merged = {**a, **dict(list(b.items())[:10])}
    ra, rb = s.add(a), s.add(merged)
    assert diff_trees(TreeReader(s.fetch), ra, rb) == diff_values(a, merged)


def test_state_diff_of_recorded_runs(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "d.db")
    with al.record_run("w", agent="a", store=store, state={"ticket": {"id": "T1"}}) as good:
        good.state["account"] = {"plan": "enterprise", "name": "Acme"}
        good.state["priority"] = "urgent"
    with al.record_run("w", agent="a", store=store, state={"ticket": {"id": "T1"}}) as bad:
        bad.state["account"] = {"plan": "standard", "name": "Acme"}
        bad.state["priority"] = "normal"
    cps = store.checkpoints(good.run_id)
    assert state_diff(store, good.run_id, from_seq=cps[0].seq, to_seq=cps[1].seq) == [
        Change("add", "/account", new={"plan": "enterprise", "name": "Acme"})]
    assert state_diff(store, good.run_id) == diff_values(
        {}, {"ticket": {"id": "T1"}, "account": {"plan": "enterprise", "name": "Acme"},
             "priority": "urgent"})
    assert state_diff(store, good.run_id, from_seq=None, other_run=bad.run_id) == [
        Change("change", "/account/plan", old="enterprise", new="standard"),
        Change("change", "/priority", old="urgent", new="normal"),
    ]
    store.close()
