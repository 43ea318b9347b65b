"""Property tests: the canonical form, value trees, and export/import of random runs."""

from __future__ import annotations

import datetime as dt
import enum
import io
import math
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentlab.errors import PortabilityError
from agentlab.model import (
    INLINE_MAX,
    RefMap,
    TreeEncoder,
    TreeReader,
    canonical,
    canonical_body,
    check_portable,
    dumps,
    loads,
    node_children,
    portable,
)
from agentlab.model._canonical import INT64_MAX, INT64_MIN
from agentlab.store import PendingEvent, SqlStore, open_store

from .helpers import PG_SKIP, PG_URL

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------

BOUNDARY_INTS = [0, -1, INT64_MIN, INT64_MAX, INT64_MIN - 1, INT64_MAX + 1, 2**64 - 1, 2**64,
                 -(2**64), 10**30, -(10**30)]
ODD_CHARS = ["\x00", "\ufffd", "\\", '"', "\ud800", "\udfff", "\ud83d", "\ude00", "\u2028",
             "\x7f", "\ufeff", "/", "~"]

chars = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from(ODD_CHARS))
any_text = st.one_of(st.text(chars, max_size=12), st.sampled_from(["null", "\\u0000", ""]))
any_int = st.one_of(st.integers(), st.sampled_from(BOUNDARY_INTS))
any_float = st.floats(allow_nan=True, allow_infinity=True)
any_key = st.one_of(any_text, any_int, st.none(), st.booleans(), any_float)
any_leaf = st.one_of(st.none(), st.booleans(), any_int, any_float, any_text)

json_ish = st.recursive(
    any_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(any_key, inner, max_size=5),
    ),
    max_leaves=25,
)

# portable values: what the rule lets through unchanged
safe_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
safe_text = st.text(safe_chars, max_size=20)
long_text = st.text(safe_chars, min_size=200, max_size=700)
portable_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False), safe_text, long_text,
)
portable_values = st.recursive(
    portable_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=70),
        st.dictionaries(safe_text, inner, max_size=45),
    ),
    max_leaves=120,
)


# -- an independent statement of the portability rule ------------------------------------


def _bad_str(s: str) -> bool:
    return "\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def needs_fix(value: Any) -> bool:
    """Whether the portability rule has to change anything in ``value``."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return _bad_str(value)
    if isinstance(value, int):
        return not INT64_MIN <= value <= INT64_MAX
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(
            not isinstance(k, str) or _bad_str(k) or needs_fix(v) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return any(needs_fix(v) for v in value)
    raise AssertionError(f"unexpected {type(value)}")


def assert_portable_json(value: Any) -> None:
    """A parsed value PostgreSQL's json/jsonb and every JSON reader take as is."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        assert not _bad_str(value), repr(value)
    elif isinstance(value, int):
        assert INT64_MIN <= value <= INT64_MAX, value
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str) and not _bad_str(k), repr(k)
            assert_portable_json(v)
    else:
        assert isinstance(value, list)
        for v in value:
            assert_portable_json(v)


# -- (1) canonical -------------------------------------------------------------------


EDGE_VALUES = [INT64_MAX + 1, {"k": [2**64 - 1]}, [float("nan"), None], {None: "\x00"},
               {"\ud800": (1, 2)}, "\\u0000", INT64_MIN - 1]


def _with_edges(test: Any) -> Any:
    for v in EDGE_VALUES:
        test = example(v)(test)
    return test


