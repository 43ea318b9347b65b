"""The sample world's data as Python literals, fixed in time so every run is reproducible.

The story: Acme Logistics (account ACME-1042) upgraded from the "standard" to the
"enterprise" plan on 2024-06-01 at 14:30 UTC. The account cache took a copy of the record
the evening before and, with its week-long TTL, still holds it on Monday 2024-06-03 at
09:00 UTC, when Acme reports a production outage (ticket T-1001). The same morning Initech
reports payouts that stopped arriving (T-1004) in words that read like a question, and
marked the ticket high priority itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from agentlab.demo.systems._crm import Account
from agentlab.demo.systems._entitlements import Entitlement
from agentlab.demo.systems._helpdesk import Ticket

__all__ = [
    "ACCOUNTS",
    "ACME_BEFORE_UPGRADE",
    "CACHED_ELSEWHERE",
    "NOW",
    "PLANS",
    "STALE_CACHED_AT",
    "TICKETS",
    "TRACKER_NEXT_NUMBERS",
    "TRUE_CATEGORY",
    "Category",
]

Category = Literal["outage", "bug", "question"]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = _t("2024-06-03T09:00:00")
"""The demo's "now": cache ages are measured from it, never from the wall clock."""

ACCOUNTS = (
    Account(account_id="ACME-1042", name="Acme Logistics", plan="enterprise",
            region="us-east", updated_at=_t("2024-06-01T14:30:00")),
    Account(account_id="GLOBEX-2001", name="Globex Retail", plan="standard",
            region="eu-west", updated_at=_t("2024-02-12T09:15:00")),
    Account(account_id="INITECH-3307", name="Initech Payments", plan="business",
            region="us-west", updated_at=_t("2024-04-22T16:05:00")),
)
"""The CRM's current records: the ground truth."""

ACME_BEFORE_UPGRADE = Account(
    account_id="ACME-1042", name="Acme Logistics", plan="standard", region="us-east",
    updated_at=_t("2023-11-20T10:00:00"),
)
"""Acme's record as it was until the upgrade."""

STALE_CACHED_AT = _t("2024-05-31T22:00:00")
"""When the cache copied Acme's pre-upgrade record (before the 2024-06-01 upgrade)."""

CACHED_ELSEWHERE = ((ACCOUNTS[1], _t("2024-06-02T12:00:00")),)
"""Other cache entries, current and harmless, present in both scenarios."""

PLANS = (
    Entitlement(plan="standard", tier="Standard", sla_hours=24,
                engineering_escalation=False, coverage="business hours"),
    Entitlement(plan="business", tier="Business", sla_hours=8,
                engineering_escalation=False, coverage="business hours"),
    Entitlement(plan="enterprise", tier="Premier", sla_hours=1,
                engineering_escalation=True, coverage="24x7"),
)

TICKETS = (
    Ticket(ticket_id="T-1001", account_id="ACME-1042", requester="Maya Chen",
           subject="Shipments API returning 503 for all requests",
           body=("Since 08:10 UTC every call to /v2/shipments fails with HTTP 503. Our "
                 "warehouses cannot print shipping labels: operations are down."),
           priority="normal", created_at=_t("2024-06-03T08:25:00")),
    Ticket(ticket_id="T-1002", account_id="GLOBEX-2001", requester="Tom Berg",
           subject="How do I export invoices as CSV?",
           body="Where can I download last quarter's invoices as a CSV file?",
           priority="normal", created_at=_t("2024-06-03T07:40:00")),
    Ticket(ticket_id="T-1003", account_id="INITECH-3307", requester="Priya Nair",
           subject="Webhook retries arrive out of order",
           body=("Retried webhook deliveries sometimes arrive before the original event, "
                 "which looks like a bug in the retry queue."),
           priority="normal", created_at=_t("2024-06-03T06:55:00")),
    Ticket(ticket_id="T-1004", account_id="INITECH-3307", requester="Priya Nair",
           subject="When will today's EU merchant payouts arrive?",
           body=("None of today's payouts to our EU merchants have arrived since 06:00 UTC and "
                 "merchants keep calling us. Can you tell us when they will go through?"),
           priority="high", created_at=_t("2024-06-03T08:40:00")),
)

TRUE_CATEGORY: dict[str, Category] = {
    "T-1001": "outage", "T-1002": "question", "T-1003": "bug", "T-1004": "outage",
}
"""What each ticket really is, as a support lead would label it (for the outcome check)."""

TRACKER_NEXT_NUMBERS = {"ENG": 101, "SUP": 57}
