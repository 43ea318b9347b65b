"""The read-only fast path (taken from the ``@tool`` wrapper itself): what it stores, pinned
byte for byte, and what a forked child may do with its parent's run."""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import os
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
from agentlab.record._context import external_call_id_var, run_var
from agentlab.store import SqlStore, open_store


@al.tool
def lookup(account_id: str, *, detail: bool = False) -> dict[str, Any]:
    return {"account_id": account_id, "tier": "gold", "detail": detail}


@al.tool
def odd(kind: str) -> Any:
    if kind == "nan":
        return {"ratio": math.nan}
    if kind == "null":
        return {"note": "null", "missing": None}
    if kind == "secret":
        return {"token": "sk-proj-" + "a1B2c3D4" * 6}
    raise ValueError(f"no such kind: {kind}")


@al.tool
def outer(n: int) -> list[Any]:
    run = al.current_run()
    assert run is not None
    return [lookup(f"N{i}") for i in range(n)] + [run.state["k"]]


class Desk:
    @al.tool
    def ask(self, question: str) -> str:
        return question.upper()


def _scenario(*, fail: bool) -> None:
    lookup("A1")
    lookup(account_id="A2", detail=True)
    lookup("A3", detail=True)
    Desk().ask("why")
    outer(2)
    token = external_call_id_var.set("call_abc")
    try:
        lookup("A4")
    finally:
        external_call_id_var.reset(token)
    for kind in ("nan", "null", "secret"):
        odd(kind)
    if fail:  # its traceback names this checkout's paths and line numbers: not pinned
        with pytest.raises(ValueError):
            odd("boom")


def _recorded(path: Path) -> list[bytes]:
    store = open_store(path)
    ticks = itertools.count(1_700_000_000_000_000_000, 1_000_000)
    ids = (f"{i:032x}" for i in itertools.count(1))
    with al.record_run("w", agent="a", store=store, clock=lambda: next(ticks),
                       id_factory=lambda: next(ids), state={"k": 1}) as run:
        _scenario(fail=False)
    buf = io.BytesIO()
    store.export_runs([run.run_id], buf)
    store.close()
    return [ln for ln in buf.getvalue().splitlines() if b'"type":"header"' not in ln]


# The export of the scenario as recorded before the wrapper took the fast path itself
# (commit f3e0f98): any change to what a read-only call stores changes this digest.
PINNED = "f4492362fa5506591042d895216fd0d6f4d8bc16b465971bfffb7f01dadfb0cf"


def test_the_fast_path_stores_the_same_bytes_as_before(tmp_path: Path) -> None:
    lines = _recorded(tmp_path / "a.db")
    joined = b"\n".join(lines)
    assert b"sk-proj-a1B2" not in joined  # redacted by the writer
    assert joined.count(b'"kind":"tool_call"') == 11
    assert hashlib.sha256(joined).hexdigest() == PINNED


def test_the_fast_path_keeps_nesting_and_errors_with_generated_ids(tmp_path: Path) -> None:
    store = open_store(tmp_path / "b.db")
    with al.record_run("w", agent="a", store=store, state={"k": 1}) as run:
        _scenario(fail=True)
    calls = store.events(run.run_id, kinds=["tool_call"])
    by_id = {e.id: e for e in calls}
    nested = [e for e in calls if e.parent_id in by_id]
    assert [e.arguments for e in nested] == [{"account_id": "N0"}, {"account_id": "N1"}]
    assert all(by_id[e.parent_id].tool == "outer" for e in nested)
    assert sum(1 for e in calls if e.error is not None) == 1
    store.close()


def test_a_forked_child_cannot_record_through_the_parents_run(tmp_path: Path) -> None:
    db: SqlStore = open_store(tmp_path / "fork.db")
    with al.record_run("w", agent="a", store=db) as run:
        lookup("before")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the fast path must refuse, not queue into the parent's writer
            os.close(r)
            try:
                lookup("child")
                verdict = "recorded"
            except al.RecordingError as exc:
                verdict = "refused" if "another process" in str(exc) else str(exc)
            except BaseException as exc:
                verdict = repr(exc)
            os.write(w, verdict.encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        verdict = os.read(r, 4096).decode()
        os.close(r)
        lookup("after")
    assert verdict == "refused"
    args = [e.arguments["account_id"] for e in db.events(run.run_id, kinds=["tool_call"])]
    assert args == ["before", "after"]
    assert db.verify(run.run_id)[0].ok
    db.close()


def test_a_run_that_ended_runs_its_tools_unrecorded(tmp_path: Path) -> None:
    db = open_store(tmp_path / "ended.db")
    with al.record_run("w", agent="a", store=db) as run:
        pass
    token = run_var.set(run)  # a thread that outlived its run still sees it
    try:
        assert lookup("late") == {"account_id": "late", "tier": "gold", "detail": False}
    finally:
        run_var.reset(token)
    assert db.events(run.run_id, kinds=["tool_call"]) == []
    db.close()
