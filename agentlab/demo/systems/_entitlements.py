"""The entitlement service: what support a plan buys (tier, response SLA, escalation)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

__all__ = ["Entitlement", "EntitlementService"]


class Entitlement(BaseModel):
    """The support a plan includes."""

    model_config = ConfigDict(frozen=True)

    plan: str
    tier: str
    sla_hours: int
    engineering_escalation: bool
    coverage: str


class EntitlementService:
    """Looks up the entitlement of a plan in a fixed catalogue."""

    def __init__(self, catalogue: Iterable[Entitlement]) -> None:
        self._by_plan = {e.plan: e for e in catalogue}

    def lookup(self, plan: str) -> Entitlement:
        """The entitlement of ``plan``."""
        try:
            return self._by_plan[plan]
        except KeyError:
            known = ", ".join(sorted(self._by_plan))
            raise LookupError(f"no entitlement for plan {plan!r}; known plans: {known}") from None
