"""``run.pause(reason)``: a recorder that ends without an error leaves its run open (no
``run_ended``) and gives its lease up, so ``record_run(run_id=..., resume=True)`` carries it
on at once, here or in another process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import agentlab as al
from agentlab.errors import RecordingError
from agentlab.store import SqlStore


@al.tool
def lookup(key: str) -> str:
    return key.upper()


def test_a_paused_run_stays_open_and_free_to_resume(store: SqlStore) -> None:
    with al.record_run("wf", agent="bot", store=store, run_id="r-pause", resume=True) as run:
        assert lookup("a") == "A"
        run.pause("waits for a person")
    summary = store.run("r-pause")
    assert summary.status == "running"
    assert [e.kind for e in store.events("r-pause")] == ["run_started", "tool_call"]
    assert summary.holder == "paused"
    assert summary.held_until is not None and summary.held_until < datetime.now(UTC)

    with al.record_run("wf", agent="bot", store=store, run_id="r-pause", resume=True) as run:
        assert lookup("a") == "A"  # served from the record
        assert lookup("b") == "B"
    assert [e.kind for e in store.events("r-pause")] == [
        "run_started", "tool_call", "run_resumed", "tool_call", "run_ended"]
    assert store.run("r-pause").status == "succeeded"


def test_an_error_ends_a_paused_run_as_usual(store: SqlStore) -> None:
    with pytest.raises(ValueError), al.record_run("wf", agent="bot", store=store) as run:
        run.pause("waits")
        raise ValueError("boom")
    assert store.run(run.run_id).status == "errored"


def test_an_async_run_pauses_too(store: SqlStore) -> None:
    async def go() -> str:
        async with al.record_run("wf", agent="bot", store=store) as run:
            run.pause("waits")
        return run.run_id

    run_id = asyncio.run(go())
    assert store.run(run_id).status == "running"
    assert [e.kind for e in store.events(run_id)] == ["run_started"]


def test_a_pause_says_why(store: SqlStore) -> None:
    with al.record_run("wf", agent="bot", store=store) as run:
        with pytest.raises(RecordingError, match="needs a reason"):
            run.pause("")
    assert store.run(run.run_id).status == "succeeded"
