"""A Jira-like issue tracker: projects with numbered issue keys ("ENG-101", "SUP-57").

Creating an issue is idempotent on its key: a retried create returns the issue made the
first time instead of opening a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems._auth import Counted, check_bearer
from agentlab.demo.systems._helpdesk import Priority

__all__ = ["Issue", "IssueTracker"]


class Issue(BaseModel):
    """An issue in the tracker."""

    model_config = ConfigDict(frozen=True)

    key: str
    project: str
    title: str
    priority: Priority
    description: str
    ticket_id: str
    idempotency_key: str
    status: Literal["open", "closed"] = "open"


class IssueTracker(Counted):
    """An in-memory tracker; ``next_numbers`` gives each project's next issue number. With a
    ``token``, every call needs its bearer header."""

    NAME = "tracker"
    WRITES = frozenset({"create", "close"})

    def __init__(self, next_numbers: Mapping[str, int], *, token: str | None = None) -> None:
        super().__init__()
        self._token = token
        self._next = dict(next_numbers)
        self._issues: dict[str, Issue] = {}
        self._by_idempotency_key: dict[str, str] = {}

    def issues(self, *, ticket_id: str | None = None, auth: str | None = None) -> list[Issue]:
        """All issues (or those linked to ``ticket_id``), in creation order."""
        self._count("issues")
        check_bearer("jira", self._token, auth)
        return [i for i in self._issues.values() if ticket_id is None or i.ticket_id == ticket_id]

    def create(self, *, project: str, title: str, priority: Priority, description: str,
               ticket_id: str, idempotency_key: str, auth: str | None = None) -> Issue:
        """Open an issue, or return the one already opened with ``idempotency_key``."""
        self._count("create")
        check_bearer("jira", self._token, auth)
        existing = self._by_idempotency_key.get(idempotency_key)
        if existing is not None:
            return self._issues[existing]
        if project not in self._next:
            known = ", ".join(sorted(self._next))
            raise ValueError(f"no project {project!r} in the tracker; projects: {known}")
        key = f"{project}-{self._next[project]}"
        self._next[project] += 1
        issue = Issue(key=key, project=project, title=title, priority=priority,
                      description=description, ticket_id=ticket_id,
                      idempotency_key=idempotency_key)
        self._issues[key] = issue
        self._by_idempotency_key[idempotency_key] = key
        return issue

    def find(self, idempotency_key: str, *, auth: str | None = None) -> Issue | None:
        """The issue opened with ``idempotency_key``, if any (did an interrupted create
        happen?)."""
        self._count("find")
        check_bearer("jira", self._token, auth)
        key = self._by_idempotency_key.get(idempotency_key)
        return self._issues[key] if key is not None else None

    def close(self, key: str, *, auth: str | None = None) -> Issue:
        """Close an issue (closing a closed issue changes nothing)."""
        self._count("close")
        check_bearer("jira", self._token, auth)
        try:
            issue = self._issues[key]
        except KeyError:
            raise LookupError(f"no issue {key!r} in the tracker") from None
        closed = issue.model_copy(update={"status": "closed"})
        self._issues[key] = closed
        return closed
