"""The sample scenario's cast: the teams that run the triage agent, the accounts they serve
(with the plan changes the account cache does not notice), and the words customers use.

Two weeks, Monday 2024-05-27 to Sunday 2024-06-09. Acme's upgrade on 2024-06-01 and the
bad run on Monday 2024-06-03 are the seed story's; version 1.1.0 (it reads the CRM again
when a cached record is older than an hour) rolls out from 2024-06-04.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentlab.demo._names import LEAD, OWNER, TEAM
from agentlab.demo.systems import Account, Category, Priority

__all__ = [
    "ACCOUNTS",
    "DAYS",
    "ON_CALL",
    "PICKUP",
    "ROLLOUT",
    "SHORT_TTL",
    "START",
    "TEAMS",
    "TEMPLATES",
    "TEMPLATE_WEIGHTS",
    "THINGS",
    "AccountHistory",
    "Team",
    "Template",
]

START = datetime(2024, 5, 27, tzinfo=UTC)
"""The first day of the scenario (a Monday)."""
DAYS = 14

ROLLOUT: tuple[tuple[datetime, float], ...] = (
    (datetime(2024, 6, 4, tzinfo=UTC), 0.3),
    (datetime(2024, 6, 5, tzinfo=UTC), 0.7),
    (datetime(2024, 6, 6, tzinfo=UTC), 1.0),
)
"""From when, which share of runs the fixed version 1.1.0 takes (a canary, then all)."""

SHORT_TTL = (datetime(2024, 6, 7, 12, tzinfo=UTC), timedelta(minutes=15))
"""When operations cut the account cache's TTL from a week, and to what: from then on a
cached record is at most minutes old."""


@dataclass(frozen=True, slots=True)
class Team:
    """A support team: who its runs act for, its lead (who answers approval requests in
    working hours) and how often the lead checks a request against the CRM."""

    name: str
    owner: str
    lead: str
    checks: float


TEAMS = {
    TEAM: Team(TEAM, OWNER, LEAD, 0.97),
    "support-emea": Team("support-emea", "marta.silva@example.com", "marta (EMEA lead)", 0.9),
    "enterprise-success": Team("enterprise-success", "li.wong@example.com",
                               "li (enterprise lead)", 0.95),
}

ON_CALL = Team("on-call", "oncall@example.com", "sam (on-call)", 0.5)
"""Who answers at night and at weekends, in a hurry: half the requests are approved as
shown."""


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AccountHistory:
    """An account and its plans over time, each from the moment it took effect."""

    account_id: str
    name: str
    region: str
    team: str
    plans: tuple[tuple[datetime, str], ...]
    weight: int = 2
    """How many tickets it files, relative to the others."""

    def at(self, when: datetime) -> Account:
        """The account's record as the CRM held it at ``when``."""
        since, plan = self.plans[0]
        for start, later in self.plans[1:]:
            if start <= when:
                since, plan = start, later
        return Account(account_id=self.account_id, name=self.name, plan=plan,
                       region=self.region, updated_at=since)


_LONG_AGO = _t("2023-10-02T09:00:00")

