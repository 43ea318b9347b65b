"""Kill and resume: a run killed at any point around an approved side effect, then resumed,
executes that side effect exactly once and ends verifiable.

Each iteration records a fresh run with ``_resume_child.py``, an agent that makes two
lookups, then ``create_issue`` (a side effect that its policy sends to an automatic
approver and that appends a line to an effects log: its execution counter, outside the
record), then one more lookup. The first process is killed with SIGKILL at one point of a
seeded cycle (see the child's docstring for the points):

* ``asked`` (request pending), ``approved`` (decided, not consumed), ``consumed`` and
  ``consumed-flushed`` (consumed, no intent: the resumer must reclaim the decision, not be
  refused "consumed"), ``intent`` (intent committed, no effect: reconcile says
  NOT_APPLIED and the resumer executes it), ``effect`` (effect done, no result: reconcile
  returns the result, nothing runs again), ``result`` (result committed: it is served);
* ``random``: the parent kills the process after a delay drawn uniformly over the run's
  measured duration; ``none``: no kill (the control).

Then the same script resumes the run (same run id). A resume may itself be killed (a third
of them, at a point or at random, at most three kills per iteration) and is resumed again,
until a process exits 0 or is told the run has already ended. Checked after each
iteration (:func:`check_run`): the effects log holds exactly one execution of the call;
the run succeeded and ``verify`` is ok; one run_started, one run_ended, one intent, one
create_issue result (ok, under the intent's key, carrying the approval's id); one approval
request, approved and consumed by the run, its decision recorded once; the final state
holds the issue; and, for a single self-kill, that the right process executed the call and
reconcile said what it had to. After the last iteration no run of the store is left
``running``.

Iterations: ``AGENTLAB_RESUME_ITERATIONS`` (default 50). The schedule (kill points and
plans) comes from ``AGENTLAB_RESUME_SEED`` (random when unset; a failure names it); the
moment of a random kill depends on timing too. Child processes are started ahead of need
(``AGENTLAB_RESUME_SPARES``, default 1: they import agentlab, print ``LOADED`` and wait for
their run id on stdin), so an import overlaps the previous process's work.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest

import agentlab as al
from agentlab.model import Event
from agentlab.store import SqlStore, open_store

from ._resume_child import (
    AGENT,
    APPROVER,
    GRANT,
    KILL_POINTS,
    SCOPES,
    TICKET,
    TOKEN_ENV,
    WORKFLOW,
    Killer,
    executions,
    issue_for,
    issue_key,
    run_agent,
)

ITERATIONS = int(os.environ.get("AGENTLAB_RESUME_ITERATIONS", "50"))
CHILD = Path(__file__).with_name("_resume_child.py")
TOKEN = "resume-sys-token-3f9a61c2e8"
TIMEOUT_S = 60.0
SELF_KILLS = tuple(p for p in KILL_POINTS if p != "none")
SCHEDULE = (*SELF_KILLS, "random", "none")
MAX_KILLS = 3
"""Kills per iteration at most: the first process's, and up to two resumes'."""
SPARES = int(os.environ.get("AGENTLAB_RESUME_SPARES", "1"))
"""Children kept importing ahead of need (an import takes longer than a run)."""
REFUSED_ENDED = "has already ended (succeeded)"
# Where the first process stopped, by its self-kill point: whether the resumer executes the
# call, and what the resumer's reconcile hook answers (points not listed: it is not asked).
EXECUTED_BY_RESUMER = {"asked": True, "approved": True, "consumed": True,
                       "consumed-flushed": True, "intent": True, "effect": False,
                       "result": False}
RECONCILED_AS = {"intent": "not-applied", "effect": "applied"}


# -- the child processes ----------------------------------------------------------------------

class Child:
    """A ``_resume_child.py`` process, started before it is given a run; its stdout lines
    are collected by a thread, its stderr goes to a file."""

    def __init__(self, url: str, log: Path, workdir: Path, n: int) -> None:
        self.stderr_path = workdir / f"child-{n}.stderr"
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), url, str(log)], cwd=workdir,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self.lines: list[str] = []
        self.loaded = threading.Event()
        self.exited = threading.Event()
        """Set when stdout closes: the child has exited (or was killed)."""
        self.t_go = 0.0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):  # a line cut short by the kill
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append(line)
            if line == "LOADED":
                self.loaded.set()
        self.loaded.set()
        self.exited.set()

    def go(self, run_id: str, point: str) -> None:
        """Give the child its run and kill point, once it has imported agentlab."""
        if not self.loaded.wait(TIMEOUT_S) or "LOADED" not in self.lines:
            self.kill()
            pytest.fail(f"the child did not start\n{self.describe()}")
        assert self.proc.stdin is not None
        self.t_go = time.monotonic()
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by the caller
            self.proc.stdin.write(f"{run_id} {point}\n".encode())
            self.proc.stdin.flush()

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if the child still runs after ``timeout`` seconds
        (woken by its stdout closing: ``Popen.wait`` would poll)."""
        if not self.exited.wait(timeout):
            return None
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:  # stdout closed by hand, the process alive
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait()
        self._reader.join(timeout=30)
        self._stderr.close()
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def describe(self) -> str:
        return (f"child pid {self.proc.pid}, exit {self.proc.poll()}; stdout (tail):\n  "
                + "\n  ".join(self.lines[-15:])
                + f"\nstderr (tail):\n{self.stderr()[-3000:]}")


