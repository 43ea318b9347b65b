"""One run's sample systems, built fresh for a scenario so runs never share state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agentlab.demo.systems._auth import ApiTokens, SystemName
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
    tokens: ApiTokens | None = None

    def calls(self) -> Counter[str]:
        """Every API call made to these systems so far, as ``system.method`` counts."""
        out: Counter[str] = Counter()
        for name in ("cache", "entitlements", "tracker", "helpdesk"):
            for method, n in getattr(self, name).calls.items():
                out[f"{name}.{method}"] += n
        return out

    @property
    def writes(self) -> int:
        """How many calls changed a system (issues created or closed, drafts, priorities)."""
        return self.tracker.writes + self.helpdesk.writes

    def bearer(self, system: SystemName) -> str | None:
        """The header that opens ``system`` (None when the systems were built open), for
        code that inspects them from outside the agent: the outcome check, the lead."""
        return self.tokens.bearer(system) if self.tokens is not None else None


def build_systems(scenario: Scenario, *, tokens: ApiTokens | None = None) -> Systems:
    """New systems loaded with the sample data, the cache prepared for ``scenario``.

    With ``tokens``, each system's API needs its bearer header; without, they are open.
    """
    if scenario not in ("fresh", "stale"):
        raise ValueError(f"scenario must be 'fresh' or 'stale', not {scenario!r}")
    crm_token = tokens.crm if tokens is not None else None
    crm = CRM(ACCOUNTS)
    cache = AccountCache(crm, now=NOW, token=crm_token)
    for account, cached_at in CACHED_ELSEWHERE:
        cache.seed(account, cached_at=cached_at)
    if scenario == "stale":
        cache.seed(ACME_BEFORE_UPGRADE, cached_at=STALE_CACHED_AT)
    return Systems(
        crm=crm, cache=cache, entitlements=EntitlementService(PLANS, token=crm_token),
        tracker=IssueTracker(TRACKER_NEXT_NUMBERS,
                             token=tokens.jira if tokens is not None else None),
        helpdesk=Helpdesk(TICKETS, token=tokens.helpdesk if tokens is not None else None),
        now=NOW, tokens=tokens,
    )
