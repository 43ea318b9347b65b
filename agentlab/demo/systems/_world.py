"""One run's sample systems, built fresh for a world so runs never share state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    TRUE_CATEGORY,
    Category,
)
from agentlab.demo.systems._entitlements import EntitlementService
from agentlab.demo.systems._helpdesk import Helpdesk
from agentlab.demo.systems._spec import CacheSeed, CallHook, Faults, WorldSpec
from agentlab.demo.systems._tracker import IssueTracker

__all__ = ["Scenario", "Systems", "build_systems", "build_world", "story_world"]

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
    categories: Mapping[str, Category] = field(default_factory=lambda: dict(TRUE_CATEGORY))
    """What each ticket really is, as a support lead would label it (the ground truth)."""
    on_model_call: Callable[[int, int], None] | None = None
    """Told the input and output tokens of each model call the agent makes in this world
    (a scenario's clock lets the model take the time a hosted model would)."""

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


def story_world(scenario: Scenario) -> WorldSpec:
    """The seed story's world on Monday 2024-06-03 09:00 UTC, its cache per ``scenario``."""
    if scenario not in ("fresh", "stale"):
        raise ValueError(f"scenario must be 'fresh' or 'stale', not {scenario!r}")
    cache = [CacheSeed(account=a, cached_at=t) for a, t in CACHED_ELSEWHERE]
    if scenario == "stale":
        cache.append(CacheSeed(account=ACME_BEFORE_UPGRADE, cached_at=STALE_CACHED_AT))
    return WorldSpec(now=NOW, accounts=list(ACCOUNTS), cache=cache, tickets=list(TICKETS),
                     categories=dict(TRUE_CATEGORY), next_numbers=dict(TRACKER_NEXT_NUMBERS))


def build_world(world: WorldSpec, *, tokens: ApiTokens | None = None,
                on_call: CallHook | None = None,
                on_model_call: Callable[[int, int], None] | None = None) -> Systems:
    """New systems loaded with ``world``: with ``tokens`` each system's API needs its
    bearer header (without, they are open); ``on_call`` is told of every API call before
    the world's planned faults have their say, ``on_model_call`` of each model call."""
    crm_token = tokens.crm if tokens is not None else None
    crm = CRM(world.accounts)
    cache = AccountCache(crm, now=world.now, ttl=world.cache_ttl, token=crm_token)
    for seed in world.cache:
        cache.seed(seed.account, cached_at=seed.cached_at)
    systems = Systems(
        crm=crm, cache=cache, entitlements=EntitlementService(PLANS, token=crm_token),
        tracker=IssueTracker(world.next_numbers,
                             token=tokens.jira if tokens is not None else None),
        helpdesk=Helpdesk(world.tickets,
                          token=tokens.helpdesk if tokens is not None else None),
        now=world.now, tokens=tokens, categories=dict(world.categories),
        on_model_call=on_model_call,
    )
    if world.faults or on_call is not None:
        hook = Faults(world.faults, then=on_call)
        for system in (cache, systems.entitlements, systems.tracker, systems.helpdesk):
            system.on_call = hook
    return systems


def build_systems(scenario: Scenario, *, tokens: ApiTokens | None = None) -> Systems:
    """New systems loaded with the seed story's data, the cache prepared for ``scenario``.

    With ``tokens``, each system's API needs its bearer header; without, they are open.
    """
    return build_world(story_world(scenario), tokens=tokens)
