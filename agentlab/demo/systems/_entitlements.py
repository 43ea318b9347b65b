"""The entitlement service: what support a plan buys (tier, response SLA, escalation)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems._auth import Counted, check_bearer

__all__ = ["Entitlement", "EntitlementService"]


class Entitlement(BaseModel):
    """The support a plan includes."""

    model_config = ConfigDict(frozen=True)

    plan: str
    tier: str
    sla_hours: int
    engineering_escalation: bool
    coverage: str


class EntitlementService(Counted):
    """Looks up the entitlement of a plan in a fixed catalogue (part of the CRM's API: with
    a ``token``, calls need the CRM's bearer header)."""

    NAME = "entitlements"

    def __init__(self, catalogue: Iterable[Entitlement], *, token: str | None = None) -> None:
        super().__init__()
        self._by_plan = {e.plan: e for e in catalogue}
        self._token = token

    def lookup(self, plan: str, *, auth: str | None = None) -> Entitlement:
        """The entitlement of ``plan``."""
        self._count("lookup")
        check_bearer("crm", self._token, auth)
        try:
            return self._by_plan[plan]
        except KeyError:
            known = ", ".join(sorted(self._by_plan))
            raise LookupError(f"no entitlement for plan {plan!r}; known plans: {known}") from None
