"""The helpdesk: customer tickets, their priority, and reply drafts written by the agent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems._auth import Counted, check_bearer

__all__ = ["PRIORITY_RANK", "Draft", "Helpdesk", "Priority", "PriorityChange", "Ticket"]

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITY_RANK: dict[Priority, int] = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
"""Priorities in increasing order of urgency, for comparing them."""


class Ticket(BaseModel):
    """A customer's support ticket as the helpdesk shows it."""

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    account_id: str
    requester: str
    subject: str
    body: str
    priority: Priority
    created_at: datetime


class Draft(BaseModel):
    """A reply draft saved on a ticket (not yet sent to the customer)."""

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    body: str
    version: int


class PriorityChange(BaseModel):
    """A ticket's priority before and after a change."""

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    previous: Priority
    priority: Priority


class Helpdesk(Counted):
    """An in-memory helpdesk. With a ``token``, every call needs its bearer header."""

    NAME = "helpdesk"
    WRITES = frozenset({"save_draft", "discard_draft", "set_priority"})

    def __init__(self, tickets: Iterable[Ticket], *, token: str | None = None) -> None:
        super().__init__()
        self._token = token
        self._tickets = {t.ticket_id: t for t in tickets}
        self._drafts: dict[str, Draft] = {}

    def ticket(self, ticket_id: str, *, auth: str | None = None) -> Ticket:
        """The ticket as it is now."""
        self._count("ticket")
        return self._ticket(ticket_id, auth)

    def _ticket(self, ticket_id: str, auth: str | None) -> Ticket:
        check_bearer("helpdesk", self._token, auth)
        try:
            return self._tickets[ticket_id]
        except KeyError:
            known = ", ".join(sorted(self._tickets))
            raise LookupError(f"no ticket {ticket_id!r} in the helpdesk; known: {known}") from None

    def draft(self, ticket_id: str, *, auth: str | None = None) -> Draft | None:
        """The latest reply draft of a ticket, if any."""
        self._count("draft")
        check_bearer("helpdesk", self._token, auth)
        return self._drafts.get(ticket_id)

    def save_draft(self, ticket_id: str, body: str, *, auth: str | None = None) -> Draft:
        """Save (or replace) the reply draft of a ticket."""
        self._count("save_draft")
        self._ticket(ticket_id, auth)
        previous = self._drafts.get(ticket_id)
        draft = Draft(ticket_id=ticket_id, body=body,
                      version=previous.version + 1 if previous else 1)
        self._drafts[ticket_id] = draft
        return draft

    def discard_draft(self, ticket_id: str, *, version: int | None = None,
                      auth: str | None = None) -> Draft | None:
        """Discard the reply draft of a ticket (with ``version``, only that version): the
        discarded draft, or None when there was nothing (left) to discard."""
        self._count("discard_draft")
        self._ticket(ticket_id, auth)
        found = self._drafts.get(ticket_id)
        if found is None or (version is not None and found.version != version):
            return None
        return self._drafts.pop(ticket_id)

    def set_priority(self, ticket_id: str, priority: Priority, *, current: Priority | None = None,
                     auth: str | None = None) -> PriorityChange:
        """Change a ticket's priority; with ``current``, only if that is still its priority
        (compare-and-set: a change decided on an old reading of the ticket is refused)."""
        self._count("set_priority")
        ticket = self._ticket(ticket_id, auth)
        if current is not None and ticket.priority != current:
            raise ValueError(
                f"ticket {ticket_id} has priority {ticket.priority!r}, not {current!r} as the "
                "caller assumed; read the ticket again and decide on what it says now"
            )
        self._tickets[ticket_id] = ticket.model_copy(update={"priority": priority})
        return PriorityChange(ticket_id=ticket_id, previous=ticket.priority, priority=priority)