@SETTINGS
@given(json_ish)
@_with_edges
def test_canonical_output_is_portable_stable_and_honest(value: Any) -> None:
    out, changed = canonical(value)
    assert isinstance(out, bytes)
    out.decode("utf-8")  # strict: no lone surrogates can hide in the bytes
    assert b"\\u0000" not in out.replace(b"\\\\", b"")
    parsed = orjson.loads(out)
    assert_portable_json(parsed)
    # changed paths are listed exactly when the rule had to change something
    assert bool(changed) == needs_fix(value), (out, changed)
    assert all(p == "" or p.startswith("/") for p in changed)
    # canonical stability: parse and dump again, same bytes; a second pass changes nothing
    assert dumps(parsed) == out
    assert canonical(parsed) == (out, [])
    # the slow, exact path agrees with whatever path canonical took
    fixed, changed_slow = portable(value)
    assert dumps(fixed) == out
    assert sorted(changed_slow) == sorted(changed)


@SETTINGS
@given(json_ish)
@_with_edges
def test_check_portable_rejects_exactly_the_non_portable(value: Any) -> None:
    if needs_fix(value):
        with pytest.raises(PortabilityError):
            check_portable(value, where="test value")
    else:
        check_portable(value)
    check_portable(loads(canonical(value)[0]))  # the repaired form always passes


def test_canonical_examples() -> None:
    assert canonical({"b": 1, "a": [1.5, "x"]}) == (b'{"a":[1.5,"x"],"b":1}', [])
    assert canonical(float("nan")) == (b'"NaN"', [""])
    assert canonical([float("inf"), float("-inf")]) == (b'["Infinity","-Infinity"]', ["/0", "/1"])
    assert canonical({"a": "x\x00y"}) == ('{"a":"x\ufffdy"}'.encode(), ["/a"])
    assert canonical("\ud800") == ('"\ufffd"'.encode(), [""])
    assert canonical({1: None, None: 2}) == (b'{"1":null,"null":2}', ["/1", "/null"])
    assert canonical(INT64_MAX) == (str(INT64_MAX).encode(), [])
    assert canonical(INT64_MIN - 1) == (f'"{INT64_MIN - 1}"'.encode(), [""])
    assert canonical({"a/b~": float("nan")})[1] == ["/a~1b~0"]


@pytest.mark.parametrize("n", [INT64_MAX + 1, 2**64 - 1])
def test_canonical_turns_unsigned_64_bit_ints_into_strings(n: int) -> None:
    """orjson writes integers up to 2**64-1, but the rule stops at the signed range."""
    assert canonical(n) == (f'"{n}"'.encode(), [""])
    assert canonical({"x": n}) == (f'{{"x":"{n}"}}'.encode(), ["/x"])


class _Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize("odd", [
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.date(2024, 1, 2),
    uuid.UUID(int=5),
    _Colour.RED,
])
def test_canonical_form_of_a_value_does_not_depend_on_its_neighbours(odd: Any) -> None:
    """A datetime (UUID, enum...) is written the same way whether or not some other part of
    the value needed repair: the fast path and the exact path must agree."""
    alone = loads(canonical({"v": odd})[0])["v"]
    with_null = loads(canonical({"v": odd, "other": None})[0])["v"]
    with_nan = loads(canonical({"v": odd, "other": float("nan")})[0])["v"]
    assert alone == with_null == with_nan


def test_canonical_of_deep_nesting_is_an_agentlab_error() -> None:
    deep: list[Any] = []
    cur = deep
    for _ in range(300):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    try:
        out, _ = canonical(deep)
    except PortabilityError:
        return
    assert loads(out) == deep


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values (PostgreSQL writes numbers as exact decimals: 1e16 -> 10..0)."""
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a == b if isinstance(a, int) and isinstance(b, int) else float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_json, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
@pytest.mark.postgres
def test_canonical_output_is_accepted_by_postgres_jsonb() -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from agentlab.store import normalise_url

    assert PG_URL is not None
    eng = create_engine(normalise_url(PG_URL), poolclass=NullPool)
    try:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:

            @settings(max_examples=60, deadline=None)
            @given(json_ish)
            def check(value: Any) -> None:
                out, _ = canonical(value)
                back = conn.execute(text("SELECT CAST(CAST(:j AS jsonb) AS text)"),
                                    {"j": out.decode()}).scalar()
                assert _same_json(orjson.loads(back), orjson.loads(out)), (back, out)

            check()
    finally:
        eng.dispose()


# -- (2) value trees -------------------------------------------------------------------


def _reorder(value: Any) -> Any:
    """The same value with every mapping's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


