"""Crash safety: a recording process killed with SIGKILL at a random moment loses nothing
it acknowledged, leaves every hash chain intact and every side effect classifiable.

How it works
------------
``_crash_child.py`` records runs into one SQLite file in an endless loop: read-only
``@tool`` calls (queued to the background writer), ``run.state`` assignments (checkpoint
events), ``llm_call`` events and ``@tool(side_effect=True)`` calls (write-ahead intent,
then result), with ``run.flush()`` every 1-12 events. It writes acknowledgement lines to
stdout and flushes stdout after each one (see the child's docstring for the protocol).

Acknowledgement scheme: the child counts the events it records in the current run
(run_started 1, tool call 1, state assignment 1, llm_call 1, side-effecting call 2). After
``run.flush()`` returns, every event recorded so far is committed, so it prints
``ACK <run_id> <n>``: the run's first ``n`` events are durable (the child also checks
``store.run(run_id).last_seq == n`` and prints ``BAD`` otherwise). Inside a side-effecting
tool's body the intent has been committed together with everything queued before it, so
``STARTED <marker> <run_id> <n>`` is also an acknowledgement of ``n`` events; so is
``DONE`` (result committed) and ``ENDED`` (the run's final count).

Each iteration starts a child, waits for ``READY`` (the store is open), lets it record for
a seeded random 0.05-0.6 s, SIGKILLs it and then asserts, re-opening the store:

* 0 acknowledged events lost: every acknowledged run has ``last_seq >= n`` and its events
  are exactly seq 1..last_seq; no (run_id, seq) is stored twice (GROUP BY ... HAVING);
* ``store.verify()`` is ok for every run the child touched;
* every side-effecting call is classified by ``store.actions``: ``DONE`` => "finished";
  ``STARTED`` without ``DONE`` => "finished" or "started-not-finished"; nothing is
  "finished" whose body never started, and nothing is "failed";
* restart works: all iterations share one store file, so every child after the first
  opens (and migrates) a store whose last writer was just killed, and records into it;
  after the last kill a final child records a complete run and exits cleanly.

Iterations: ``AGENTLAB_CRASH_ITERATIONS`` (default 50). The kill delays come from
``AGENTLAB_CRASH_SEED`` (random when unset; a failure names it so it can be reproduced).
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from agentlab.model import ActionStatus
from agentlab.store import SqlStore, open_store

from ._checks import seq_problems

ITERATIONS = int(os.environ.get("AGENTLAB_CRASH_ITERATIONS", "50"))
CHILD = Path(__file__).with_name("_crash_child.py")
START_TIMEOUT_S = 60.0


class Child:
    """A ``_crash_child.py`` process whose stdout lines are collected by a thread."""

    def __init__(self, mode: str, db: Path, seed: int, workdir: Path) -> None:
        self.seed = seed
        self.stderr_path = workdir / f"child-{mode}-{seed}.stderr"
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode, str(db), str(seed)],
            cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self.lines: list[str] = []
        self.loaded = threading.Event()
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):  # a line cut short by the kill
                break
            line = raw.decode("utf-8").rstrip("\n")
            self.lines.append(line)
            if line == "LOADED":
                self.loaded.set()
            elif line == "READY":
                self.ready.set()
        self.loaded.set()
        self.ready.set()

    def go(self) -> None:
        """Let the child open the store and start recording (it waits for this line)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by the caller
            self.proc.stdin.write(b"GO\n")
            self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait()
        self._reader.join(timeout=30)
        self._stderr.close()
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        return rc

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.stderr_path.read_text("utf-8", errors="replace")[-n:]
        except OSError:
            return ""

    def report(self) -> str:
        return (
            f"child exit code {self.proc.returncode}; last stdout lines:\n  "
            + "\n  ".join(self.lines[-15:])
            + f"\nchild stderr (tail):\n{self.stderr_tail()}"
        )


