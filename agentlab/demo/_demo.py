"""The demo's story: the same ticket triaged twice, once with a fresh account record and
once with a stale cached one, recorded side by side so the bad run can be explained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentlab.demo._agent import DEMO_TICKET, run_triage
from agentlab.store import RunStore

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The ids of the two runs :func:`run_demo` recorded."""

    good_run_id: str
    bad_run_id: str


def run_demo(store: RunStore, *, out: Callable[[str], None] | None = None) -> DemoResult:
    """Record the good run (fresh account data) and the bad run (stale cache) of ticket T-1001.

    Both runs share the task id ``ticket:T-1001``. In the bad run the account cache serves
    Acme's record from before its upgrade to the enterprise plan, so the agent quotes the
    standard entitlement, files the issue in the SUP backlog instead of ENG, and leaves the
    priority at normal instead of urgent; the outcome check fails it.

    >>> result = run_demo(open_store("demo.db"), out=print)   # doctest: +SKIP
    """
    say = out or (lambda line: None)
    say("Good run: the cache entry was invalidated by Acme's upgrade; the lookup reads the CRM.")
    good = run_triage(store, scenario="fresh", ticket_id=DEMO_TICKET, out=out)
    say("Bad run: the cache still holds Acme's record from before the upgrade and serves it.")
    bad = run_triage(store, scenario="stale", ticket_id=DEMO_TICKET, out=out)
    return DemoResult(good_run_id=good, bad_run_id=bad)