@SETTINGS
@given(portable_values)
def test_tree_round_trip_and_equal_roots(value: Any) -> None:
    enc = TreeEncoder()
    root = enc.node(value)
    reader = TreeReader(lambda hs: {h: enc.blobs[h] for h in hs if h in enc.blobs})
    assert dumps(reader.value(root)) == dumps(value)
    # every node: keyed by the SHA-256 of its canonical bytes; children all present
    import hashlib

    for h, data in enc.blobs.items():
        assert hashlib.sha256(data).hexdigest() == h
        assert dumps(loads(data)) == data
        assert set(node_children(loads(data))) <= set(enc.blobs)
    # equal values, built in another order by another encoder, give the same root
    enc2 = TreeEncoder()
    assert enc2.node(_reorder(value)) == root
    assert set(enc2.blobs) == set(enc.blobs)
    # encode() keeps small values inline, bigger ones become this same node
    h, inline = TreeEncoder().encode(value)
    if len(dumps(value)) <= INLINE_MAX:
        assert (h, inline) == (None, value)
    else:
        assert (h, inline) == (root, None)


@SETTINGS
@given(portable_values)
def test_encoding_a_value_from_its_bytes_gives_what_encoding_the_value_gives(value: Any) -> None:
    """What a deferred checkpoint builds from the canonical bytes fixed at assignment."""
    by_value, by_bytes = TreeEncoder(), TreeEncoder()
    assert by_bytes.encode_bytes(dumps(value)) == by_value.encode(value)
    assert by_bytes.blobs == by_value.blobs


@SETTINGS
@given(portable_values, portable_values)
def test_tree_roots_differ_for_different_values(a: Any, b: Any) -> None:
    ra, rb = TreeEncoder().node(a), TreeEncoder().node(b)
    assert (ra == rb) == (dumps(a) == dumps(b))


# Many entries, each small: long strings in every slot exhaust Hypothesis' entropy budget,
# and the property is about how many nodes one change rewrites, not about leaf size.
short_leaf = st.one_of(st.none(), st.booleans(), st.integers(INT64_MIN, INT64_MAX),
                       st.floats(allow_nan=False, allow_infinity=False),
                       st.text(safe_chars, max_size=6))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(safe_chars, max_size=6), short_leaf | st.lists(short_leaf, max_size=3),
                       min_size=33, max_size=80),
       safe_text, portable_leaf)
def test_tree_one_key_change_rewrites_few_nodes(state: dict[str, Any], key: str,
                                                new: Any) -> None:
    enc = TreeEncoder()
    enc.node(state)
    changed = {**state, key: new}
    enc2 = TreeEncoder()
    root2 = enc2.node(changed)
    fresh = set(enc2.blobs) - set(enc.blobs)
    # the new leaf (if any) plus the nodes on its path: a HAMT is at most a few levels deep
    assert len(fresh) <= 6
    reader = TreeReader(lambda hs: {h: enc2.blobs[h] for h in hs})
    assert dumps(reader.value(root2)) == dumps(changed)


ref_of = st.one_of(st.tuples(st.none(), short_leaf),
                  st.tuples(st.text("0123456789abcdef", min_size=64, max_size=64), st.none()))