ACCOUNTS = (
    AccountHistory("NWT-2101", "Northwind Traders", "us-east", TEAM,
                   ((_LONG_AGO, "business"),), 4),
    AccountHistory("CTS-2202", "Contoso Travel", "us-west", "enterprise-success",
                   ((_LONG_AGO, "enterprise"),), 4),
    AccountHistory("FBK-2303", "Fabrikam Parts", "us-east", TEAM,
                   ((_LONG_AGO, "standard"), (_t("2024-05-29T15:10:00"), "business")), 3),
    AccountHistory("TSP-2404", "Tailspin Toys", "us-west", TEAM, ((_LONG_AGO, "standard"),)),
    AccountHistory("WGB-2505", "Woodgrove Bank", "us-east", "enterprise-success",
                   ((_LONG_AGO, "enterprise"),), 3),
    AccountHistory("LTW-2606", "Litware Labs", "us-west", "enterprise-success",
                   ((_LONG_AGO, "business"), (_t("2024-05-30T16:45:00"), "enterprise")), 3),
    AccountHistory("PRW-2707", "Proseware", "us-east", TEAM, ((_LONG_AGO, "business"),)),
    AccountHistory("ADW-2808", "Adventure Works", "us-east", "enterprise-success",
                   ((_LONG_AGO, "enterprise"), (_t("2024-06-05T11:20:00"), "business")), 3),
    AccountHistory("WTT-2909", "Wingtip Toys", "us-west", TEAM, ((_LONG_AGO, "standard"),)),
    AccountHistory("ASH-3010", "Alpine Ski House", "eu-west", "support-emea",
                   ((_LONG_AGO, "standard"), (_t("2024-05-28T08:30:00"), "business")), 3),
    AccountHistory("CHW-3111", "Coho Winery", "eu-west", "support-emea",
                   ((_LONG_AGO, "standard"),)),
    AccountHistory("LCP-3212", "Lucerne Publishing", "eu-west", "support-emea",
                   ((_LONG_AGO, "business"), (_t("2024-06-06T13:00:00"), "enterprise")), 3),
    AccountHistory("FTC-3313", "Fourth Coffee", "eu-west", "support-emea",
                   ((_LONG_AGO, "business"),)),
    AccountHistory("TRR-3414", "Trey Research", "eu-west", "support-emea",
                   ((_LONG_AGO, "standard"), (_t("2024-06-07T10:05:00"), "business")), 3),
    AccountHistory("BYA-3515", "Blue Yonder Airlines", "us-east", "enterprise-success",
                   ((_LONG_AGO, "enterprise"),), 3),
    AccountHistory("HMI-3616", "Humongous Insurance", "us-west", TEAM,
                   ((_LONG_AGO, "business"),)),
    AccountHistory("WWI-3717", "Wide World Importers", "eu-west", "support-emea",
                   ((_LONG_AGO, "business"),)),
    AccountHistory("SRV-3818", "Southridge Video", "us-west", TEAM,
                   ((_LONG_AGO, "standard"),)),
)
"""The accounts behind the generated tickets; six change plan during the two weeks."""


@dataclass(frozen=True, slots=True)
class Template:
    """A way customers write about a ``category`` ticket (``{thing}`` is filled in). The
    scripted model reads words, so a template without its category's words (an outage
    asked as a question) is classified wrongly: the agent's honest mistakes."""

    category: Category
    subject: str
    body: str
    priority: Priority = "normal"


THINGS = ("orders API", "label printing", "checkout", "webhook deliveries", "invoice exports",
          "SSO login", "tracking page", "payouts", "search index", "reporting dashboard")

TEMPLATES = (
    Template("outage", "{thing} returning 503 for all requests",
             "Since {hour} UTC every call to our {thing} fails with HTTP 503. Operations are "
             "down.", "high"),
    Template("outage", "{thing} unavailable",
             "The {thing} has been unavailable since {hour} UTC for all our users. This is a "
             "production outage."),
    Template("outage", "{thing} down in production",
             "Our {thing} is down since {hour} UTC; nothing gets through."),
    Template("outage", "When will the {thing} be back?",
             "None of our {thing} traffic has gone through since {hour} UTC and customers keep "
             "calling us. Can you tell us when it will work again?", "high"),
    Template("bug", "{thing} shows incorrect totals",
             "Since {hour} UTC the {thing} shows incorrect totals for some accounts; looks "
             "like a bug."),
    Template("bug", "{thing} events arrive out of order",
             "Retried {thing} events sometimes arrive out of order, before the original."),
    Template("bug", "Wrong currency in {thing}",
             "The {thing} uses the wrong currency for our EU customers since the last "
             "release."),
    Template("bug", "{thing} totals differ from yesterday's",
             "The {thing} gives us different totals than yesterday for the same period. Why "
             "would that be?"),
    Template("question", "How do I export the {thing} as CSV?",
             "Where can I download last quarter's {thing} data as a CSV file?"),
    Template("question", "Can we add a second admin to the {thing}?",
             "We would like a colleague to manage the {thing} settings too. How do we do "
             "that?"),
    Template("question", "Rate limits of the {thing}",
             "What are the rate limits of the {thing} on our plan?"),
    Template("question", "Is the {thing} down for maintenance on Sunday?",
             "We saw an announcement about maintenance. Will the {thing} be down on Sunday, "
             "and for how long?"),
    Template("question", "Changing the billing contact",
             "Our finance contact changed; where do we update it for the {thing}?", "low"),
)
"""What tickets say. Weighted in use towards questions, then bugs, then outages."""

TEMPLATE_WEIGHTS = (5, 4, 4, 2, 4, 3, 3, 2, 7, 5, 5, 2, 4)

PICKUP = (timedelta(seconds=20), timedelta(minutes=6))
"""How long a ticket waits before the agent takes it up (the shortest and longest)."""
