"""Small local sample systems for the demo agent: CRM, account cache, entitlements,
issue tracker and helpdesk. Deterministic, in memory, built per run by :func:`build_systems`,
optionally behind bearer tokens (:class:`ApiTokens`).
"""

from agentlab.demo.systems._auth import ApiTokens, SystemName, check_bearer
from agentlab.demo.systems._cache import DEFAULT_TTL, AccountCache, AccountLookup, CacheEntry
from agentlab.demo.systems._crm import CRM, Account
from agentlab.demo.systems._data import NOW, PLANS, TRUE_CATEGORY, Category
from agentlab.demo.systems._entitlements import Entitlement, EntitlementService
from agentlab.demo.systems._helpdesk import (
    PRIORITY_RANK,
    Draft,
    Helpdesk,
    Priority,
    PriorityChange,
    Ticket,
)
from agentlab.demo.systems._spec import CacheSeed, CallHook, Faults, TransientError, WorldSpec
from agentlab.demo.systems._tracker import Issue, IssueTracker
from agentlab.demo.systems._world import (
    Scenario,
    Systems,
    build_systems,
    build_world,
    story_world,
)

__all__ = [
    "CRM",
    "DEFAULT_TTL",
    "NOW",
    "PLANS",
    "PRIORITY_RANK",
    "TRUE_CATEGORY",
    "Account",
    "AccountCache",
    "AccountLookup",
    "ApiTokens",
    "CacheEntry",
    "CacheSeed",
    "CallHook",
    "Category",
    "Draft",
    "Entitlement",
    "EntitlementService",
    "Faults",
    "Helpdesk",
    "Issue",
    "IssueTracker",
    "Priority",
    "PriorityChange",
    "Scenario",
    "SystemName",
    "Systems",
    "Ticket",
    "TransientError",
    "WorldSpec",
    "build_systems",
    "build_world",
    "check_bearer",
    "story_world",
]