class Spares:
    """Hands out children one at a time, always with the next ones already importing."""

    def __init__(self, url: str, log: Path, workdir: Path) -> None:
        self.url, self.log, self.workdir = url, log, workdir
        self.started = 0
        self._ahead: list[Child] = []
        self.live: list[Child] = []

    def _start(self) -> Child:
        self.started += 1
        child = Child(self.url, self.log, self.workdir, self.started)
        self.live.append(child)
        return child

    def take(self) -> Child:
        while len(self._ahead) < SPARES + 1:
            self._ahead.append(self._start())
        return self._ahead.pop(0)

    def close(self) -> None:
        for child in self.live:
            child.kill()


@dataclass
class Launch:
    """One process of an iteration: the kill it was given and how it ended."""

    kill: str
    """A self-kill point, ``random`` (killed by the parent) or ``none``."""
    pid: int
    rc: int
    lines: list[str]
    stderr: str = ""
    seconds: float = 0.0

    @property
    def self_killed(self) -> str | None:
        return next((ln.split()[1] for ln in self.lines if ln.startswith("KILL ")), None)

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    def printed(self, prefix: str) -> bool:
        return any(ln.startswith(prefix) for ln in self.lines)

    def describe(self) -> str:
        return (f"pid {self.pid}, kill {self.kill!r}, exit {self.rc}, {self.seconds:.2f} s; "
                "stdout:\n    " + "\n    ".join(self.lines[-15:])
                + (f"\n  stderr (tail):\n{self.stderr[-2000:]}" if self.stderr else ""))


def launch(spares: Spares, run_id: str, kill: str, delay: float | None) -> Launch:
    """Run one child on the run until it exits or is killed (after ``delay``, random mode)."""
    child = spares.take()
    child.go(run_id, "none" if kill == "random" else kill)
    if delay is not None and child.wait(delay) is None:
        child.proc.kill()
    rc = child.wait(TIMEOUT_S)
    if rc is None:
        child.kill()
        pytest.fail(f"run {run_id}: the child did not finish within {TIMEOUT_S:.0f} s\n"
                    f"{child.describe()}")
    seconds = time.monotonic() - child.t_go
    child.kill()  # reaps it and joins the reader
    return Launch(kill, child.proc.pid, rc, list(child.lines), child.stderr(), seconds)


# -- the checks -------------------------------------------------------------------------------

