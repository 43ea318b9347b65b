"""The help-desk run both approver test files ask their requests in: a run of the agent
``desk-bot`` under its grant ``desk-writer``, and a request for its ``close_ticket`` call."""

from __future__ import annotations

from datetime import timedelta

import pytest

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore

AGENT = "desk-bot"
GRANT = "desk-writer"


@pytest.fixture
def run_id(store: SqlStore) -> str:
    al.issue_grant(store, GRANT, principal=AGENT, owner="tests", workflow="desk",
                   scopes=["desk:*"], expires_in=timedelta(hours=1))
    with al.record_run("desk", agent=AGENT, store=store, grants=[GRANT]) as run:
        pass
    return run.run_id


def ask(store: SqlStore, run_id: str, key: str,
        approvers: list[str] | None = None) -> ApprovalRequest:
    return ApprovalManager(store).request(
        run_id=run_id, call_key=key, tool="close_ticket", arguments={"ticket": "T-1"},
        grant=GRANT, rule="closing-needs-lead", approvers=approvers)
