"""Helpers for tests of code that agentlab records: yours and agentlab's own.

>>> from agentlab.testing import allow_all
>>> with record_run("wf", agent="bot", store=store,
...                 grants=[allow_all(store, agent="bot")]) as run:     # doctest: +SKIP
...     send_email("ann@example.com")        # a side-effecting @tool(scope="mail:send")
"""

from __future__ import annotations

from datetime import timedelta

from agentlab.identity import issue_grant
from agentlab.store import RunStore

__all__ = ["allow_all"]


def allow_all(store: RunStore, *, agent: str, workflow: str = "*",
              name: str | None = None) -> str:
    """Issue (once) a grant that lets ``agent`` use every scope, and return its name.

    For tests only: the grant lint flags it, as it should in production.
    """
    grant_name = name or f"test-allow-all-{agent}"
    if store.grant(grant_name) is None:
        issue_grant(store, grant_name, principal=agent, owner="tests", workflow=workflow,
                    scopes=["**"], expires_in=timedelta(days=1))
    return grant_name