def describe_events(store: SqlStore, run_id: str) -> str:
    """The run's events, one a line, for a failure message."""
    try:
        events = store.events(run_id)
    except Exception as exc:  # the failure to read is itself what to show
        return f"(store.events({run_id!r}) raised {type(exc).__name__}: {exc})"
    out = []
    for e in events:
        d = e.model_dump(include={"tool", "status", "idempotency_key", "approval",
                                  "request_id", "from_seq", "root", "call_id", "reconciled"})
        out.append(f"{e.seq:3d} {e.kind:12s} " + " ".join(f"{k}={v}" for k, v in d.items()
                                                           if v is not None))
    return "\n  ".join(out)


def _events(store: SqlStore, run_id: str, problems: list[str]) -> list[Event] | None:
    try:
        return store.events(run_id)
    except Exception as exc:
        problems.append(f"store.events() cannot read the run back: {type(exc).__name__}: "
                        + str(exc).replace("\n", " | ")[:400])
        return None


def check_run(store: SqlStore, run_id: str, effects: list[tuple[str, int]],
              launches: list[Launch]) -> list[str]:
    """Everything that must hold for one run after its last process; the problems found."""
    problems: list[str] = []
    key = issue_key({"request": f"{run_id}/{TICKET}"})
    expected = issue_for(key)

    # Exactly one execution per approved call, counted outside the record.
    mine = [pid for k, pid in effects if k == key]
    if len(mine) != 1:
        problems.append(f"create_issue executed {len(mine)} times (effects log, pids {mine}); "
                        "exactly one execution per approved call")
    pids = [la.pid for la in launches]
    if any(pid not in pids for pid in mine):
        problems.append(f"executed by pid {mine}, none of this run's processes {pids}")

    # How the processes ended: every one but the last killed; the last done or refused.
    for i, la in enumerate(launches):
        last = i == len(launches) - 1
        if la.self_killed is not None and not la.killed:
            problems.append(f"process {i + 1} printed KILL {la.self_killed} but exited {la.rc}")
        if not last and not la.killed:
            problems.append(f"process {i + 1} exited {la.rc} and was not killed, yet the run "
                            "was resumed after it")
        if last:
            if la.rc == 0:
                if not la.printed("DONE"):
                    problems.append("the last process exited 0 without DONE")
            elif la.rc == 2 and i > 0:
                if REFUSED_ENDED not in la.stderr:
                    problems.append(f"the last process was refused: {la.stderr.strip()!r}")
            else:
                problems.append(f"the last process exited {la.rc}")

    # The run in the store.
    try:
        summary = store.run(run_id)
    except Exception as exc:
        return [*problems, f"store.run() raised {type(exc).__name__}: {exc}"]
    if (summary.status, summary.success) != ("succeeded", True):
        problems.append(f"run status {summary.status!r}, success {summary.success!r}")
    if (summary.denied_count, summary.approval_count) != (0, 1):
        problems.append(f"{summary.denied_count} denied call(s) and {summary.approval_count} "
                        "approvals counted, not 0 and 1")
    report = store.verify(run_id)[0]
    if not report.ok:
        problems.append(f"verify failed at seq {report.first_bad_seq}: {report.reason}")

    # One approval request for the call, approved by the approver, consumed by the run.
    requests = store.approvals(run_id=run_id)
    req = requests[0] if len(requests) == 1 else None
    if req is None:
        problems.append(f"{len(requests)} approval requests, not 1: "
                        f"{[(r.id, r.call_key, r.status) for r in requests]}")
    else:
        got = (req.tool, req.call_key, req.status, req.action, req.decided_by, req.channel,
               req.consumed_by)
        want = ("create_issue", key, "approved", "approve", APPROVER, "auto",
                f"{AGENT}@{run_id}")
        if got != want:
            problems.append(f"approval request {req.id}: (tool, call_key, status, action, by, "
                            f"channel, consumed_by) = {got}, not {want}")
        if req.consumed_at is None:
            problems.append(f"approval request {req.id} was never consumed")

    # The record: started and ended once, one intent and one result for the call.
    events = _events(store, run_id, problems)
    if events is not None:
        kinds = Counter(e.kind for e in events)
        if (kinds["run_started"], kinds["run_ended"]) != (1, 1):
            problems.append(f"{kinds['run_started']} run_started and {kinds['run_ended']} "
                            "run_ended events, not 1 and 1")
        if kinds["run_resumed"] > len(launches) - 1:
            problems.append(f"{kinds['run_resumed']} run_resumed events from "
                            f"{len(launches)} processes")
        intents: list[Any] = [e for e in events if e.kind == "tool_intent"]
        calls: list[Any] = [e for e in events if e.kind == "tool_call"
                            and e.tool == "create_issue"]
        bad = [e.seq for e in events if e.kind == "tool_call" and e.status != "ok"]
        if bad:
            problems.append(f"tool calls that did not succeed at seq {bad}")
        if len(intents) != 1 or intents[0].idempotency_key != key \
                or intents[0].tool != "create_issue":
            problems.append(f"intents {[(e.seq, e.tool, e.idempotency_key) for e in intents]}"
                            f", not one create_issue intent under {key}")
        if len(calls) != 1:
            problems.append(f"{len(calls)} create_issue results at seq "
                            f"{[e.seq for e in calls]}, not 1")
        if len(intents) == 1 and len(calls) == 1:
            intent, call = intents[0], calls[0]
            if (call.idempotency_key, call.intent_id, call.call_id) != (
                    key, intent.id, intent.call_id) or call.seq <= intent.seq:
                problems.append(f"the result (seq {call.seq}, key {call.idempotency_key}, "
                                f"intent {call.intent_id}) does not complete the intent "
                                f"(seq {intent.seq}, id {intent.id})")
            if call.result != expected:
                problems.append(f"create_issue result {call.result}, not {expected}")
            if req is not None and (call.approval, intent.approval) != (req.id, req.id):
                problems.append(f"the call carries approval {call.approval} and its intent "
                                f"{intent.approval}, not the request's id {req.id}")
            if req is not None and req.consumed_at is not None \
                    and req.consumed_at > intent.ts:
                problems.append(f"the decision was consumed at {req.consumed_at}, after the "
                                f"intent was written ({intent.ts})")
        # A decision is recorded once, even when a resumer reclaims it from a process
        # that recorded it and died before the intent.
        approvals: list[Any] = [e for e in events if e.kind == "approval"]
        if len(approvals) != 1 or (req is not None and (
                approvals[0].request_id, approvals[0].action) != (req.id, "approve")):
            problems.append("approval events "
                            f"{[(e.seq, e.request_id, e.action) for e in approvals]}, not "
                            "the request's approval once")
        try:
            actions = store.actions(run_id)
            listed = [(a.idempotency_key, a.state) for a in actions]
            if listed != [(key, "finished")]:
                problems.append(f"store.actions() lists {listed}, not {key} finished")
        except Exception as exc:
            problems.append(f"store.actions() raised {type(exc).__name__}: {exc}")
    try:
        state = store.state_at(run_id)
        if state.get("issue") != expected or state.get("sla") != {"plan": "enterprise",
                                                                   "hours": 4}:
            problems.append(f"final state {state}, not holding issue {expected} and the SLA")
    except Exception as exc:
        problems.append(f"store.state_at() raised {type(exc).__name__}: {exc}")

    # One self-kill at a known point, then one clean resume: who did what is determined.
    if len(launches) == 2 and launches[0].self_killed is not None and launches[1].rc == 0:
        point = launches[0].self_killed
        first, second = launches
        by = second if EXECUTED_BY_RESUMER[point] else first
        if mine and mine != [by.pid]:
            problems.append(f"killed at {point!r}: executed by pid {mine}, expected the "
                            f"{'resumer' if by is second else 'first process'} ({by.pid})")
        reconciled = [ln.split()[2] for ln in second.lines if ln.startswith("RECONCILED ")]
        want_rec = [RECONCILED_AS[point]] if point in RECONCILED_AS else []
        if reconciled != want_rec:
            problems.append(f"killed at {point!r}: the resumer's reconcile said {reconciled}, "
                            f"expected {want_rec}")
        if second.printed("ASKED") != (point == "asked"):
            problems.append(f"killed at {point!r}: the resumer "
                            f"{'asked' if second.printed('ASKED') else 'did not ask'} the "
                            "approver")
        if events is not None:
            resumed = sum(e.kind == "run_resumed" for e in events)
            if resumed != 1:
                problems.append(f"killed at {point!r}, resumed once: {resumed} run_resumed")
            flags = [getattr(e, "reconciled", None) for e in events
                     if e.kind == "tool_call" and getattr(e, "tool", None) == "create_issue"]
            want_flag = {"applied": True, "not-applied": False}.get(RECONCILED_AS.get(point, ""))
            if flags != [want_flag]:
                problems.append(f"killed at {point!r}: the result is marked reconciled={flags}, "
                                f"expected {want_flag}")
    return problems


