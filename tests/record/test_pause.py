"""``run.pause(reason)``: a recorder that ends without an error leaves its run open (no
``run_ended``) and gives its lease up, so ``record_run(run_id=..., resume=True)`` carries it
on at once, here or in another process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.analysis import metrics_summary
from agentlab.cli import cli
from agentlab.errors import RecordingError
from agentlab.store import RunFilter, SqlStore


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


def test_a_paused_run_is_shown_paused_not_abandoned(store: SqlStore, store_cli_url: str
                                                    ) -> None:
    # A paused run has no lease, like an abandoned one; people, filters and metrics must
    # still tell the two apart.
    with al.record_run("wf", agent="bot", store=store) as run:
        run.pause("waits for a person")
    paused = run.run_id
    dead = "r-dead"
    with al.record_run("wf", agent="bot", store=store, run_id=dead, resume=True):
        pass
    with store.atomic() as conn:  # its recorder died: running, lease lapsed, no pause
        conn.exec_driver_sql("UPDATE agentlab_runs SET status = 'running', holder = "
                             "'elsewhere:1:x', held_until_us = 1 WHERE run_id = 'r-dead'")
    summary = store.run(paused)
    assert (summary.paused, summary.abandoned, summary.shown_status) == (True, False, "paused")
    assert store.run(dead).shown_status == "abandoned"
    assert [r.run_id for r in store.runs(RunFilter(status="paused"))] == [paused]
    assert [r.run_id for r in store.runs(RunFilter(status="abandoned"))] == [dead]
    assert store.runs(RunFilter(status="running")) == []
    [row] = metrics_summary(store, by=())
    assert (row.runs, row.abandoned, row.finished) == (2, 1, 0)
    out = CliRunner().invoke(cli, ["show", paused, "--store", store_cli_url])
    assert out.exit_code == 0 and "status   paused" in out.output
    assert "recorder paused it" in out.output
