"""Restart: a pending approval survives a process restart, is answered from the CLI in
another process, and the run completes.

Three processes share one store (a SQLite file, or a PostgreSQL schema when
``AGENTLAB_TEST_PG_URL`` is set). Agent A (``_restart_agent.py``) reaches a side-effecting
call that its policy sends to a human and waits; the test kills it with SIGKILL. Agent B,
the same script resuming the same run id, reaches the same call, finds the request A left
(same id, no second row) and waits on it. ``python -m agentlab approve ID --as NAME`` in a
third process answers it; B wakes, runs the call once and ends the run. The side effect
writes a line to a log file, so executions are counted from outside the record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentlab.errors import RunNotFoundError
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore, open_store

AGENT_SCRIPT = Path(__file__).with_name("_restart_agent.py")
TIMEOUT_S = 60.0
POLL_S = 0.05
TOKEN = "restart-jira-token-5c1e0b7d9a"
APPROVER = "restart-tester"
# What A has recorded when it reaches the gated call: run_started, two lookups and a
# checkpoint after each.
EVENTS_BEFORE_GATE = 5


class Agent:
    """One run of ``_restart_agent.py``, its stdout and stderr captured in files."""

    def __init__(self, name: str, url: str, run_id: str, side_log: Path, tmp: Path) -> None:
        self.name = name
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        env = {**os.environ, "AGENTLAB_RESTART_JIRA_TOKEN": TOKEN}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(AGENT_SCRIPT), url, run_id, str(side_log)],
                stdout=out, stderr=err, env=env, cwd=tmp,
            )

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        return (f"agent {self.name} (exit {self.proc.poll()})\n--- stdout\n{self.stdout()}"
                f"--- stderr\n{self.stderr()}")

    def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        """Poll ``check`` until it returns something truthy; fail if the agent exits first."""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            if self.proc.poll() is not None:
                found = check()
                if found:
                    return found
                pytest.fail(f"{self.name} exited before {what}\n{self.describe()}")
            time.sleep(POLL_S)
        pytest.fail(f"no {what} within {TIMEOUT_S:.0f} s\n{self.describe()}")

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} did not finish within {TIMEOUT_S:.0f} s\n{self.describe()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT_S)


@pytest.fixture
def shared(store_url: tuple[str, str | None], tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    """The URL the child processes use and the test's own store on the same data."""
    url, schema = store_url
    store = open_store(url, schema=schema)  # creates (and migrates) the PostgreSQL schema
    child_url = url if schema is None else f"{url}?options=-csearch_path%3D{schema}"
    try:
        yield child_url, store
    finally:
        store.close()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """Started agents, killed at teardown if a failed test left one running."""
    started: list[Agent] = []
    yield started
    for a in started:
        if a.proc.poll() is None:
            a.kill()


def _start(agents: list[Agent], name: str, url: str, run_id: str, side_log: Path,
           tmp: Path) -> Agent:
    agent = Agent(name, url, run_id, side_log, tmp)
    agents.append(agent)
    return agent


def _pending(store: SqlStore, run_id: str) -> Callable[[], ApprovalRequest | None]:
    """A check: the run's pending request, once the run's events before it are stored too
    (A is killed only when what it recorded before the call is durable)."""

    def check() -> ApprovalRequest | None:
        found = store.approvals(status="pending", run_id=run_id)
        if not found:
            return None
        try:
            if store.run(run_id).last_seq < EVENTS_BEFORE_GATE:
                return None
        except RunNotFoundError:  # its run_started is still in A's writer queue
            return None
        assert len(found) == 1, f"more than one pending request: {found}"
        return found[0]

    return check


def _approve_from_cli(url: str, request_id: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentlab", "approve", request_id[:12], "--as", APPROVER,
         "--store", url],
        capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp, env=dict(os.environ),
    )


def _executions(side_log: Path) -> list[str]:
    return side_log.read_text(encoding="utf-8").splitlines() if side_log.exists() else []