# -- the suite --------------------------------------------------------------------------------

@pytest.fixture
def shared(store_url: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[str, SqlStore]]:
    """The URL the children use and the test's own store on the same data, with the grant
    issued (its secret in the environment, which the children inherit)."""
    url, schema = store_url
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    store = open_store(url, schema=schema)  # creates (and migrates) the PostgreSQL schema
    al.issue_grant(store, GRANT, principal=AGENT, owner="support-team", workflow=WORKFLOW,
                   scopes=SCOPES, expires_in=timedelta(hours=1), secret=f"env:{TOKEN_ENV}")
    child_url = url if schema is None else f"{url}?options=-csearch_path%3D{schema}"
    try:
        yield child_url, store
    finally:
        store.close()


@dataclass
class Totals:
    kills: Counter[str] = field(default_factory=Counter)
    launches: int = 0
    reconciled: Counter[str] = field(default_factory=Counter)
    executed_by_resumer: int = 0
    refused_ended: int = 0
    multi_kill: int = 0


def _plan(rng: random.Random, first: str) -> list[str]:
    """The kill of each process of an iteration: the scheduled one first, then, for a
    third of the resumes, another point or a random kill."""
    if first == "none":
        return ["none"]
    plan = [first]
    while len(plan) < MAX_KILLS and rng.random() < 1 / 3:
        plan.append(rng.choice((*SELF_KILLS, "random")))
    return plan


