"""A world as data: everything :func:`build_world` needs to make one run's systems.

A run of the sample scenario works on its own small world (the ticket, its account as the
CRM holds it now, what the cache holds, the faults its systems will show). Written down as
a :class:`WorldSpec`, that world travels in the run's metadata, so a replay, a fork or a
resume in another process rebuilds exactly the systems the run saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from agentlab.demo.systems._cache import DEFAULT_TTL
from agentlab.demo.systems._crm import Account
from agentlab.demo.systems._data import Category
from agentlab.demo.systems._helpdesk import Ticket

__all__ = ["CacheSeed", "CallHook", "Faults", "TransientError", "WorldSpec"]

CallHook = Callable[[str], None]
"""Told of every API call a system serves, as ``"system.method"`` (``"cache.lookup"``)."""


class TransientError(ConnectionError):
    """A system answered 503: worth a retry, as the tools that call it know."""


class CacheSeed(BaseModel):
    """A record the account cache holds before the run, and since when."""

    model_config = ConfigDict(frozen=True)

    account: Account
    cached_at: datetime


class WorldSpec(BaseModel):
    """One run's world: accounts (the CRM's current records), the cache's entries and how
    long it keeps them, the tickets and what each really is, the issue numbers the tracker
    hands out next, the systems' clock, and transient failures (``faults``: how many of the
    first calls of a ``"system.method"`` answer 503)."""

    model_config = ConfigDict(frozen=True)

    now: datetime
    accounts: list[Account]
    cache: list[CacheSeed] = Field(default_factory=list)
    cache_ttl: timedelta = DEFAULT_TTL
    tickets: list[Ticket]
    categories: dict[str, Category]
    next_numbers: dict[str, int]
    faults: dict[str, int] = Field(default_factory=dict)


class Faults:
    """The transient failures of one world's systems: the first ``n`` calls of a method
    named in ``plan`` raise :class:`TransientError`; ``then`` is told of every call."""

    def __init__(self, plan: Mapping[str, int], *, then: CallHook | None = None) -> None:
        self._left = dict(plan)
        self._then = then

    def __call__(self, call: str) -> None:
        if self._then is not None:
            self._then(call)
        left = self._left.get(call, 0)
        if left > 0:
            self._left[call] = left - 1
            raise TransientError(f"{call}: 503 Service Unavailable (the service is "
                                 "overloaded; retry shortly)")