ops = st.lists(st.tuples(st.integers(0, 119), st.none() | ref_of), min_size=1, max_size=150)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_a_kept_map_gives_the_root_a_fresh_encoder_gives(steps: list[tuple[int, Any]]) -> None:
    """Setting and deleting keys one at a time (splits into buckets past FANOUT keys and
    merges back below it), the kept map's root is always the one-shot encoding's, and
    every node under it was made at some step (nothing it reuses was never written)."""
    kept, entries = RefMap(), {}
    made: dict[str, bytes] = {}
    for n, ref in steps:
        key = f"key-{n}"
        if ref is None:
            kept.delete(key)
            entries.pop(key, None)
        else:
            kept.set(key, ref)
            entries[key] = ref
        enc = TreeEncoder()
        root = kept.root(enc)
        made.update(enc.blobs)
        assert root == TreeEncoder().map_from_refs(entries)
        assert len(kept) == len(entries)
    pending = [root]
    while pending:  # the map's own nodes (its values' hashes here are made up)
        h = pending.pop()
        assert h in made
        node = loads(made[h])
        if node["t"] == "h":
            pending.extend(node["b"].values())
    # a map of many keys, changed one key at a time, rewrites a few nodes, not all
    big = RefMap({f"key-{i}": (None, i) for i in range(200)})
    big.root(TreeEncoder())
    enc = TreeEncoder()
    big.set("key-7", (None, "changed"))
    assert big.root(enc) == TreeEncoder().map_from_refs(
        {**{f"key-{i}": (None, i) for i in range(200)}, "key-7": (None, "changed")})
    assert len(enc.blobs) == 2  # the leaf bucket and the top


# -- (3) export -> import of random runs -----------------------------------------------


payload = st.one_of(json_ish, long_text, st.lists(long_text, min_size=2, max_size=6))
event_spec = st.one_of(
    st.tuples(st.just("llm_call"), payload, st.integers(0, 10_000),
              st.floats(0, 5, allow_nan=False), st.sampled_from(["ok", "error"])),
    st.tuples(st.just("tool_call"), st.dictionaries(any_key, payload, max_size=3), payload,
              st.sampled_from(["ok", "error"])),
    st.tuples(st.just("step"), safe_text, payload),
    st.tuples(st.just("error"), any_text),
    st.tuples(st.just("retry"), st.integers(1, 5)),
    st.tuples(st.just("checkpoint"), st.dictionaries(any_key, payload, max_size=6)),
    st.tuples(st.just("tool_intent"), st.dictionaries(any_key, payload, max_size=3),
              st.booleans()),
)
run_spec = st.tuples(
    payload,                                             # task_input
    st.lists(event_spec, max_size=12),
    st.none() | st.sampled_from(["succeeded", "failed", "errored"]),
    st.lists(st.integers(1, 4), min_size=1, max_size=4),  # how to split into append calls
)


class _Run:
    """Builds a run the way the recorder does: canonical bodies with 'normalized'."""

    def __init__(self) -> None:
        self.run_id = str(uuid.uuid4())
        self.events: list[PendingEvent] = []
        self.ts = 1_700_000_000_000_000

    def add(self, kind: str, body: dict[str, Any],
            blobs: dict[str, bytes] | None = None) -> PendingEvent:
        body["kind"] = kind
        data = canonical_body(body)
        self.ts += 1000
        ev = PendingEvent(self.run_id, str(uuid.uuid4()), None, self.ts, kind, data,
                          blobs or {})
        self.events.append(ev)
        return ev


