"""One run's sample systems, built fresh for a scenario so runs never share state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agentlab.demo.systems._cache import AccountCache
from agentlab.demo.systems._crm import CRM
from agentlab.demo.systems._data import (
    ACCOUNTS,
    ACME_BEFORE_UPGRADE,
    CACHED_ELSEWHERE,
    NOW,
    PLANS,
    STALE_CACHED_AT,
    TICKETS,
    TRACKER_NEXT_NUMBERS,
)
from agentlab.demo.systems._entitlements import EntitlementService
from agentlab.demo.systems._helpdesk import Helpdesk
from agentlab.demo.systems._tracker import IssueTracker

__all__ = ["Scenario", "Systems", "build_systems"]

Scenario = Literal["fresh", "stale"]
"""``fresh``: the cache entry was invalidated by the upgrade, so lookups read the CRM.
``stale``: the cache still holds Acme's pre-upgrade record and serves it."""


@dataclass(frozen=True, slots=True)
class Systems:
    """The systems one agent run talks to."""

    crm: CRM
    cache: AccountCache
    entitlements: EntitlementService
    tracker: IssueTracker
    helpdesk: Helpdesk
    now: datetime


def build_systems(scenario: Scenario) -> Systems:
    """New systems loaded with the sample data, the cache prepared for ``scenario``."""
    if scenario not in ("fresh", "stale"):
        raise ValueError(f"scenario must be 'fresh' or 'stale', not {scenario!r}")
    crm = CRM(ACCOUNTS)
    cache = AccountCache(crm, now=NOW)
    for account, cached_at in CACHED_ELSEWHERE:
        cache.seed(account, cached_at=cached_at)
    if scenario == "stale":
        cache.seed(ACME_BEFORE_UPGRADE, cached_at=STALE_CACHED_AT)
    return Systems(
        crm=crm, cache=cache, entitlements=EntitlementService(PLANS),
        tracker=IssueTracker(TRACKER_NEXT_NUMBERS), helpdesk=Helpdesk(TICKETS), now=NOW,
    )