class Outcome:
    """What one child acknowledged, parsed from its stdout."""

    def __init__(self, lines: list[str]) -> None:
        self.acked: dict[str, int] = {}
        self.started: dict[str, str] = {}  # marker -> run_id
        self.done: set[str] = set()
        self.ended: set[str] = set()
        self.bad: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            tag, *rest = line.split()
            if tag == "BAD":
                self.bad.append(line)
            elif tag in ("ACK", "ENDED"):
                self._ack(rest[0], int(rest[1]))
                if tag == "ENDED":
                    self.ended.add(rest[0])
            elif tag in ("STARTED", "DONE"):
                marker, run_id, n = rest[0], rest[1], int(rest[2])
                self._ack(run_id, n)
                self.started[marker] = run_id
                if tag == "DONE":
                    self.done.add(marker)

    def _ack(self, run_id: str, n: int) -> None:
        self.acked[run_id] = max(self.acked.get(run_id, 0), n)


def check_store(store: SqlStore, out: Outcome, known: set[str]) -> tuple[list[str], set[str]]:
    """Every assertion of the module docstring; returns (problems, run ids now stored)."""
    problems = list(out.bad)
    summaries = {s.run_id: s for s in store.runs()}
    for run_id, n in sorted(out.acked.items()):
        s = summaries.get(run_id)
        if s is None:
            problems.append(f"run {run_id}: {n} events acknowledged, but the run is not stored")
        elif s.last_seq < n:
            problems.append(f"run {run_id}: {n} events acknowledged, only {s.last_seq} stored "
                            f"({n - s.last_seq} lost)")
        if run_id in known:
            problems.append(f"run {run_id} was acknowledged by this child but existed before it")
    problems.extend(seq_problems(store))

    new = sorted(set(summaries) - known)
    actions: dict[str, ActionStatus] = {}
    for run_id in new:
        report = store.verify(run_id)[0]
        if not report.ok:
            problems.append(f"run {run_id}: verify failed at seq {report.first_bad_seq}: "
                            f"{report.reason}")
        s = summaries[run_id]
        if run_id in out.ended:
            kinds = [e.kind for e in store.events(run_id, kinds=["run_ended"])]
            if s.status != "succeeded" or kinds != ["run_ended"]:
                problems.append(f"run {run_id} ended (ENDED printed) but its status is "
                                f"{s.status!r} and it has run_ended events {kinds}")
        elif s.status not in ("running", "succeeded"):
            problems.append(f"run {run_id}: status {s.status!r} after a kill")
        for a in store.actions(run_id):
            marker = str(a.arguments.get("marker"))
            actions[marker] = a
            if a.idempotency_key != marker:
                problems.append(f"action {marker}: idempotency key {a.idempotency_key!r}")
            if a.state == "failed":
                problems.append(f"action {marker} classified 'failed'; no call failed")
            elif a.state == "finished":
                if marker not in out.started:
                    problems.append(f"action {marker} is classified 'finished' but its body "
                                    "never started (no STARTED line)")
                if a.result_seq is None or a.result_seq <= a.intent_seq:
                    problems.append(f"action {marker}: result seq {a.result_seq} is not after "
                                    f"intent seq {a.intent_seq}")

    for marker, run_id in sorted(out.started.items()):
        a = actions.get(marker)
        if a is None:
            problems.append(f"action {marker} (run {run_id}) printed STARTED, so its intent "
                            "was committed, but store.actions() does not list it")
        elif a.run_id != run_id:
            problems.append(f"action {marker} listed under run {a.run_id}, not {run_id}")
        elif marker in out.done and a.state != "finished":
            problems.append(f"action {marker} printed DONE (result committed) but is "
                            f"classified {a.state!r}")
        elif a.state not in ("finished", "started-not-finished"):
            problems.append(f"action {marker} printed STARTED but is classified {a.state!r}")
    return problems, set(summaries)


