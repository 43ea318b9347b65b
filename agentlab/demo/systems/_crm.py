"""The CRM: the system of record for customer accounts, and so the demo's ground truth.

Whatever else the agent sees (a cache, a copy), the CRM's current record is what is true
now; the outcome check compares the agent's actions with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["CRM", "Account"]


class Account(BaseModel):
    """A customer account as the CRM stores it; ``updated_at`` is its last change."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    name: str
    plan: str
    region: str
    updated_at: datetime


class CRM:
    """An in-memory CRM holding each account's current record."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._accounts = {a.account_id: a for a in accounts}

    def get(self, account_id: str) -> Account:
        """The current record of ``account_id``."""
        try:
            return self._accounts[account_id]
        except KeyError:
            known = ", ".join(sorted(self._accounts))
            raise LookupError(
                f"no account {account_id!r} in the CRM; known accounts: {known}"
            ) from None
