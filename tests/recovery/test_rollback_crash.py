"""Rollback under SIGKILL: each compensation runs exactly once, asking for approval where the
policy demands it, also when the rollback process is killed mid-way and started again.

How it works
------------
Each iteration records a fresh original run in the test process (``record_original`` in
``_rollback_child.py``) into a fake tracker made of files: issues A and B created (their
undo closes them); in the ``mixed`` variant also a create that failed and a comment on B,
a side effect with no compensation. A child process (``_rollback_child.py``) then rolls the
run back under a policy that sends every ``undo:*`` call to a human (an approver that
approves at once) and SIGKILLs itself at a chosen point: in the approver before and right
after it approved; before an undo's intent is committed (alone, or after what was queued
before it was stored, as the background writer may have done); inside the undo before and
after it acted; once an undo's result is committed. Some iterations are not killed, a few
are killed by the test after a random delay. A second child, never killed, then calls
``rollback`` again and must complete it. Last, the test calls ``rollback`` once more
in-process: it must execute nothing.

The undo appends one fsync'd line per execution to ``undo.jsonl``: executions are counted
from outside the record. Checked per iteration (``check_rollback``):

* every compensated side effect was undone exactly once, newest first, and its issue is
  closed; the side effect without a compensation is listed ``no_compensation`` and the
  failed one ``nothing_to_undo``, never dropped, and neither was touched;
* one approval request per undo, approved by the tester, consumed by the rollback run;
  one ``approval`` event per decision; the undo's call carries the request id;
* the rollback run holds one intent and one ``ok`` call per undo (marked with the seq it
  compensates, its result the undo's); no refusal, no error;
* the call after completion executes nothing, asks nobody and starts no run; in the
  ``clean`` variant (everything undone) it returns ``complete=True`` for the same rollback
  run; in the ``mixed`` one (something cannot be undone, so the rollback is never
  ``complete``) it lists every side effect again, as the first call did;
* every run (original, rollback attempts) passes ``store.verify`` and is readable; no
  rollback run is left ``running``; the original run is untouched.

Iterations: ``AGENTLAB_ROLLBACK_ITERATIONS`` (default: the whole schedule, 22, each kill
point at least twice). Random kill delays come from ``AGENTLAB_ROLLBACK_SEED`` (random
when unset; a failure names it).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

import agentlab as al
from agentlab.recovery import RollbackResult, rollback, rollback_run_id
from agentlab.store import RunFilter, SqlStore, open_store

from ._rollback_child import (
    AGENT,
    APPROVER,
    RULE,
    TOKEN_ENV,
    append_line,
    comments_file,
    issue_states,
    make_tools,
    read_lines,
    record_original,
    undo_file,
    undo_policy,
)

CHILD = Path(__file__).with_name("_rollback_child.py")
TOKEN = "rollback-tracker-token-7f3a9c2e51"
CHILD_TIMEOUT_S = 60.0
ITERATIONS = int(os.environ.get("AGENTLAB_ROLLBACK_ITERATIONS", "0") or 0)

# (kill, variant): every kill point at least twice, on the first and on the second undo,
# in both variants; "random" is a kill by the test after a random delay.
SCHEDULE: list[tuple[str, str]] = [
    ("approved@1", "mixed"), ("intent@2", "clean"), ("queued-intent@1", "mixed"),
    ("undo-started@2", "clean"), ("undo-applied@1", "mixed"), ("after-result@2", "clean"),
    ("none", "mixed"), ("random", "clean"),
    ("approved@2", "clean"), ("intent@1", "mixed"), ("queued-intent@2", "clean"),
    ("undo-started@1", "mixed"), ("undo-applied@2", "clean"), ("after-result@1", "mixed"),
    ("none", "clean"), ("random", "mixed"),
    ("random", "clean"), ("random", "mixed"), ("undo-applied@1", "clean"),
    ("after-result@2", "mixed"), ("asked@1", "clean"), ("asked@2", "mixed"),
]


# -- the child -------------------------------------------------------------------------------


class Child:
    """One ``_rollback_child.py`` process; its stdout lines are read by a thread (the test
    reacts to READY at once), its stderr goes to a file."""

    def __init__(self, name: str, url: str, run_id: str, workdir: Path, kill: str) -> None:
        self.name = name
        self.kill_spec = kill
        self.err_path = workdir / f"{name}.stderr"
        self._err: IO[bytes] = self.err_path.open("wb")
        env = {**os.environ, TOKEN_ENV: TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), url, run_id, str(workdir), kill],
            stdout=subprocess.PIPE, stderr=self._err, env=env, cwd=workdir,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):  # cut short by the kill
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append(line)
            if line == "READY":
                self.ready.set()
        self.ready.set()

    def wait(self) -> int | None:
        """The exit status; None when the child did not finish in time (it is killed)."""
        rc: int | None
        try:
            rc = self.proc.wait(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.sigkill()
            rc = None
        self._reader.join(timeout=CHILD_TIMEOUT_S)
        self._err.close()
        return rc

    def sigkill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=CHILD_TIMEOUT_S)

    def result(self) -> dict[str, Any] | None:
        for line in self.lines:
            if line.startswith("RESULT "):
                found: dict[str, Any] = json.loads(line[len("RESULT "):])
                return found
        return None

    def took(self) -> float | None:
        for line in self.lines:
            if line.startswith("TOOK "):
                return float(line.split()[1])
        return None

    def describe(self, tail: int = 3000) -> str:
        try:
            err = self.err_path.read_text("utf-8", errors="replace")[-tail:]
        except OSError as exc:
            err = f"(unreadable: {exc})"
        out = "\n".join(self.lines)[-tail:]
        return (f"--- child {self.name} (kill {self.kill_spec}, exit {self.proc.poll()})\n"
                f"stdout:\n{out}\nstderr (tail):\n{err}")


# -- the checks ------------------------------------------------------------------------------


@dataclass
class Before:
    """What the test saw before a call that must change nothing in the world."""

    undo_lines: list[dict[str, Any]]
    approval_ids: list[str]
    attempts: list[str]


@dataclass
class Iteration:
    """One original run and what its rollback did, for the checks and the failure report."""

    original: str
    workdir: Path
    variant: str
    kill: str
    children: list[Child] = field(default_factory=list)
    final: dict[str, Any] | None = None
    """The RollbackResult (as a dict) of the call that completed the rollback."""
    original_head: tuple[int, str | None] | None = None
    before_second: Before | None = None
    second: RollbackResult | BaseException | None = None


def _attempts(store: SqlStore, original: str) -> list[str]:
    runs = store.runs(RunFilter(parent_run_id=original, run_kind="rollback"))
    return [r.run_id for r in sorted(runs, key=lambda r: (r.started_at, r.run_id))]


def _lines(store: SqlStore, run_id: str) -> list[Any]:
    """The run's events as stored (bodies as dicts): readable even when a body does not
    fit the event models, so the other checks still report."""
    return list(store.raw_events(run_id))


def _is_undo(line: Any) -> bool:
    return str(line.body.get("tool", "")).startswith("undo:")


def expected_undos(store: SqlStore, original: str, variant: str) -> list[tuple[int, str, str]]:
    """(seq, tool, status) newest first, from what the test made the original run do:
    the seq is the call's (for the failed one, its failed call's)."""
    calls = [ln for ln in _lines(store, original) if ln.body.get("kind") == "tool_call"]
    by_title = {ln.body["arguments"].get("title"): ln for ln in calls}
    a = by_title[f"A of {original}"]
    b = by_title[f"B of {original}"]
    if variant == "clean":
        return [(b.seq, "create_issue", "undone"), (a.seq, "create_issue", "undone")]
    failed = next(ln for ln in calls
                  if ln.body["arguments"].get("title") == f"FAIL of {original}")
    comment = next(ln for ln in calls if ln.body["tool"] == "post_comment")
    return [(comment.seq, "post_comment", "no_compensation"), (b.seq, "create_issue", "undone"),
            (failed.seq, "create_issue", "nothing_to_undo"), (a.seq, "create_issue", "undone")]


def _statuses(undos: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(u["seq"], u["tool"], u["status"]) for u in undos]


def check_rollback(store: SqlStore, it: Iteration) -> list[str]:
    """Every problem found with the rollback of ``it.original`` (empty: all good)."""
    p: list[str] = []
    expected = expected_undos(store, it.original, it.variant)
    undone_seqs = [seq for seq, _, status in expected if status == "undone"]
    original_calls = {ln.seq: ln for ln in _lines(store, it.original)
                      if ln.body.get("kind") == "tool_call"}
    keys = [original_calls[s].body["result"]["key"] for s in undone_seqs]

    # The world: each undo executed exactly once, newest first; nothing else touched.
    log = [line["key"] for line in read_lines(undo_file(it.workdir))]
    for key in keys:
        if log.count(key) != 1:
            p.append(f"the undo of {key} executed {log.count(key)} times (undo log {log})")
    if sorted(log) == sorted(keys) and log != keys:
        p.append(f"undos executed out of order: {log}, newest first is {keys}")
    if set(log) - set(keys):
        p.append(f"undos of issues that are not the run's: {sorted(set(log) - set(keys))}")
    states = issue_states(it.workdir)
    if states != dict.fromkeys(keys, "closed"):
        p.append(f"tracker issues {states}, expected {keys} closed")
    comments = read_lines(comments_file(it.workdir))
    if len(comments) != (1 if it.variant == "mixed" else 0):
        p.append(f"comments {comments}: the side effect without compensation was touched")

    # The original run: untouched, intact.
    head = store.run(it.original)
    if it.original_head is not None and (head.last_seq, head.head_hash) != it.original_head:
        p.append(f"the original run changed: {(head.last_seq, head.head_hash)} "
                 f"!= {it.original_head}")

    # The rollback runs: ended, intact, readable.
    attempts = _attempts(store, it.original)
    rb = rollback_run_id(it.original)
    if not attempts or attempts[0] != rb:
        p.append(f"rollback runs {attempts}: the first should be {rb}")
    for run_id in [it.original, *attempts]:
        summary = store.run(run_id)
        if summary.status == "running":
            p.append(f"run {run_id} was left running")
        verified = store.verify(run_id)[0]
        if not verified.ok:
            p.append(f"verify({run_id}) failed: {verified}")
        try:
            store.events(run_id)
        except Exception as exc:
            p.append(f"store.events({run_id}) fails: {type(exc).__name__}: "
                     f"{str(exc).splitlines()[:3]}")

    # The undo calls: in the first rollback run only, one intent and one ok call each.
    calls_by_run: dict[str, list[Any]] = {}
    for run_id in attempts:
        lines = _lines(store, run_id)
        undo_calls = [ln for ln in lines if ln.body.get("kind") == "tool_call" and _is_undo(ln)]
        calls_by_run[run_id] = undo_calls
        if run_id != rb and undo_calls:
            p.append(f"later attempt {run_id} made undo calls: {[c.seq for c in undo_calls]}")
        for c in undo_calls:
            if c.body.get("status", "ok") != "ok":
                p.append(f"{run_id} seq {c.seq}: undo call {c.body.get('status')}: "
                         f"{c.body.get('denial') or c.body.get('error')}")
        intents = [ln for ln in lines if ln.body.get("kind") == "tool_intent" and _is_undo(ln)]
        if run_id == rb:
            got = [ln.body.get("compensates") for ln in intents]
            if got != undone_seqs:
                p.append(f"{rb}: undo intents compensate {got}, expected {undone_seqs}")
    rb_calls = [c for c in calls_by_run.get(rb, []) if c.body.get("status", "ok") == "ok"]
    got = [c.body.get("compensates") for c in rb_calls]
    if got != undone_seqs:
        p.append(f"{rb}: ok undo calls compensate {got}, expected {undone_seqs} (newest first)")
    for c in rb_calls:
        seq = c.body.get("compensates")
        if seq in original_calls:
            want = {"closed": original_calls[seq].body["result"]["key"]}
            if c.body.get("result") != want:
                p.append(f"{rb} seq {c.seq}: undo result {c.body.get('result')}, "
                         f"expected {want}")

    # Approvals: one request per undo, approved, consumed by the rollback run; one event
    # per decision; the call carries its request.
    requests = [r for run_id in attempts for r in store.approvals(run_id=run_id)]
    if len(requests) != len(undone_seqs):
        p.append(f"{len(requests)} approval requests for {len(undone_seqs)} undos: "
                 f"{[(r.id, r.run_id, r.status) for r in requests]}")
    for r in requests:
        if (r.run_id, r.tool, r.rule, r.status, r.decided_by) != (
                rb, "undo:create_issue", RULE, "approved", APPROVER):
            p.append(f"request {r.id}: {(r.run_id, r.tool, r.rule, r.status, r.decided_by)}")
        if r.consumed_at is None or r.consumed_by != f"{AGENT}@{rb}":
            p.append(f"request {r.id} not consumed by the rollback run: "
                     f"{(r.consumed_at, r.consumed_by)}")
    ids = {r.id for r in requests}
    carried = [c.body.get("approval") for c in rb_calls]
    if len(set(carried)) != len(carried) or set(carried) != ids:
        p.append(f"undo calls carry approvals {carried}, the requests are {sorted(ids)}")
    if rb in attempts:
        events = [ln for ln in _lines(store, rb) if ln.body.get("kind") == "approval"]
        per_request = [ln.body.get("request_id") for ln in events]
        for rid in sorted(ids):
            if per_request.count(rid) != 1:
                p.append(f"{rb} records {per_request.count(rid)} approval events for "
                         f"request {rid} (one decision): seqs "
                         f"{[ln.seq for ln in events if ln.body.get('request_id') == rid]}")
        if set(per_request) - ids:
            p.append(f"{rb} records approval events of other requests: {per_request}")
        if store.run(rb).approval_count != len(ids):
            p.append(f"{rb}: approval_count {store.run(rb).approval_count}, "
                     f"{len(ids)} decisions")

    # What the completing call returned.
    if it.final is None:
        p.append("no rollback call completed")
    else:
        if _statuses(it.final["undos"]) != expected:
            p.append(f"the rollback returned {_statuses(it.final['undos'])}, expected "
                     f"{expected}")
        if it.final["complete"] != (it.variant == "clean"):
            p.append(f"complete={it.final['complete']} for the {it.variant} variant")
        outcome = it.final["outcome"] or {}
        if outcome.get("success") is not (it.variant == "clean"):
            p.append(f"the rollback run's outcome {outcome} for the {it.variant} variant")

    # The call after completion: nothing executed, nobody asked.
    second, before = it.second, it.before_second
    if isinstance(second, BaseException):
        p.append("rollback() after completion raised: " + "".join(
            traceback.format_exception_only(type(second), second)).strip()[:600])
    elif second is not None and before is not None:
        if read_lines(undo_file(it.workdir)) != before.undo_lines:
            p.append("rollback() after completion executed an undo again")
        now_ids = sorted(r.id for run_id in _attempts(store, it.original)
                         for r in store.approvals(run_id=run_id))
        if now_ids != before.approval_ids:
            p.append(f"rollback() after completion asked for approval: {now_ids}")
        got_statuses = _statuses([u.to_dict() for u in second.undos])
        if _attempts(store, it.original) != before.attempts:
            p.append(f"rollback() after completion started a run: "
                     f"{_attempts(store, it.original)}")
        if it.variant == "clean":
            if not second.complete or second.run_id != before.attempts[-1] or second.resumed:
                p.append(f"rollback() after completion: complete={second.complete}, "
                         f"run {second.run_id} (resumed={second.resumed}), expected "
                         f"complete=True for {before.attempts[-1]}")
            if got_statuses != expected:
                p.append(f"rollback() after completion returned {got_statuses}")
        elif got_statuses != expected:
            p.append(f"rollback() after completion returned {got_statuses}, expected "
                     f"{expected} (nothing dropped)")
    return p


def describe_runs(store: SqlStore, original: str) -> str:
    """The rollback runs' events, one line each, for a failure message."""
    out = []
    for run_id in _attempts(store, original):
        s = store.run(run_id)
        out.append(f"--- run {run_id} ({s.status}, success={s.success})")
        for ln in _lines(store, run_id):
            b = ln.body
            bits = [f"{ln.seq:>3} {b.get('kind', '?'):<12}"]
            for k in ("tool", "name", "status", "compensates", "approval", "request_id",
                      "action", "from_seq"):
                if b.get(k) is not None:
                    bits.append(f"{k}={b[k]}")
            if b.get("kind") == "tool_call" and "reconciled" in b:
                bits.append(f"reconciled={b['reconciled']}")
            out.append(" ".join(bits))
    for r in (r for run_id in _attempts(store, original)
              for r in store.approvals(run_id=run_id)):
        out.append(f"request {r.id} {r.tool} {r.status} by {r.decided_by} consumed "
                   f"{r.consumed_at} by {r.consumed_by}")
    return "\n".join(out)


