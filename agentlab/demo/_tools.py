"""The agent's tools: thin, recorded wrappers over one run's sample systems.

Each tool is an :func:`agentlab.tool` that declares the scope it needs, so every call runs
under one of the run's grants and sends that grant's secret to the system as a bearer
header, as a real API client would (the secret is never an argument or a result, so it is
never recorded). The three that change a system (``create_issue``, ``draft_reply``,
``set_priority``) are ``side_effect=True``: their intent is committed before they run.
Tools are bound to a :class:`Systems` per run, so the systems never appear as arguments.

Scopes, and the demo grant that holds each: ``read_ticket`` helpdesk:read,
``set_priority`` helpdesk:priority and ``draft_reply`` helpdesk:draft (reply-drafter);
``lookup_account``, ``refresh_account`` crm:read and ``check_entitlement``
entitlements:read (crm-reader); ``create_issue`` jira:write:{project}-new (jira-writer).

Each side-effecting tool declares its recovery hooks: a ``stub`` that answers for it in a
replay without touching a system (a dry-run result), a ``reconcile`` that asks the system
whether an interrupted call took effect, and a ``compensate`` that undoes it in a rollback
(close the issue, restore the priority, discard the draft).
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
    TransientError,
)
from agentlab.errors import RecordingError
from agentlab.record import NOT_APPLIED, Compensation, credential, tool

__all__ = ["CLOSE_SCOPE", "ISSUE_SCOPE", "TriageTools", "issue_idempotency_key"]

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

_RETRY: dict[str, Any] = {"retries": 2, "retry_on": (TransientError,)}
"""Two more attempts after a 503 (an issue create is idempotent, so it may be retried)."""


CLOSE_SCOPE = "jira:write:{project}-close"
"""Closing an issue of ``project`` (a rollback's compensation of ``create_issue``)."""


class TriageTools:
    """The tools of one triage run, bound to that run's systems."""

    def __init__(self, systems: Systems) -> None:
        self._s = systems
        # Wrapping bound methods keeps ``self`` out of the recorded arguments.
        self.read_ticket = tool(name="read_ticket", scope="helpdesk:read")(self._read_ticket)
        # Account data older than an hour is a stale-state incident (the bad run's cache
        # serves a record 59 hours old). A 503 from the CRM or the tracker is retried.
        self.lookup_account = tool(name="lookup_account", scope="crm:read",
                                   freshness=ACCOUNT_FRESHNESS, **_RETRY)(self._lookup_account)
        self.refresh_account = tool(name="refresh_account", scope="crm:read",
                                    freshness=ACCOUNT_FRESHNESS, **_RETRY)(self._refresh_account)
        self.check_entitlement = tool(
            name="check_entitlement", scope="entitlements:read", **_RETRY,
        )(self._check_entitlement)
        self.create_issue = tool(
            name="create_issue", side_effect=True, scope=ISSUE_SCOPE, **_RETRY,
            idempotency_key=_issue_key_from_arguments, stub=_dry_issue,
            reconcile=self._issue_created,
            compensate=Compensation(self._close_issue, scope=CLOSE_SCOPE,
                                    reconcile=self._issue_closed),
        )(self._create_issue)
        self.draft_reply = tool(
            name="draft_reply", side_effect=True, scope="helpdesk:draft", stub=_dry_draft,
            reconcile=self._draft_saved, compensate=self._discard_draft,
        )(self._draft_reply)
        self.set_priority = tool(
            name="set_priority", side_effect=True, scope="helpdesk:priority",
            stub=_dry_priority, reconcile=self._priority_set, compensate=self._restore_priority,
        )(self._set_priority)

    def _read_ticket(self, ticket_id: str) -> Ticket:
        """The ticket from the helpdesk."""
        return self._s.helpdesk.ticket(ticket_id, auth=_bearer())

    def _lookup_account(self, account_id: str) -> AccountLookup:
        """The account, through the cache; the result says whether it came from the cache."""
        return self._s.cache.lookup(account_id, auth=_bearer())

    def _refresh_account(self, account_id: str) -> AccountLookup:
        """The account's current record from the CRM, whatever the cache holds."""
        return self._s.cache.refresh(account_id, auth=_bearer())

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

    def _issue_created(self, arguments: Mapping[str, Any], key: str) -> Any:
        found = self._s.tracker.find(issue_idempotency_key(str(arguments["ticket_id"])),
                                     auth=_bearer())
        return found if found is not None else NOT_APPLIED

    def _close_issue(self, arguments: Mapping[str, Any], result: Any) -> Issue:
        return self._s.tracker.close(str(result["key"]), auth=_bearer())

    def _issue_closed(self, arguments: Mapping[str, Any], result: Any) -> Any:
        found = self._s.tracker.find(str(result["idempotency_key"]), auth=_bearer())
        return found if found is not None and found.status == "closed" else NOT_APPLIED

    def _draft_reply(self, ticket_id: str, body: str) -> Draft:
        """Save a reply draft on the ticket for a human to review and send."""
        return self._s.helpdesk.save_draft(ticket_id, body, auth=_bearer())

    def _draft_saved(self, arguments: Mapping[str, Any], key: str) -> Any:
        found = self._s.helpdesk.draft(str(arguments["ticket_id"]), auth=_bearer())
        return found if found is not None and found.body == arguments["body"] else NOT_APPLIED

    def _discard_draft(self, arguments: Mapping[str, Any], result: Any) -> Draft | None:
        return self._s.helpdesk.discard_draft(str(result["ticket_id"]),
                                              version=int(result["version"]), auth=_bearer())

    def _set_priority(self, ticket_id: str, priority: Priority, current: Priority) -> PriorityChange:
        """Move the ticket from ``current`` to ``priority`` (refused if it is no longer at
        ``current``, so a policy judging the change from its arguments judges the truth)."""
        return self._s.helpdesk.set_priority(ticket_id, priority, current=current,
                                             auth=_bearer())

    def _priority_set(self, arguments: Mapping[str, Any], key: str) -> Any:
        ticket = self._s.helpdesk.ticket(str(arguments["ticket_id"]), auth=_bearer())
        if ticket.priority != arguments["priority"]:
            return NOT_APPLIED
        return PriorityChange(ticket_id=ticket.ticket_id, previous=arguments["current"],
                              priority=ticket.priority)

    def _restore_priority(self, arguments: Mapping[str, Any], result: Any) -> PriorityChange:
        return self._s.helpdesk.set_priority(str(result["ticket_id"]), result["previous"],
                                             current=result["priority"], auth=_bearer())


# Stubs: what each side effect would have returned, made up without touching a system
# (a replay of changed code calls them instead of the tool).

def _dry_issue(project: str, title: str, priority: Priority, description: str,
               ticket_id: str) -> Issue:
    return Issue(key=f"{project}-DRYRUN", project=project, title=title, priority=priority,
                 description=description, ticket_id=ticket_id,
                 idempotency_key=issue_idempotency_key(ticket_id))


def _dry_draft(ticket_id: str, body: str) -> Draft:
    return Draft(ticket_id=ticket_id, body=body, version=0)


def _dry_priority(ticket_id: str, priority: Priority, current: Priority) -> PriorityChange:
    return PriorityChange(ticket_id=ticket_id, previous=current, priority=priority)
