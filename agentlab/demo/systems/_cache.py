"""A read-through TTL cache in front of the CRM, which can serve stale records.

Entries expire after a TTL but are *not* invalidated when the CRM record changes: a plan
upgrade made while an entry is cached stays invisible until the entry expires. That is
the flaw the demo's "stale" scenario exercises. Every lookup says where its answer came
from (``source``) and as of when, so a later analysis can see that a record was old.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems._auth import Counted, check_bearer
from agentlab.demo.systems._crm import CRM, Account

__all__ = ["DEFAULT_TTL", "AccountCache", "AccountLookup", "CacheEntry"]

DEFAULT_TTL = timedelta(days=7)
"""Long enough to hide a plan change for days: the misconfiguration behind the bad run."""


class CacheEntry(BaseModel):
    """A cached copy of a CRM record and when it was taken."""

    model_config = ConfigDict(frozen=True)

    account: Account
    cached_at: datetime


class AccountLookup(Account):
    """An account record with its provenance: from the cache or the CRM, and as of when."""

    source: Literal["cache", "crm"]
    as_of: datetime
    cached_at: datetime | None = None
    cache_age_s: int | None = None


class AccountCache(Counted):
    """A TTL cache over :class:`CRM`; ``now`` is injected so ages are deterministic.

    It is the CRM's account API: with a ``token``, :meth:`lookup` needs its bearer header.
    """

    NAME = "cache"

    def __init__(self, crm: CRM, *, now: datetime, ttl: timedelta = DEFAULT_TTL,
                 token: str | None = None) -> None:
        super().__init__()
        self._crm = crm
        self._now = now
        self._ttl = ttl
        self._token = token
        self._entries: dict[str, CacheEntry] = {}

    def seed(self, account: Account, *, cached_at: datetime) -> None:
        """Put a record in the cache as if it had been fetched at ``cached_at``."""
        self._entries[account.account_id] = CacheEntry(account=account, cached_at=cached_at)

    def entry(self, account_id: str) -> CacheEntry | None:
        """The cached entry for ``account_id``, expired or not, without touching the CRM."""
        return self._entries.get(account_id)

    def lookup(self, account_id: str, *, auth: str | None = None) -> AccountLookup:
        """The cached record while it is younger than the TTL, else the CRM's (then cached)."""
        self._count("lookup")
        check_bearer("crm", self._token, auth)
        entry = self._entries.get(account_id)
        if entry is not None and self._now - entry.cached_at < self._ttl:
            age = int((self._now - entry.cached_at).total_seconds())
            return _lookup(entry.account, "cache", entry.cached_at, entry.cached_at, age)
        account = self._crm.get(account_id)
        self.seed(account, cached_at=self._now)
        return _lookup(account, "crm", self._now, None, None)

    def refresh(self, account_id: str, *, auth: str | None = None) -> AccountLookup:
        """The CRM's current record, read through the cache whatever it holds (and cached):
        what a caller does when a cached record is older than it can trust."""
        self._count("refresh")
        check_bearer("crm", self._token, auth)
        account = self._crm.get(account_id)
        self.seed(account, cached_at=self._now)
        return _lookup(account, "crm", self._now, None, None)


def _lookup(account: Account, source: Literal["cache", "crm"], as_of: datetime,
            cached_at: datetime | None, age_s: int | None) -> AccountLookup:
    return AccountLookup(
        **account.model_dump(), source=source, as_of=as_of, cached_at=cached_at,
        cache_age_s=age_s,
    )