def _build(spec: Any) -> _Run:
    task_input, evs, end, _ = spec
    r = _Run()
    r.add("run_started", {"workflow": "wf", "agent_name": "a", "task_input": task_input})
    for e in evs:
        kind = e[0]
        if kind == "llm_call":
            r.add(kind, {"model": "m", "messages": [{"role": "user", "content": "q"}],
                         "response": e[1], "input_tokens": e[2], "output_tokens": e[2] // 3,
                         "cost_usd": e[3], "status": e[4]})
        elif kind == "tool_call":
            r.add(kind, {"tool": "t", "call_id": "c", "arguments": e[1], "result": e[2],
                         "status": e[3]})
        elif kind == "step":
            r.add(kind, {"name": e[1], "output": e[2]})
        elif kind == "error":
            r.add(kind, {"error": {"type": "E", "message": e[1]}})
        elif kind == "retry":
            r.add(kind, {"target": "x", "attempt": e[1], "error": {"type": "T", "message": ""}})
        elif kind == "checkpoint":
            state = loads(canonical(e[1])[0])
            enc = TreeEncoder()
            r.add(kind, {"root": enc.node(state), "writes": sorted(state)}, enc.blobs)
        else:  # tool_intent, maybe followed by its result
            intent = r.add(kind, {"tool": "t", "call_id": "i", "arguments": e[1],
                                  "idempotency_key": "k"})
            if e[2]:
                r.add("tool_call", {"tool": "t", "call_id": "i", "intent_id": intent.event_id,
                                    "result": None, "status": "ok"})
    if end:
        r.add("run_ended", {"status": end, "success": end == "succeeded", "score": 0.5})
    return r


@pytest.fixture(scope="module")
def stores() -> Iterator[tuple[SqlStore, SqlStore]]:
    """A source and a target SQLite store shared by the examples (run ids never repeat)."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = open_store(Path(d) / "src.db"), open_store(Path(d) / "dst.db")
        try:
            yield src, dst
        finally:
            src.close()
            dst.close()


RULE_CHANGED = {"nan": float("nan"), "inf": [float("-inf")], "big": -(2**70), "nul": "a\x00b",
                "lone": "\udc00", 7: {None: "x"}}


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(run_spec)
@example((RULE_CHANGED, [("checkpoint", RULE_CHANGED), ("llm_call", ["x" * 600] * 5, 1, 0.5,
                                                        "ok"),
                         ("tool_intent", {"a": RULE_CHANGED}, False)], "failed", [1]))
def test_export_import_round_trip_of_random_runs(stores: tuple[SqlStore, SqlStore],
                                                  spec: Any) -> None:
    _round_trip(stores, spec)


@pytest.mark.parametrize("n", [INT64_MAX + 1, 2**64 - 1])
def test_export_import_of_a_recorded_unsigned_64_bit_int(stores: tuple[SqlStore, SqlStore],
                                                          n: int) -> None:
    """What the recorder stores (via canonical) must import again: see the canonical test of
    the same name for the cause."""
    _round_trip(stores, ({"n": n}, [("step", "s", {"n": n})], "succeeded", [2]))


def _round_trip(stores: tuple[SqlStore, SqlStore], spec: Any) -> None:
    run = _build(spec)
    splits = spec[3]
    src, dst = stores
    i = 0
    k = 0
    while i < len(run.events):
        n = splits[k % len(splits)]
        src.append(run.events[i:i + n])
        i += n
        k += 1
    rid = run.run_id
    assert src.verify(rid)[0].ok
    out = io.BytesIO()
    src.export_runs([rid], out)
    res = dst.import_runs(io.BytesIO(out.getvalue()))
    assert res.imported == [rid]
    rep = dst.verify(rid)[0]
    assert rep.ok and rep.events == len(run.events)
    assert list(dst.raw_events(rid)) == list(src.raw_events(rid))
    assert dst.events(rid) == src.events(rid)
    assert dst.run(rid) == src.run(rid)
    assert dst.checkpoints(rid) == src.checkpoints(rid)
    assert dst.actions(rid) == src.actions(rid)
    for cp in src.checkpoints(rid):
        assert dst.state_at(rid, cp.seq) == src.state_at(rid, cp.seq)
    # the recorded payloads read back as the portable form of what was recorded
    for ev, got in zip(run.events, dst.events(rid), strict=True):
        body = loads(ev.body)
        for field in ("response", "result", "arguments", "task_input", "output"):
            if field in body:
                assert dumps(getattr(got, field)) == dumps(body[field])
    assert dst.import_runs(io.BytesIO(out.getvalue())).skipped == [rid]
