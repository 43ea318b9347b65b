"""The sample scenario as a file, and the sample store built from it.

``sample_traces/support-triage-scenario.jsonl.gz`` holds every run of
:func:`~agentlab.demo._scenario.record_scenario` in the portable form, gzip-compressed:
:func:`write_sample` makes it (the same bytes for the same seed and agentlab version),
:func:`load_sample` imports it. The run waiting for approval cannot travel in that form (a
pending request lives in the store, next to a process that waits), so
:func:`record_waiting_run` records it live, in a process of its own that is stopped once its
request is stored: the run stays unended and resumable, the request pending.
:func:`sample_story` finds the seed story's runs in a store.

>>> story = build_sample_store(open_store("demo.db"))   # doctest: +SKIP
>>> story.bad_run_id                                     # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from agentlab.approval import Approver
from agentlab.demo._agent import task_id_for
from agentlab.demo._governance import ensure_grants
from agentlab.demo._scenario import (
    SEED,
    STORY,
    WAITING,
    record_run_of,
    record_scenario,
    scenario_agents,
)
from agentlab.errors import RecordingError
from agentlab.integrations._files import read_source
from agentlab.model import RunStartedEvent, dumps, loads, new_id
from agentlab.store import ImportResult, RunStore, open_store

__all__ = [
    "SAMPLE_NAME",
    "WAITING_APPROVAL",
    "SampleStory",
    "build_sample_store",
    "load_sample",
    "record_waiting_run",
    "record_waiting_run_here",
    "sample_lines",
    "sample_path",
    "sample_story",
    "write_sample",
]

SAMPLE_NAME = "support-triage-scenario.jsonl.gz"

WAITING_APPROVAL = timedelta(hours=24)
"""How long the waiting run's request stays answerable."""

_EXPORTED_AT = "2024-06-10T00:00:00+00:00"
"""The export time written into the sample's headers: the end of the scenario, so that the
file does not change when it is made again."""

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SampleStory:
    """The seed story's runs in a sample store, by their part in it."""

    good_run_id: str
    """T-1001 after Acme's cache entry was flushed: fresh data, approved, succeeded."""
    bad_run_id: str
    """T-1001 on the stale cache (1.0.0): wrong entitlement in the reply, wrong Jira
    issue, too low a priority; the on-call engineer approved it as shown."""
    fixed_run_id: str
    """T-1001 on the same stale cache, by the fixed version 1.1.0: it succeeds."""
    rejected_run_id: str
    """T-1004: the support lead rejected the agent's priority drop."""
    edited_run_id: str
    """T-1005: the support lead edited the Jira issue (an override); the reply, on a stale
    record, still fails."""
    waiting_run_id: str | None = None
    """T-1006: the run waiting for the support lead's approval (None until recorded)."""
    waiting_request_id: str | None = None

    @property
    def run_ids(self) -> dict[str, str]:
        """Each story part and its run id."""
        parts = {"good": self.good_run_id, "bad": self.bad_run_id,
                 "fixed": self.fixed_run_id, "rejected": self.rejected_run_id,
                 "edited": self.edited_run_id}
        if self.waiting_run_id is not None:
            parts["waiting"] = self.waiting_run_id
        return parts


def sample_path() -> Path:
    """Where the sample file is in a checkout of agentlab (``sample_traces/``)."""
    return Path(__file__).resolve().parents[2] / "sample_traces" / SAMPLE_NAME


def sample_lines(*, seed: int = SEED, out: Say | None = None) -> bytes:
    """The sample's portable JSONL (uncompressed): every scenario run recorded into a
    scratch store and exported in start order, headers pinned (:data:`_EXPORTED_AT`)."""
    with tempfile.TemporaryDirectory(prefix="agentlab-sample-") as tmp:
        store = open_store(Path(tmp) / "scenario.db")
        try:
            run_ids = record_scenario(store, seed=seed, out=out)
            buf = io.BytesIO()
            store.export_runs(run_ids, buf)
        finally:
            store.close()
    lines = []
    for raw in buf.getvalue().splitlines():
        if raw.startswith(b'{"agentlab_version"'):  # a header: canonical JSON, sorted keys
            header = loads(raw)
            if header.get("type") == "header":
                raw = dumps({**header, "exported_at": _EXPORTED_AT})
        lines.append(raw)
    return b"\n".join(lines) + b"\n"


