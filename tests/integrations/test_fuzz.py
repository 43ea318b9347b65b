"""Malformed input, many times over: every importer (tau-bench, SWE-agent, Who&When, OTLP and
agentlab's own portable form), fed 1,000 damaged variants of a real
file each, either imports whole runs or refuses with a typed error that names the file,
and never leaves part of a run behind.

Each variant is one seeded damage to a small real file of the format (from the vendored
traces, or a recorded agentlab run): truncated bytes, a value of the wrong type, NaN, an
integer past 64 bits, nesting thousands deep, invalid UTF-8, a lone surrogate, a NUL, a
key written twice, a list item repeated (duplicate ids), a list shuffled, times moved
backwards (clock skew). After every import the store is checked: a refused file added no
run, and every run it holds verifies.

``AGENTLAB_FUZZ_CASES`` sets the variants per format (default 1,000).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
from agentlab.errors import AgentlabError, ImportFormatError
from agentlab.integrations import (
    export_otlp,
    import_otlp,
    import_swe_agent,
    import_tau_bench,
    import_who_and_when,
)
from agentlab.integrations._files import read_source
from agentlab.store import SqlStore

CASES = int(os.environ.get("AGENTLAB_FUZZ_CASES", "1000"))
THIRD = Path(__file__).parents[2] / "sample_traces/third_party"


# -- the seeds: a small real file of each format ------------------------------------------------


def _tau_bench() -> Any:
    runs = json.loads(read_source(THIRD / "tau-bench/gpt-4o-airline.subset.json.gz"))
    return runs[:2]


def _swe_agent() -> Any:
    traj = json.loads(read_source(
        THIRD / "swe-agent/marshmallow-code__marshmallow-1867.function_calling_replace.traj.gz"))
    traj["trajectory"] = traj["trajectory"][:3]
    traj["history"] = traj["history"][:6]
    return traj


def _who_and_when() -> Any:
    return json.loads(read_source(THIRD / "who-and-when/algorithm-generated/1.json.gz"))


def _otlp(tmp: Path) -> Any:
    store = al.open_store(tmp / "otlp-seed.db")
    run_id = _record(store)
    out = io.BytesIO()
    export_otlp(store, [run_id], out)
    store.close()
    return json.loads(out.getvalue().splitlines()[0])


def _record(store: SqlStore) -> str:
    @al.tool
    def lookup(account_id: str) -> dict[str, Any]:
        return {"account_id": account_id, "plan": "standard", "seats": 12}

    with al.record_run("wf", agent="bot", store=store, task_id="T-1") as run:
        lookup("A-1")
        run.state["plan"] = "standard"
        run.outcome(success=False)
    return run.run_id


def _agentlab(tmp: Path) -> bytes:
    store = al.open_store(tmp / "seed.db")
    run_id = _record(store)
    out = io.BytesIO()
    store.export_runs([run_id], out)
    store.close()
    return out.getvalue()


# -- damage ---------------------------------------------------------------------------------------


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*at, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*at, i)))
    return out


def _get(node: Any, at: tuple[Any, ...]) -> Any:
    for k in at:
        node = node[k]
    return node


def _set(root: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    _get(root, at[:-1])[at[-1]] = value
    return root


_DEEP = "\u2063deep\u2063"
_WRONG = [None, True, 0, -1, 3.5, "", "x", [], {}, [1, "two"], {"k": None}]


def _structural(rng: random.Random, seed: Any) -> bytes:
    doc = json.loads(json.dumps(seed))
    paths = _paths(doc)
    at = rng.choice(paths)
    kind = rng.choice(["type", "nan", "huge", "deep", "nul", "surrogate", "dup_item",
                       "shuffle", "skew", "drop"])
    if kind == "type":
        doc = _set(doc, at, rng.choice(_WRONG))
    elif kind == "nan":
        doc = _set(doc, at, rng.choice([float("nan"), float("inf"), -float("inf")]))
    elif kind == "huge":
        doc = _set(doc, at, rng.choice([2**64, -(2**70), 10**30]))
    elif kind == "deep":  # spliced in as text: json itself cannot write it
        depth = rng.choice([600, 2_000, 20_000])
        doc = _set(doc, at, _DEEP)
        text = json.dumps(doc, allow_nan=True)
        return text.replace(json.dumps(_DEEP), "[" * depth + "1" + "]" * depth, 1).encode()
    elif kind in ("nul", "surrogate"):
        strings = [p for p in paths if isinstance(_get(doc, p), str)] or [at]
        at = rng.choice(strings)
        text = _get(doc, at) if isinstance(_get(doc, at), str) else ""
        cut = rng.randint(0, len(text))
        doc = _set(doc, at, text[:cut] + ("\x00" if kind == "nul" else "\ud800") + text[cut:])
    elif kind == "dup_item":
        lists = [p for p in paths if isinstance(_get(doc, p), list) and _get(doc, p)] or [at]
        at = rng.choice(lists)
        items = _get(doc, at)
        if isinstance(items, list) and items:
            items.insert(rng.randint(0, len(items)), json.loads(json.dumps(rng.choice(items))))
    elif kind == "shuffle":
        lists = [p for p in paths if isinstance(_get(doc, p), list) and len(_get(doc, p)) > 1]
        if lists:
            rng.shuffle(_get(doc, rng.choice(lists)))
    elif kind == "skew":
        numbers = [p for p in paths if isinstance(_get(doc, p), int | float)
                   and not isinstance(_get(doc, p), bool)]
        if numbers:
            at = rng.choice(numbers)
            doc = _set(doc, at, -abs(_get(doc, at)) - 10**9)
    elif kind == "drop" and at:
        parent = _get(doc, at[:-1])
        del parent[at[-1]]
    # NaN and infinities become JSON's non-standard literals; a lone surrogate an escape
    return json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")


def _textual(rng: random.Random, data: bytes) -> bytes:
    kind = rng.choice(["truncate", "utf8", "dup_key", "garbage"])
    cut = rng.randint(0, len(data))
    if kind == "truncate":
        return data[:cut]
    if kind == "utf8":
        return data[:cut] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]) + \
            data[cut:]
    if kind == "dup_key":
        at = data.find(b'{"', cut)
        if at < 0:
            at = data.find(b'{"')
        if at < 0:
            return data + b"{"
        end = data.find(b'":', at)
        key = data[at + 1: end + 1] if end > at else b'"k"'
        return data[: at + 1] + key + b":null," + data[at + 1:]
    return data[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[cut:]


def _variants(seed_bytes: bytes, seed_doc: Any, n: int, salt: str) -> list[bytes]:
    rng = random.Random(f"agentlab-fuzz-{salt}")
    out = []
    for _ in range(n):
        if seed_doc is not None and rng.random() < 0.7:
            out.append(_structural(rng, seed_doc))
        else:
            out.append(_textual(rng, seed_bytes))
    return out


# -- the check ------------------------------------------------------------------------------------


def _fuzz(store: SqlStore, tmp: Path, variants: list[bytes], suffix: str,
          load: Callable[[Path], object]) -> dict[str, int]:
    tally = {"imported": 0, "refused": 0}
    known = {r.run_id for r in store.runs()}
    for i, data in enumerate(variants):
        path = tmp / f"case-{i}{suffix}"
        path.write_bytes(gzip.compress(data, 1) if i % 7 == 0 else data)
        try:
            load(path)
        except AgentlabError as exc:
            assert isinstance(exc, ImportFormatError), f"case {i}: {exc!r}"
            assert str(path) in str(exc), f"case {i}: the error does not name the file: {exc}"
            now = {r.run_id for r in store.runs()}
            assert now == known, f"case {i}: a refused file left runs {now - known}"
            tally["refused"] += 1
        else:
            now = {r.run_id for r in store.runs()}
            for run_id in now - known:
                assert all(v.ok for v in store.verify(run_id)), f"case {i}: {run_id} is broken"
                assert store.events(run_id), f"case {i}: {run_id} cannot be read back"
            known = now
            tally["imported"] += 1
        finally:
            path.unlink()
    return tally


FORMATS: dict[str, tuple[Callable[[Path], Any] | None, str]] = {
    "tau-bench": (lambda _: _tau_bench(), ".json"),
    "swe-agent": (lambda _: _swe_agent(), ".traj"),
    "who-and-when": (lambda _: _who_and_when(), ".json"),
    "otlp": (_otlp, ".json"),
    "agentlab": (None, ".jsonl"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_damaged_files_import_whole_or_are_refused_by_name(tmp_path: Path, fmt: str) -> None:
    store = al.open_store(tmp_path / "fuzz.db")
    seed_of, suffix = FORMATS[fmt]
    if seed_of is None:
        seed_bytes, seed_doc = _agentlab(tmp_path), None
        lines = [json.loads(line) for line in seed_bytes.splitlines()]
        variants = _variants(seed_bytes, None, CASES // 2, fmt) + [
            _structural_lines(random.Random(f"{fmt}-{i}"), lines)
            for i in range(CASES - CASES // 2)]
    else:
        seed_doc = seed_of(tmp_path)
        seed_bytes = json.dumps(seed_doc).encode()
        variants = _variants(seed_bytes, seed_doc, CASES, fmt)
    load: Callable[[Path], object] = {
        "tau-bench": lambda p: import_tau_bench(p, store),
        "swe-agent": lambda p: import_swe_agent(p, store),
        "who-and-when": lambda p: import_who_and_when(p, store),
        "otlp": lambda p: import_otlp(p, store),
        "agentlab": lambda p: store.import_runs(p),
    }[fmt]
    tally = _fuzz(store, tmp_path, variants, suffix, load)
    assert sum(tally.values()) == CASES
    assert tally["refused"] > CASES // 10, tally  # the damage is real, and is seen
    store.close()


def _structural_lines(rng: random.Random, lines: list[Any]) -> bytes:
    """One agentlab export damaged in one line's structure (or in the line order)."""
    out = [json.dumps(line).encode() for line in lines]
    if rng.random() < 0.15:
        rng.shuffle(out)
    else:
        i = rng.randrange(len(lines))
        out[i] = _structural(rng, lines[i])
    return b"\n".join(out) + b"\n"
