"""Bearer tokens for the sample systems, checked the way a real API would check them.

A system built with a token refuses every API call whose ``auth`` header does not carry
it; one built without a token (the systems' own tests) is open. The agent's tools send the
secret of the grant a call runs under, so a call made without a grant cannot reach them.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = ["ApiTokens", "Counted", "SystemName", "check_bearer"]

SystemName = Literal["crm", "jira", "helpdesk"]


@dataclass(frozen=True, slots=True)
class ApiTokens:
    """The token each system accepts: the CRM's (accounts and entitlements), the issue
    tracker's (Jira) and the helpdesk's. Never shown in a repr."""

    crm: str = field(repr=False)
    jira: str = field(repr=False)
    helpdesk: str = field(repr=False)

    def bearer(self, system: SystemName) -> str:
        """The ``Authorization`` header value for ``system``."""
        return f"Bearer {getattr(self, system)}"


def check_bearer(system: SystemName, token: str | None, auth: str | None) -> None:
    """Refuse the call unless ``auth`` is ``"Bearer <token>"`` (always allowed without a
    token). The message never echoes what was sent."""
    if token is None:
        return
    if auth is None:
        raise PermissionError(
            f"{system}: the call carries no Authorization header; send auth='Bearer <token>'"
        )
    if not hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        raise PermissionError(f"{system}: the bearer token was not accepted; check the "
                              "credential the call runs with")


class Counted:
    """A system that counts the calls made to its API, by method: tests and replays check
    from outside the record what really reached a system (a replay must write nothing)."""

    NAME: ClassVar[str] = "system"
    """How :attr:`on_call` names the system (``"cache"`` in ``"cache.lookup"``)."""
    WRITES: ClassVar[frozenset[str]] = frozenset()
    """The methods that change the system."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.on_call: Callable[[str], None] | None = None
        """Told of each call before it is served; it may raise (a 503 the world plans)."""

    def _count(self, method: str) -> None:
        self.calls[method] += 1
        if self.on_call is not None:
            self.on_call(f"{self.NAME}.{method}")

    @property
    def writes(self) -> int:
        """How many calls changed the system."""
        return sum(n for m, n in self.calls.items() if m in self.WRITES)
