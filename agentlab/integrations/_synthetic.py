"""Events for a run rebuilt from a file that has no ids or times of its own.

Public trajectory files are lists of messages: no event ids, often no timestamps. An
importer gives each event an id derived from the run and its position (so importing the
same file twice makes the same ids, and the store adds nothing the second time) and a
synthetic, strictly increasing time: the runs of a file start a minute apart from a fixed
epoch, in the order the importer gives them (:func:`run_start_us`), and a run's events are
a millisecond apart, or as far apart as a duration the file does record (a tool's execution
time). Such a run says so in its metadata (:data:`SYNTHETIC_TIMES`), so nothing reads its
times or its latency as measured.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from agentlab.errors import RunNotFoundError
from agentlab.identity import Redactor, default_redactor
from agentlab.model import TreeEncoder, canonical, canonical_body, event_stats, loads
from agentlab.record._writer import redact_events
from agentlab.store import PendingEvent, RunStore

__all__ = ["SYNTHETIC_TIMES", "SyntheticRun", "content_id", "run_start_us", "store_new"]

_EPOCH_US = 1_700_000_000_000_000
_RUN_SPACING_US = 60_000_000
_EVENT_SPACING_US = 1000

SYNTHETIC_TIMES: dict[str, Any] = {
    "synthetic_times": True,
    "times_note": "the file records no times: events are placed in file order a "
                  "millisecond apart (or by the durations the file records), runs a minute "
                  "apart from 2023-11-14 22:13:20 UTC; durations and latency are not measured",
}
"""What an imported run's metadata says when its times are made up."""


def content_id(*parts: object) -> str:
    """A 32-hex-digit id from the parts (file digest, task, trial...)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def run_start_us(index: int) -> int:
    """The synthetic start of a file's ``index``-th run (0-based): a minute apart."""
    return _EPOCH_US + _RUN_SPACING_US * index


class SyntheticRun:
    """Builds one imported run's events in order: ``run.event(kind, body)``."""

    def __init__(self, run_id: str, *, start_us: int = _EPOCH_US) -> None:
        self.run_id = run_id
        self.events: list[PendingEvent] = []
        self._now_us = start_us
        self._state: dict[str, Any] = {}

    def event(self, kind: str, body: dict[str, Any], *, source: str | None = None,
              agent: str | None = None, parent_id: str | None = None,
              duration_ms: float | None = None) -> str:
        """Add an event (``source``: where it came from in the file; ``duration_ms``: how
        long the file says it took, which the next event's time leaves room for); returns
        its id."""
        body = {k: v for k, v in body.items() if v is not None}
        body["kind"] = kind
        if source is not None:
            body["source"] = source
        if agent is not None:
            body["agent"] = agent
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        return self._add(kind, body, None, parent_id, duration_ms)

    def state(self, state: dict[str, Any], *, source: str | None = None) -> str | None:
        """A checkpoint of the run state when it differs from the last one (keys changed
        or dropped); returns its id, or None when nothing changed."""
        scrubbed, _ = default_redactor().scrub(state)
        values = {str(k): canonical(v)[0] for k, v in scrubbed.items()}
        writes = sorted(k for k, v in values.items() if self._state.get(k) != v)
        deletes = sorted(set(self._state) - set(values))
        if not writes and not deletes and self.events and self._state:
            return None
        self._state = values
        enc = TreeEncoder()
        root = enc.map_from_refs({k: enc.encode(loads(v), v) for k, v in values.items()})
        body: dict[str, Any] = {"kind": "checkpoint", "root": root, "writes": writes}
        if deletes:
            body["deletes"] = deletes
        if source is not None:
            body["source"] = source
        return self._add("checkpoint", body, enc.blobs, None, None)

    def _add(self, kind: str, body: dict[str, Any], blobs: dict[str, bytes] | None,
             parent_id: str | None, duration_ms: float | None) -> str:
        event_id = content_id(self.run_id, len(self.events))
        stats = event_stats(kind, body)
        self.events.append(PendingEvent(
            self.run_id, event_id, parent_id, self._now_us, kind, canonical_body(body),
            blobs, stats))
        self._now_us += max(_EVENT_SPACING_US, round((duration_ms or 0.0) * 1000))
        return event_id

    def pending(self, redactor: Redactor | None = None) -> list[PendingEvent]:
        """The events to append, secrets scrubbed as every recorded event's are (a key
        pasted into a chat or a code block never reaches the store in clear)."""
        return redact_events(self.events, redactor or default_redactor())


def store_new(store: RunStore, runs: Sequence[SyntheticRun],
              progress: Callable[[int, int], None] | None = None) -> None:
    """Append each run not stored yet, one transaction a run (all of it or nothing). A run
    already stored is left as it is: its id comes from the file's content, so it is the
    same run, imported before (perhaps under another file name or other options)."""
    for n, run in enumerate(runs, start=1):
        try:
            store.run(run.run_id, exact=True)
        except RunNotFoundError:
            store.append(run.pending())
        if progress is not None:
            progress(n, len(runs))
