"""Abandoned runs: a recording process killed with SIGKILL mid-call or mid-approval leaves its
run marked running; once the run's lease lapses, listings, summaries, metrics and the
approvals list say it is abandoned (its pending request orphaned), while a live run, however
slow, keeps renewing its lease and is never reported so. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.analysis import metrics_summary
from agentlab.cli import cli
from agentlab.store import RunFilter, SqlStore

CHILD = Path(__file__).with_name("_abandon_child.py")
LEASE_S = 1.0


@pytest.fixture
def child_url(store: SqlStore, store_url: tuple[str, str | None]) -> str:
    url, schema = store_url
    al.issue_grant(store, "abandon-bot-all", principal="abandon-bot", owner="tests",
                   workflow="abandon", scopes=["**"], expires_in=timedelta(hours=1))
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGENTLAB_RUN_LEASE_S", str(LEASE_S))
    yield


def _kill_when(url: str, mode: str, ready: str) -> str:
    """Start the child, wait for its ``ready`` line, SIGKILL it: the run id."""
    proc = subprocess.Popen([sys.executable, str(CHILD), url, mode], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "AGENTLAB_RUN_LEASE_S": str(LEASE_S)})
    assert proc.stdout is not None
    run_id = ""
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("STARTED "):
            run_id = line.split()[1]
        if line.startswith(ready) or time.monotonic() > deadline:
            break
    if mode == "approval":  # the request is written by the waiting run: wait for it
        store = al.open_store(url)
        try:
            while not store.approvals(status="pending", run_id=run_id):
                assert time.monotonic() < deadline, "the child never asked for approval"
                time.sleep(0.05)
        finally:
            store.close()
    else:  # past the writer's flush interval: the run's start (and lease) are stored
        time.sleep(0.6)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert run_id
    return run_id


@pytest.mark.parametrize("mode", ["call", "approval"])
def test_a_killed_recorder_leaves_an_abandoned_run(store: SqlStore, child_url: str,
                                                  mode: str) -> None:
    run_id = _kill_when(child_url, mode, "IN CALL" if mode == "call" else "STARTED")
    time.sleep(LEASE_S + 0.5)
    summary = store.run(run_id)
    assert summary.status == "running"  # what the record says: nobody ended it
    assert summary.abandoned and summary.shown_status == "abandoned"
    assert [r.run_id for r in store.runs(RunFilter(status="abandoned"))] == [run_id]
    assert store.runs(RunFilter(status="running")) == []
    [row] = metrics_summary(store, by=())
    assert (row.runs, row.abandoned, row.finished) == (1, 1, 0)
    assert store.verify(run_id)[0].ok  # intact, only left behind

    runner = CliRunner()
    listed = runner.invoke(cli, ["runs", "--store", child_url])
    assert listed.exit_code == 0 and "abandoned" in listed.output, listed.output
    shown = runner.invoke(cli, ["show", run_id, "--store", child_url])
    assert "status   abandoned" in shown.output and "agentlab resume" in shown.output
    if mode == "approval":
        pending = runner.invoke(cli, ["approvals", "--store", child_url])
        assert "orphaned" in pending.output, pending.output


def test_a_live_slow_run_is_never_abandoned(store: SqlStore, short_lease: None) -> None:
    al.issue_grant(store, "slow-bot-all", principal="slow-bot", owner="tests",
                   workflow="slow", scopes=["**"], expires_in=timedelta(hours=1))
    seen: list[tuple[bool, str]] = []

    @al.tool
    def slow(key: str) -> str:
        for _ in range(6):  # three lease lengths, asking how the run looks meanwhile
            time.sleep(LEASE_S / 2)
            r = store.run(run_id)
            seen.append((r.abandoned, r.shown_status))
        return key

    with al.record_run("slow", agent="slow-bot", store=store, grants=["slow-bot-all"]) as run:
        run_id = run.run_id
        slow("k")
    assert seen and all(s == (False, "running") for s in seen), seen
    assert store.run(run_id).status == "succeeded" and not store.run(run_id).abandoned
    assert store.runs(RunFilter(status="abandoned")) == []