def write_sample(path: Path | None = None, *, seed: int = SEED, out: Say | None = None) -> Path:
    """Record the scenario and write it, gzip-compressed, to ``path`` (default: the
    checkout's ``sample_traces/``); the path written."""
    target = path or sample_path()
    data = gzip.compress(sample_lines(seed=seed, out=out), compresslevel=9, mtime=0)
    tmp = target.with_name(target.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def load_sample(store: RunStore, path: Path | None = None) -> ImportResult:
    """Import the sample file (gzip or plain) into ``store``; already stored runs are
    skipped."""
    return store.import_runs(io.BytesIO(read_source(path or sample_path())))


def _story_part(store: RunStore, run_id: str) -> str | None:
    first = store.events(run_id, kinds=["run_started"])
    if first and isinstance(first[0], RunStartedEvent):
        part = first[0].metadata.get("demo_story")
        return str(part) if part is not None else None
    return None


def sample_story(store: RunStore) -> SampleStory:
    """The seed story's runs in ``store`` (built by :func:`build_sample_store`); a
    RecordingError names the parts that are missing."""
    from agentlab.store import RunFilter

    found: dict[str, str] = {}
    for ticket in sorted({p.ticket_id for p in (*STORY, WAITING)}):
        # ordinary runs only: a replay, fork or rollback of a story run carries its metadata
        for run in store.runs(RunFilter(task_id=task_id_for(ticket), run_kind="run")):
            part = _story_part(store, run.run_id)
            if part is not None and part not in found:
                found[part] = run.run_id
    missing = [p.story for p in STORY if p.story not in found]
    if missing:
        raise RecordingError(
            f"this store has no sample-story runs for {', '.join(map(str, missing))}; build "
            "it with `agentlab demo` (or build_sample_store)"
        )
    waiting = found.get("waiting")
    request = None
    if waiting is not None:
        pending = store.approvals(status="pending", run_id=waiting)
        request = pending[0].id if pending else None
    return SampleStory(good_run_id=found["good"], bad_run_id=found["bad"],
                       fixed_run_id=found["fixed"], rejected_run_id=found["rejected"],
                       edited_run_id=found["edited"], waiting_run_id=waiting,
                       waiting_request_id=request)


def record_waiting_run(store: RunStore, *, timeout_s: float = 60.0,
                       env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Record T-1006 (1.1.0) until it waits for the support lead, in a process of its own,
    and stop that process: (run id, pending request id). The run stays unended; answer the
    request (``agentlab approve``) and ``agentlab resume`` the run to finish it.

    ``env`` adds to the child's environment (e.g. ``AGENTLAB_SCHEMA``); the store's URL
    goes through ``AGENTLAB_STORE``, never the command line.
    """
    run_id = new_id()
    child_env = {**os.environ, **(env or {}), "AGENTLAB_STORE": store.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentlab.demo._waiting", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env,
    )
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            pending = store.approvals(status="pending", run_id=run_id)
            if pending:
                return run_id, pending[0].id
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RecordingError(
                    f"the waiting run's process ended (exit {proc.returncode}) before it asked "
                    f"for approval: {err.strip()[-500:] or 'no message'}"
                )
            time.sleep(0.05)
        raise RecordingError(
            f"the waiting run asked for no approval within {timeout_s:g} s; is the store "
            "busy? run `agentlab demo` again"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def record_waiting_run_here(store: RunStore, *, approver: Approver,
                            approval_timeout: timedelta = WAITING_APPROVAL,
                            run_id: str | None = None, out: Say | None = None) -> str:
    """Record T-1006 (1.1.0) in this process, its approval requests told to ``approver``
    (which may leave the decision to a human elsewhere: the run then waits for it, up to
    ``approval_timeout``); the run id (``run_id``, or a new one). Resumable under it."""
    assert WAITING.world is not None
    ensure_grants(store)
    run_id, _ = record_run_of(store, WAITING, agents=scenario_agents(), clock=None, ids=None,
                              rng=random.Random(0), world=WAITING.world, approver=approver,
                              approval_timeout=approval_timeout, run_id=run_id or new_id(),
                              resumable=True, out=out)
    return run_id


def build_sample_store(store: RunStore, *, path: Path | None = None, live: bool = False,
                       waiting: bool = True, out: Say | None = None,
                       child_env: Mapping[str, str] | None = None) -> SampleStory:
    """The sample store: the scenario's runs imported from the sample file (or, with
    ``live``, recorded now by running the agent), the grants they acted through, and the run
    waiting for approval (``waiting=False`` leaves it out; ``child_env`` goes to its
    process).

    >>> story = build_sample_store(open_store("demo.db"))   # doctest: +SKIP
    """
    say = out or (lambda line: None)
    if live:
        say("recording the sample scenario's runs (two weeks of tickets)...")
        record_scenario(store, out=out)
    else:
        source = path or sample_path()
        t0 = time.perf_counter()
        result = load_sample(store, source)
        say(f"imported {len(result.imported)} runs from {source.name} "
            f"({len(result.skipped)} already there) in {time.perf_counter() - t0:.1f} s")
    ensure_grants(store)  # the grants the runs acted through: a replay's live reads need them
    story = sample_story(store)
    if waiting and story.waiting_run_id is None:
        run_id, request = record_waiting_run(store, env=child_env)
        say(f"recorded run {run_id} (T-1006), now waiting for approval {request}")
        story = sample_story(store)
    return story