@pytest.mark.slow
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    assert ITERATIONS >= 1, "AGENTLAB_CRASH_ITERATIONS must be positive"
    base = int(os.environ.get("AGENTLAB_CRASH_SEED") or random.SystemRandom().randrange(2**31))
    db = tmp_path / "crash.db"
    store: SqlStore | None = None
    known: set[str] = set()
    totals = {"acked_events": 0, "iterations_with_acks": 0, "killed_mid_action": 0,
              "killed_mid_run": 0, "runs_ended": 0}
    started_at = time.monotonic()
    child: Child | None = Child("loop", db, base, tmp_path)
    upcoming: Child | None = None
    try:
        for it in range(ITERATIONS):
            assert child is not None
            seed = base + it
            delay = random.Random(seed).uniform(0.05, 0.6)
            where = (f"iteration {it + 1}/{ITERATIONS} (child seed {seed}, kill "
                     f"{delay:.3f}s after READY; reproduce with AGENTLAB_CRASH_SEED={base})")
            if not child.loaded.wait(START_TIMEOUT_S) or child.proc.poll() is not None:
                child.kill()
                pytest.fail(f"{where}: child did not start\n{child.report()}")
            child.go()
            if not child.ready.wait(START_TIMEOUT_S) or "READY" not in child.lines:
                child.kill()
                pytest.fail(f"{where}: restart failed, the child could not open the store "
                            f"after the previous kill\n{child.report()}")
            # Start the next child now so its imports overlap this one's recording time.
            upcoming = Child("loop", db, seed + 1, tmp_path) if it + 1 < ITERATIONS else None
            time.sleep(delay)
            alive = child.proc.poll() is None
            child.kill()
            if not alive:
                pytest.fail(f"{where}: the child exited on its own before the kill\n"
                            f"{child.report()}")

            if store is None:
                store = open_store(db)
            out = Outcome(child.lines)
            problems, known_now = check_store(store, out, known)
            if problems:
                pytest.fail(f"{where}: {len(problems)} problem(s) after SIGKILL:\n  "
                            + "\n  ".join(problems[:30]) + "\n" + child.report())
            known = known_now
            totals["acked_events"] += sum(out.acked.values())
            totals["iterations_with_acks"] += bool(out.acked)
            totals["killed_mid_action"] += bool(set(out.started) - out.done)
            totals["killed_mid_run"] += bool(set(out.acked) - out.ended)
            totals["runs_ended"] += len(out.ended)
            child, upcoming = upcoming, None

        assert store is not None
        bad = [r for r in store.verify() if not r.ok]
        assert not bad, f"verify() of the whole store after {ITERATIONS} kills: {bad[:5]}"

        # Restart: a fresh process records a complete run into the crashed store.
        final = Child("once", db, base + ITERATIONS, tmp_path)
        assert final.loaded.wait(START_TIMEOUT_S), final.report()
        final.go()
        rc = final.wait(timeout=120)
        out = Outcome(final.lines)
        assert rc == 0 and len(out.ended) == 1, (
            f"restart after the last kill: a new process could not record a run\n"
            f"{final.report()}"
        )
        problems, after = check_store(store, out, known)
        assert not problems, "restart run: " + "\n  ".join(problems)
        assert after - known == out.ended, (after - known, out.ended)
        (run_id,) = out.ended
        assert store.run(run_id).status == "succeeded"
        assert all(a.state == "finished" for a in store.actions(run_id))
    finally:
        for c in (child, upcoming):
            if c is not None:
                c.kill()
        if store is not None:
            store.close()

    elapsed = time.monotonic() - started_at
    print(f"\ncrash test: {ITERATIONS} kills in {elapsed:.1f}s, seed {base}, {totals}")
    # The test must have exercised something: most children get to acknowledge events.
    assert totals["iterations_with_acks"] >= max(1, ITERATIONS // 2), totals


def test_outcome_parser_and_checker_catch_losses(tmp_path: Path) -> None:
    """The checker is not vacuous: a lost acknowledged event and a phantom action fail it."""
    from agentlab import record_run, tool
    from agentlab.testing import allow_all

    store = open_store(tmp_path / "s.db")
    try:
        @tool(side_effect=True, scope="mail:send", idempotency_key=lambda a: str(a["marker"]))
        def send(marker: str) -> str:
            return marker

        with record_run("w", agent="a", store=store, grants=[allow_all(store, agent="a")]) as run:
            rid = run.run_id
            send("m1")
        n = store.run(rid).last_seq  # run_started, intent, result, run_ended
        ok = Outcome([f"ACK {rid} {n}", f"STARTED m1 {rid} 2", f"DONE m1 {rid} 3",
                      f"ENDED {rid} {n}"])
        assert check_store(store, ok, set())[0] == []
        lost = Outcome([f"ACK {rid} {n + 1}"])
        assert any("lost" in p for p in check_store(store, lost, set())[0])
        phantom = Outcome([f"ACK {rid} 2"])  # m1 'finished' although never STARTED
        assert any("never started" in p for p in check_store(store, phantom, set())[0])
        gone = Outcome(["ACK 0000 1"])
        assert any("not stored" in p for p in check_store(store, gone, set())[0])
    finally:
        store.close()