def test_pending_approval_survives_a_restart_and_is_answered_from_the_cli(
    shared: tuple[str, SqlStore], agents: list[Agent], tmp_path: Path,
) -> None:
    url, store = shared
    run_id = "restart-run-1"
    side_log = tmp_path / "side-effects.log"
    t0 = time.monotonic()

    # A asks for approval, and is killed while it waits.
    a = _start(agents, "A", url, run_id, side_log, tmp_path)
    request = a.wait_for("a pending approval from A", _pending(store, run_id))
    assert "WAITING" in a.stdout()
    a.kill()
    assert a.proc.returncode == -signal.SIGKILL
    t_killed = time.monotonic()

    after_kill = store.approval(request.id)
    assert after_kill.status == "pending", "the request did not outlive the process that asked"
    assert after_kill.action is None and after_kill.consumed_at is None
    assert after_kill.tool == "create_issue" and after_kill.grant == "restart-jira-writer"
    assert _executions(side_log) == [], "the gated tool ran without a decision"
    assert store.run(run_id).status == "running"

    # B resumes the run, reaches the same call and waits on the same request.
    b = _start(agents, "B", url, run_id, side_log, tmp_path)
    b.wait_for("B announcing the request A left", lambda: request.id in b.stderr())
    rows = store.approvals(run_id=run_id)
    assert [r.id for r in rows] == [request.id], f"B asked again instead of resuming: {rows}"
    assert rows[0].call_key == request.call_key and rows[0].status == "pending"
    assert b.proc.poll() is None and "CREATED" not in b.stdout(), "B did not wait"
    assert _executions(side_log) == []

    # A third process answers from the command line.
    cli = _approve_from_cli(url, request.id, tmp_path)
    assert cli.returncode == 0, f"agentlab approve failed\n{cli.stdout}\n{cli.stderr}"
    assert f"approved {request.id}" in cli.stdout and APPROVER in cli.stdout
    t_approved = time.monotonic()

    assert b.finish() == 0, b.describe()
    t_done = time.monotonic()
    assert "CREATED SUP-101" in b.stdout() and "DONE" in b.stdout(), b.describe()

    # Exactly one execution, by B.
    runs = _executions(side_log)
    assert len(runs) == 1, f"the side effect ran {len(runs)} times: {runs}"
    assert runs[0].startswith(f"{b.proc.pid} SUP "), runs

    # The decision: made from the CLI by the tester, consumed once, by the resumed run.
    decided = store.approvals(run_id=run_id)
    assert len(decided) == 1, decided
    req = decided[0]
    assert req.id == request.id
    assert (req.status, req.action, req.channel, req.decided_by) == (
        "approved", "approve", "cli", APPROVER)
    assert req.consumed_at is not None and req.consumed_by == f"restart-bot@{run_id}"

    # The record: one run, resumed, with the call approved and run once; chain intact.
    summary = store.run(run_id)
    assert summary.status == "succeeded" and summary.success is True
    assert summary.approval_count == 1
    assert summary.denied_count == 0
    events = store.events(run_id)
    kinds = [e.kind for e in events]
    assert kinds.count("run_started") == 1 and kinds.count("run_ended") == 1
    assert kinds.count("run_resumed") == 1, kinds
    resumed = next(e for e in events if e.kind == "run_resumed")
    assert resumed.from_seq >= EVENTS_BEFORE_GATE
    intents = [e for e in events if e.kind == "tool_intent"]
    calls = [e for e in events if e.kind == "tool_call" and e.tool == "create_issue"]
    assert len(intents) == 1 and len(calls) == 1, kinds
    call: Any = calls[0]
    assert call.status == "ok" and call.result == {"key": "SUP-101"}
    assert call.approval == request.id and call.seq > resumed.seq
    approvals = [e for e in events if e.kind == "approval"]
    assert len(approvals) == 1, kinds
    approval: Any = approvals[0]
    assert (approval.request_id, approval.by, approval.channel) == (request.id, APPROVER, "cli")
    report = store.verify(run_id)[0]
    assert report.ok, report
    assert store.state_at(run_id)["issue"] == {"key": "SUP-101"}

    # A generous bound: the happy path takes a few seconds (see the timings on failure).
    timings = (f"A to pending+kill {t_killed - t0:.2f} s, B waiting + CLI approve "
               f"{t_approved - t_killed:.2f} s, B done {t_done - t_approved:.2f} s")
    assert t_done - t0 < TIMEOUT_S, timings


def test_a_finished_run_is_not_resumed_and_runs_nothing(
    shared: tuple[str, SqlStore], agents: list[Agent], tmp_path: Path,
) -> None:
    url, store = shared
    run_id = "restart-run-2"
    side_log = tmp_path / "side-effects.log"

    first = _start(agents, "first", url, run_id, side_log, tmp_path)
    request = first.wait_for("a pending approval", _pending(store, run_id))
    cli = _approve_from_cli(url, request.id, tmp_path)
    assert cli.returncode == 0, f"agentlab approve failed\n{cli.stdout}\n{cli.stderr}"
    assert first.finish() == 0, first.describe()
    assert len(_executions(side_log)) == 1
    before = store.run(run_id)
    assert before.status == "succeeded"
    approvals_before = store.approvals(run_id=run_id)

    again = _start(agents, "again", url, run_id, side_log, tmp_path)
    assert again.finish() == 2, again.describe()
    assert "has already ended (succeeded)" in again.stderr(), again.describe()
    assert "STARTED" not in again.stdout() and "WAITING" not in again.stdout()

    assert len(_executions(side_log)) == 1, "a finished run ran its side effect again"
    after = store.run(run_id)
    assert (after.last_seq, after.head_hash, after.status) == (
        before.last_seq, before.head_hash, before.status), "the refused resume wrote events"
    assert store.approvals(run_id=run_id) == approvals_before
    assert store.verify(run_id)[0].ok
