"""Events for a run rebuilt from a file that has no ids or times of its own.

Public trajectory files are lists of messages: no event ids, often no timestamps. An
importer gives each event an id derived from the run and its position (so importing the
same file twice makes the same ids, and the store adds nothing the second time) and a
synthetic, strictly increasing time (a millisecond apart from a fixed epoch), and says in
its docstring that the times are not real.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agentlab.identity import Redactor, default_redactor
from agentlab.model import canonical_body, event_stats
from agentlab.record._writer import redact_events
from agentlab.store import PendingEvent

__all__ = ["SyntheticRun", "content_id"]

_EPOCH_US = 1_700_000_000_000_000


def content_id(*parts: object) -> str:
    """A 32-hex-digit id from the parts (file digest, task, trial...)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


class SyntheticRun:
    """Builds one imported run's events in order: ``run.event(kind, body)``."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.events: list[PendingEvent] = []

    def event(self, kind: str, body: dict[str, Any], *, source: str | None = None,
              agent: str | None = None, parent_id: str | None = None) -> str:
        """Add an event (``source``: where it came from in the file); returns its id."""
        n = len(self.events)
        body = {k: v for k, v in body.items() if v is not None}
        body["kind"] = kind
        if source is not None:
            body["source"] = source
        if agent is not None:
            body["agent"] = agent
        event_id = content_id(self.run_id, n)
        self.events.append(PendingEvent(
            self.run_id, event_id, parent_id, _EPOCH_US + 1000 * n, kind,
            canonical_body(body), None, event_stats(kind, body)))
        return event_id

    def pending(self, redactor: Redactor | None = None) -> list[PendingEvent]:
        """The events to append, secrets scrubbed as every recorded event's are (a key
        pasted into a chat or a code block never reaches the store in clear)."""
        return redact_events(self.events, redactor or default_redactor())
