"""A Jira-like issue tracker: projects with numbered issue keys ("ENG-101", "SUP-57").

Creating an issue is idempotent on its key: a retried create returns the issue made the
first time instead of opening a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from agentlab.demo.systems._auth import check_bearer
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


class IssueTracker:
    """An in-memory tracker; ``next_numbers`` gives each project's next issue number. With a
    ``token``, every call needs its bearer header."""

    def __init__(self, next_numbers: Mapping[str, int], *, token: str | None = None) -> None:
        self._token = token
        self._next = dict(next_numbers)
        self._issues: dict[str, Issue] = {}
        self._by_idempotency_key: dict[str, str] = {}

    def issues(self, *, ticket_id: str | None = None, auth: str | None = None) -> list[Issue]:
        """All issues (or those linked to ``ticket_id``), in creation order."""
        check_bearer("jira", self._token, auth)
        return [i for i in self._issues.values() if ticket_id is None or i.ticket_id == ticket_id]

    def create(self, *, project: str, title: str, priority: Priority, description: str,
               ticket_id: str, idempotency_key: str, auth: str | None = None) -> Issue:
        """Open an issue, or return the one already opened with ``idempotency_key``."""
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
