"""Small local sample systems for the demo agent: CRM, account cache, entitlements,
issue tracker and helpdesk. Deterministic, in memory, built per run by :func:`build_systems`,
optionally behind bearer tokens (:class:`ApiTokens`).
"""

from agentlab.demo.systems._auth import ApiTokens, SystemName, check_bearer
from agentlab.demo.systems._cache import DEFAULT_TTL, AccountCache, AccountLookup, CacheEntry
from agentlab.demo.systems._crm import CRM, Account
from agentlab.demo.systems._data import NOW, TRUE_CATEGORY, Category
from agentlab.demo.systems._entitlements import Entitlement, EntitlementService
from agentlab.demo.systems._helpdesk import (
    PRIORITY_RANK,
    Draft,
    Helpdesk,
    Priority,
    PriorityChange,
    Ticket,
)
from agentlab.demo.systems._tracker import Issue, IssueTracker
from agentlab.demo.systems._world import Scenario, Systems, build_systems

__all__ = [
    "CRM",
    "DEFAULT_TTL",
    "NOW",
    "PRIORITY_RANK",
    "TRUE_CATEGORY",
    "Account",
    "AccountCache",
    "AccountLookup",
    "ApiTokens",
    "CacheEntry",
    "Category",
    "Draft",
    "Entitlement",
    "EntitlementService",
    "Helpdesk",
    "Issue",
    "IssueTracker",
    "Priority",
    "PriorityChange",
    "Scenario",
    "SystemName",
    "Systems",
    "Ticket",
    "build_systems",
    "check_bearer",
]
