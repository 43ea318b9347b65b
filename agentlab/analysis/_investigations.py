"""Investigations: recording when someone starts explaining a run and what they concluded,
so the mean time to explain (MTTE) is measured from data, not guessed."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable

from agentlab.errors import InvestigationError
from agentlab.model import Investigation, now_ns
from agentlab.model._ids import Clock
from agentlab.store import RunStore

__all__ = ["conclude", "investigate", "mtte_seconds", "who"]


def who(name: str | None = None) -> str:
    """The person acting: ``name``, else ``$AGENTLAB_USER``, else the login name."""
    if name:
        return name
    env = os.environ.get("AGENTLAB_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def investigate(store: RunStore, run_id: str, *, by: str | None = None,
                clock: Clock | None = None) -> Investigation:
    """Open an investigation of a run (or return the one already open): the clock starts."""
    return store.open_investigation(run_id, by=who(by), at_us=(clock or now_ns)() // 1000)


def conclude(store: RunStore, run_id: str, *, culprit_seq: int | None, note: str | None = None,
             by: str | None = None, clock: Clock | None = None) -> Investigation:
    """Conclude the run's investigation with the culprit step (its seq) and a note."""
    if culprit_seq is not None:
        last = store.run(run_id).last_seq
        if not 1 <= culprit_seq <= last:
            raise InvestigationError(
                f"culprit seq {culprit_seq} is not a step of run {run_id} (it has seq 1-{last}); "
                "see `agentlab show RUN` or `agentlab explain RUN`"
            )
    return store.conclude_investigation(run_id, by=who(by), at_us=(clock or now_ns)() // 1000,
                                        culprit_seq=culprit_seq, note=note)


def mtte_seconds(investigations: Iterable[Investigation]) -> float | None:
    """Mean seconds from opening to concluding, over concluded investigations (None: none)."""
    times = [t for i in investigations if (t := i.seconds_to_explain) is not None]
    return sum(times) / len(times) if times else None
