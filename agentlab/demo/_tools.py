"""The agent's tools: thin, recorded wrappers over one run's sample systems.

Each tool is an :func:`agentlab.tool` that declares the scope it needs, so every call runs
under one of the run's grants and sends that grant's secret to the system as a bearer
header, as a real API client would (the secret is never an argument or a result, so it is
never recorded). The three that change a system (``create_issue``, ``draft_reply``,
``set_priority``) are ``side_effect=True``: their intent is committed before they run.
Tools are bound to a :class:`Systems` per run, so the systems never appear as arguments.

Scopes, and the demo grant that holds each: ``read_ticket`` helpdesk:read,
``set_priority`` helpdesk:priority and ``draft_reply`` helpdesk:draft (reply-drafter);
``lookup_account`` crm:read and ``check_entitlement`` entitlements:read (crm-reader);
``create_issue`` jira:write:{project}-new (jira-writer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from agentlab.demo.systems import (
    AccountLookup,
    Draft,
    Entitlement,
    Issue,
    Priority,
    PriorityChange,
    Systems,
    Ticket,
)
from agentlab.errors import RecordingError
from agentlab.record import credential, tool

__all__ = ["ISSUE_SCOPE", "TriageTools", "issue_idempotency_key"]

ISSUE_SCOPE = "jira:write:{project}-new"
"""A new issue in ``project``: ``jira:write:SUP-*`` allows it as it allows SUP-57."""


def issue_idempotency_key(ticket_id: str) -> str:
    """One escalation issue per ticket: a retried or replayed create never duplicates it."""
    return f"triage:{ticket_id}:issue"


def _issue_key_from_arguments(arguments: Mapping[str, Any]) -> str:
    return issue_idempotency_key(str(arguments["ticket_id"]))


def _bearer() -> str | None:
    """The Authorization header of the call running now: its grant's secret."""
    try:
        secret = credential().secret
    except RecordingError:  # called outside a recorded run: no grant, so no secret to send
        return None
    return f"Bearer {secret}" if secret is not None else None


ACCOUNT_FRESHNESS = timedelta(hours=1)


class TriageTools:
    """The tools of one triage run, bound to that run's systems."""

    def __init__(self, systems: Systems) -> None:
        self._s = systems
        # Wrapping bound methods keeps ``self`` out of the recorded arguments.
        self.read_ticket = tool(name="read_ticket", scope="helpdesk:read")(self._read_ticket)
        # Account data older than an hour is a stale-state incident (the bad run's cache
        # serves a record 59 hours old).
        self.lookup_account = tool(name="lookup_account", scope="crm:read",
                                   freshness=ACCOUNT_FRESHNESS)(self._lookup_account)
        self.check_entitlement = tool(
            name="check_entitlement", scope="entitlements:read",
        )(self._check_entitlement)
        self.create_issue = tool(
            name="create_issue", side_effect=True, scope=ISSUE_SCOPE,
            idempotency_key=_issue_key_from_arguments,
        )(self._create_issue)
        self.draft_reply = tool(
            name="draft_reply", side_effect=True, scope="helpdesk:draft",
        )(self._draft_reply)
        self.set_priority = tool(
            name="set_priority", side_effect=True, scope="helpdesk:priority",
        )(self._set_priority)

    def _read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket from the helpdesk."""
        return self._s.helpdesk.ticket(ticket_id, auth=_bearer())

    def _lookup_account(self, account_id: str) -> AccountLookup:
        """The account, through the cache; the result says whether it came from the cache."""
        return self._s.cache.lookup(account_id, auth=_bearer())

    def _check_entitlement(self, plan: str) -> Entitlement:
        """What support ``plan`` includes."""
        return self._s.entitlements.lookup(plan, auth=_bearer())

    def _create_issue(self, project: str, title: str, priority: Priority, description: str,
                      ticket_id: str) -> Issue:
        """Open an issue in ``project`` linked to the ticket (idempotent per ticket)."""
        return self._s.tracker.create(
            project=project, title=title, priority=priority, description=description,
            ticket_id=ticket_id, idempotency_key=issue_idempotency_key(ticket_id),
            auth=_bearer(),
        )

    def _draft_reply(self, ticket_id: str, body: str) -> Draft:
        """Save a reply draft on the ticket for a human to review and send."""
        return self._s.helpdesk.save_draft(ticket_id, body, auth=_bearer())

    def _set_priority(self, ticket_id: str, priority: Priority, current: Priority) -> PriorityChange:
        """Move the ticket from ``current`` to ``priority`` (refused if it is no longer at
        ``current``, so a policy judging the change from its arguments judges the truth)."""
        return self._s.helpdesk.set_priority(ticket_id, priority, current=current,
                                             auth=_bearer())