def report(store: SqlStore, it: Iteration, problems: list[str], where: str) -> str:
    return "\n".join([f"{where}: {len(problems)} problem(s)", *[f"  - {x}" for x in problems],
                      f"undo log: {read_lines(undo_file(it.workdir))}",
                      describe_runs(store, it.original),
                      *[c.describe() for c in it.children]])


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def shared(store_url: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[str, SqlStore]]:
    """The URL the children use and the test's own store on the same data."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url, schema = store_url
    store = open_store(url, schema=schema)  # creates (and migrates) the PostgreSQL schema
    child_url = url if schema is None else f"{url}?options=-csearch_path%3D{schema}"
    try:
        yield child_url, store
    finally:
        store.close()


def _snapshot(store: SqlStore, it: Iteration) -> Before:
    attempts = _attempts(store, it.original)
    return Before(read_lines(undo_file(it.workdir)),
                  sorted(r.id for run_id in attempts for r in store.approvals(run_id=run_id)),
                  attempts)


def _call_again(store: SqlStore, it: Iteration) -> None:
    """rollback() once more, in this process, after it completed: it must do nothing."""
    it.before_second = _snapshot(store, it)
    try:
        it.second = rollback(store, it.original, tools=make_tools(it.workdir).all,
                             policy=undo_policy(), approver=al.auto_approve(APPROVER))
    except Exception as exc:
        it.second = exc


def _run_iteration(store: SqlStore, url: str, it: Iteration, delay: float) -> list[str]:
    """Record the original, roll it back in a child killed as ``it.kill`` says (after
    ``delay`` seconds for ``random``), restart it, call once more, check."""
    try:
        return _iteration(store, url, it, delay)
    finally:
        for child in it.children:  # a failure left one running
            child.sigkill()


def _iteration(store: SqlStore, url: str, it: Iteration, delay: float) -> list[str]:
    it.workdir.mkdir()
    record_original(store, it.original, it.workdir, mixed=it.variant == "mixed")
    head = store.run(it.original)
    it.original_head = (head.last_seq, head.head_hash)

    first = Child("first", url, it.original, it.workdir,
                  "none" if it.kill == "random" else it.kill)
    it.children.append(first)
    if it.kill == "random":
        first.ready.wait(CHILD_TIMEOUT_S)
        time.sleep(delay)
        first.sigkill()
    rc = first.wait()
    if it.kill == "none" and rc != 0:
        return [f"the rollback child failed (exit {rc})"]
    if it.kill not in ("none", "random") and (
            rc != -signal.SIGKILL or f"KILL {it.kill}" not in first.lines):
        return [f"the child was not killed at {it.kill} (exit {rc}; None: it hung)"]
    if rc == 0:
        it.final = first.result()
    else:
        again = Child("again", url, it.original, it.workdir, "none")
        it.children.append(again)
        rc = again.wait()
        if rc != 0:
            return [f"the restarted rollback did not complete (exit {rc}; 3: blocked, "
                    "None: it hung)"]
        it.final = again.result()
        if it.kill != "random" and it.final is not None and not it.final["resumed"]:
            return ["the restart did not take the interrupted rollback run up (resumed=False)"]
    _call_again(store, it)
    return check_rollback(store, it)


@pytest.mark.slow
def test_rollback_killed_anywhere_undoes_each_side_effect_once(
    shared: tuple[str, SqlStore], tmp_path: Path,
) -> None:
    url, store = shared
    iterations = ITERATIONS or len(SCHEDULE)
    seed = int(os.environ.get("AGENTLAB_ROLLBACK_SEED") or random.SystemRandom().randrange(2**31))
    rng = random.Random(seed)
    took: list[float] = []  # how long uninterrupted rollbacks took: the random kill's range
    t0 = time.monotonic()
    kills: dict[str, int] = {}
    randoms: list[str] = []
    failed: list[tuple[Iteration, list[str], str]] = []
    for n in range(iterations):
        kill, variant = SCHEDULE[n % len(SCHEDULE)]
        it = Iteration(f"orig-{n:03d}", tmp_path / f"it{n:03d}", variant, kill)
        delay = rng.uniform(0, max(took) if took else 0.15)
        where = (f"iteration {n + 1}/{iterations} (kill {kill}"
                 + (f" after {delay * 1000:.0f} ms" if kill == "random" else "")
                 + f", {variant} variant, seed {seed}, url {url})")
        problems = _run_iteration(store, url, it, delay)
        first = it.children[0]
        if kill == "none" and first.took() is not None:
            took.append(first.took() or 0.0)
        if kill == "random":
            randoms.append(f"{delay * 1000:.0f} ms "
                           + ("missed" if first.result() is not None else "landed"))
        kills[kill.split("@")[0]] = kills.get(kill.split("@")[0], 0) + 1
        if problems:
            failed.append((it, problems, where))

    elapsed = time.monotonic() - t0
    summary = (f"rollback crash test: {iterations} iterations in {elapsed:.1f} s "
               f"({elapsed / iterations:.2f} s each), seed {seed}, kills {kills}, "
               f"random kills after READY: {randoms}; uninterrupted rollbacks took "
               f"{min(took, default=0) * 1000:.0f}-{max(took, default=0) * 1000:.0f} ms")
    print("\n" + summary)
    if failed:
        lines = [f"{len(failed)} of {iterations} iterations failed ({summary})"]
        lines += [f"  {where}: {problems}" for _, problems, where in failed]
        it, problems, where = failed[0]
        lines += ["", "the first in full:", report(store, it, problems, where)]
        pytest.fail("\n".join(lines), pytrace=False)


def test_the_checker_catches_a_double_undo(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks can fail: a clean rollback passes them; the same with one undo executed
    twice (or out of order) does not."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    it = Iteration("orig-check", tmp_path, "mixed", "none")
    record_original(store, it.original, tmp_path, mixed=True)
    head = store.run(it.original)
    it.original_head = (head.last_seq, head.head_hash)
    result = rollback(store, it.original, tools=make_tools(tmp_path).all, policy=undo_policy(),
                      approver=al.auto_approve(APPROVER))
    it.final = result.to_dict()
    _call_again(store, it)
    assert check_rollback(store, it) == [], report(store, it, check_rollback(store, it), "clean")

    log = read_lines(undo_file(tmp_path))
    assert [line["title"] for line in log] == ["B of orig-check", "A of orig-check"]
    append_line(undo_file(tmp_path), log[0])  # B's undo executed a second time
    problems = check_rollback(store, it)
    assert any("executed 2 times" in x for x in problems), problems

    undo_file(tmp_path).unlink()
    for line in reversed(log):  # oldest first
        append_line(undo_file(tmp_path), line)
    problems = check_rollback(store, it)
    assert any("out of order" in x for x in problems), problems


def test_a_clean_rollback_completes_and_a_second_call_runs_nothing(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The happy path in one process, both variants: the reference the crash test holds
    every interrupted rollback to."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for variant in ("clean", "mixed"):
        workdir = tmp_path / variant
        workdir.mkdir()
        it = Iteration(f"orig-{variant}", workdir, variant, "none")
        record_original(store, it.original, workdir, mixed=variant == "mixed")
        head = store.run(it.original)
        it.original_head = (head.last_seq, head.head_hash)
        result = rollback(store, it.original, tools=make_tools(workdir).all,
                          policy=undo_policy(), approver=al.auto_approve(APPROVER))
        assert result.run_id == rollback_run_id(it.original) and not result.resumed
        it.final = result.to_dict()
        _call_again(store, it)
        problems = check_rollback(store, it)
        assert not problems, report(store, it, problems, variant)
