"""Key order survives the record: a tool result or model response is served on replay with
its keys in the order the agent first saw them, small or large (moved to blobs), and through
export and import. An agent that writes a result into its next prompt with ``json.dumps``
(no ``sort_keys``) then makes the same request on replay, so strict replay is identical."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from agentlab.model import TreeEncoder, TreeReader, dumps, dumps_ordered
from agentlab.record import ModelReply, agent, llm, tool
from agentlab.recovery import replay
from agentlab.store import SqlStore

SEEN: list[str] = []
"""The key order of every result the agent was handed, in call order."""


def _unsorted(n: int, filler: int) -> dict[str, Any]:
    """A mapping whose keys are in reverse order, with nested reverse-ordered mappings and
    values of ``filler`` characters (large ones force the payload into blobs)."""
    return {f"k{i:03d}": {"z": "x" * filler, "a": i, "m": {"y": 1, "b": 2}}
            for i in reversed(range(n))}


@tool
def lookup(size: str) -> dict[str, Any]:
    if size == "small":
        return {"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [{"q": 1, "c": 2}]}
    if size == "wide":  # more keys than one tree node holds: a hashed (HAMT) node
        return _unsorted(80, 40)
    return _unsorted(8, 400)  # few keys, large values: a mapping node with references


@llm(model="echo", provider="tests")
def echo(messages: list[dict[str, str]]) -> ModelReply:
    prompt = messages[-1]["content"]
    return ModelReply({"said": prompt[:20], "tokens": len(prompt), "all": {"z": 1, "a": 2}})


@agent("key-order", version="1.0", name="order-bot")
def order_agent(task_input: Any) -> str:
    last = ""
    for size in ("small", "large", "wide"):
        result = lookup(size)
        SEEN.append(json.dumps(result))
        # Into the next prompt with no sort_keys, as most agents do:
        reply = echo([{"role": "user", "content": "Tool said: " + json.dumps(result)}])
        SEEN.append(json.dumps(reply))
        last = reply["said"]
    return last


def test_the_tree_keeps_a_payloads_key_order_and_a_states_hash_ignores_it() -> None:
    for value in (_unsorted(3, 400), _unsorted(80, 40), {"b": {"z": "x" * 300, "a": 1}, "a": 0}):
        enc = TreeEncoder(ordered=True)
        root = enc.node(value)
        got = TreeReader(lambda hs, blobs=enc.blobs: {h: blobs[h] for h in hs}).value(root)
        assert json.dumps(got) == json.dumps(value)  # order and content, all levels
    # Unordered (state) trees: the same content in another order has the same root hash.
    one, two = TreeEncoder(), TreeEncoder()
    value = _unsorted(80, 40)
    assert one.node(value) == two.node(dict(sorted(value.items())))
    assert dumps(value) == dumps(dict(sorted(value.items())))
    assert dumps_ordered(value) != dumps_ordered(dict(sorted(value.items())))


def test_strict_replay_serves_results_in_their_recorded_key_order(store: SqlStore,
                                                                  tmp_path: Path) -> None:
    SEEN.clear()
    run_id = order_agent.run(None, store=store).run_id
    recorded = list(SEEN)
    calls = [e for e in store.events(run_id) if e.kind == "tool_call"]
    assert [json.dumps(c.result) for c in calls] == recorded[0::2]  # as read from the store

    SEEN.clear()
    result = replay(store, run_id, mode="strict")
    assert result.identical, result.to_text()
    assert recorded == SEEN  # the agent was handed the same bytes, order included

    # Export and import keep the order too, and the imported run still verifies and replays.
    buf = io.BytesIO()
    store.export_runs([run_id], buf)
    other = SqlStore(f"sqlite:///{tmp_path / 'imported.db'}")
    try:
        other.import_runs(io.BytesIO(buf.getvalue()))
        assert other.verify(run_id)[0].ok
        SEEN.clear()
        assert replay(other, run_id, mode="strict").identical
        assert recorded == SEEN
    finally:
        other.close()