@pytest.mark.slow
def test_kill_and_resume_executes_each_approved_call_once(
    shared: tuple[str, SqlStore], tmp_path: Path,
) -> None:
    assert ITERATIONS >= 1, "AGENTLAB_RESUME_ITERATIONS must be positive"
    url, store = shared
    seed = int(os.environ.get("AGENTLAB_RESUME_SEED") or random.SystemRandom().randrange(2**31))
    rng = random.Random(seed)
    log = tmp_path / "effects.log"
    spares = Spares(url, log, tmp_path)
    totals = Totals()
    started_at = time.monotonic()
    try:
        # A clean run first: it checks the agent and measures how long a run takes.
        calibration = launch(spares, "rc-calibrate", "none", None)
        problems = check_run(store, "rc-calibrate", executions(log), [calibration])
        assert not problems, ("the agent does not complete a run without kills:\n  "
                              + "\n  ".join(problems) + "\n  " + calibration.describe())
        clean = [calibration.seconds]

        schedule: list[str] = []
        while len(schedule) < ITERATIONS:
            cycle = list(SCHEDULE)
            rng.shuffle(cycle)
            schedule.extend(cycle)
        for it, first in enumerate(schedule[:ITERATIONS]):
            # Numbered, so no run id is a prefix of another (the store resolves prefixes).
            run_id = f"rc-{it:03d}-{first}"
            plan = _plan(rng, first)
            launches: list[Launch] = []
            while True:
                kill = plan[len(launches)] if len(launches) < len(plan) else "none"
                runtime = sum(clean) / len(clean)
                delay = rng.uniform(0.0, runtime) if kill == "random" else None
                la = launch(spares, run_id, kill, delay)
                launches.append(la)
                if la.kill == "none" and la.rc == 0 and len(launches) == 1:
                    clean.append(la.seconds)
                if not la.killed or len(launches) > MAX_KILLS + 1:
                    break
            where = (f"iteration {it + 1}/{ITERATIONS}, run {run_id}, kills planned {plan} "
                     f"(reproduce with AGENTLAB_RESUME_SEED={seed})")
            problems = check_run(store, run_id, executions(log), launches)
            if problems:
                pytest.fail(
                    f"{where}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)
                    + "\nprocesses:\n" + "\n".join(f"  {i + 1}. {la.describe()}"
                                                   for i, la in enumerate(launches))
                    + f"\nevents of {run_id}:\n  {describe_events(store, run_id)}")
            totals.launches += len(launches)
            for la in launches:
                if la.killed:
                    totals.kills[la.self_killed or "random"] += 1
                totals.reconciled.update(ln.split()[2] for ln in la.lines
                                         if ln.startswith("RECONCILED "))
            totals.multi_kill += sum(la.killed for la in launches) > 1
            totals.refused_ended += launches[-1].rc == 2
            executor = next((pid for k, pid in executions(log)
                             if k == issue_key({"request": f"{run_id}/{TICKET}"})), None)
            totals.executed_by_resumer += executor != launches[0].pid

        # Nothing is left half-done: every run of the store ended, and ended well.
        runs = store.runs()
        unfinished = [(s.run_id, s.status) for s in runs if s.status != "succeeded"]
        assert not unfinished, f"runs not succeeded after the suite: {unfinished}"
        assert len(runs) == ITERATIONS + 1, [s.run_id for s in runs]
        effects = executions(log)
        assert len(effects) == ITERATIONS + 1, (
            f"{len(effects)} executions for {ITERATIONS + 1} runs: {effects}")
    finally:
        spares.close()

    elapsed = time.monotonic() - started_at
    print(f"\nresume crash test: {ITERATIONS} iterations, {totals.launches} processes in "
          f"{elapsed:.1f} s (a clean run {sum(clean) / len(clean):.2f} s after import), "
          f"seed {seed}; kills {dict(totals.kills)}, reconciled {dict(totals.reconciled)}, "
          f"executed by a resumer {totals.executed_by_resumer}, several kills "
          f"{totals.multi_kill}, refused as ended {totals.refused_ended}")
    # Every crash window was hit: each self-kill point at least once (given enough turns;
    # a random kill may come too late, so those are only counted).
    if len(SCHEDULE) <= ITERATIONS:
        missing = [p for p in SELF_KILLS if not totals.kills[p]]
        assert not missing, f"kill points never hit: {missing}; {totals}"


def test_the_checker_catches_a_double_execution(
    shared: tuple[str, SqlStore], tmp_path: Path,
) -> None:
    """A check that cannot fail proves nothing: a second execution of the call, or none,
    fails :func:`check_run`; the real, single execution passes it."""
    _, store = shared
    log = tmp_path / "effects.log"
    run_id = "rc-checker"
    issue = run_agent(store, run_id, log, Killer("none"))
    key = issue_key({"request": f"{run_id}/{TICKET}"})
    assert issue == issue_for(key)
    me = Launch("none", os.getpid(), 0, [f"STARTED {run_id} new", "DONE"])
    effects = executions(log)
    assert effects == [(key, os.getpid())]
    assert check_run(store, run_id, effects, [me]) == []

    twice = check_run(store, run_id, [*effects, (key, os.getpid())], [me])
    assert any("executed 2 times" in p for p in twice), twice
    elsewhere = check_run(store, run_id, [*effects, (key, 1)], [me])
    assert any("executed 2 times" in p for p in elsewhere), elsewhere
    assert any("none of this run's processes" in p for p in elsewhere), elsewhere
    never = check_run(store, run_id, [("issue:other/T-7", os.getpid())], [me])
    assert any("executed 0 times" in p for p in never), never
    # A resume after a run that was not killed is a failure too.
    unkilled = Launch("none", os.getpid(), 0, ["DONE"])
    assert any("was not killed" in p for p in check_run(store, run_id, effects,
                                                        [unkilled, me]))
