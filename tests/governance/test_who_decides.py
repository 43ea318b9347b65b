"""Who may decide an approval request: a person, never the agent that asked (its run's agent
or its grant's principal), and only one of the rule's approvers when the rule names them.
The approvers are stored on the request under its MAC, so editing them in the database makes
the request undecidable. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.errors import ApprovalError, ConfigError, ToolDeniedError
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore

from ._desk import AGENT, GRANT, run_id
from ._desk import ask as _ask

__all__ = ["run_id"]  # the fixture, shared with the other approver tests



def test_the_agent_never_decides_its_own_request(store: SqlStore, run_id: str) -> None:
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "k1")
    for who in (AGENT, f"  {AGENT} "):
        with pytest.raises(ApprovalError, match="is the agent that asked"):
            manager.approve(req.id, by=who)
    with pytest.raises(ApprovalError, match="is the agent that asked"):
        manager.reject(req.id, by=AGENT, reason="looks fine to me")
    assert manager.get(req.id).status == "pending"
    assert manager.approve(req.id, by="ana").status == "approved"  # anyone else, here


def test_only_the_rules_approvers_decide(store: SqlStore, run_id: str) -> None:
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "k2", approvers=["ana", "ben"])
    assert req.approvers == ["ana", "ben"] and manager.authentic(req)
    with pytest.raises(ApprovalError, match=r"eve may not decide .* ana, ben"):
        manager.approve(req.id, by="eve")
    with pytest.raises(ApprovalError, match="is the agent that asked"):
        manager.approve(req.id, by=AGENT)
    assert manager.get(req.id).status == "pending"
    assert manager.edit(req.id, {"ticket": "T-2"}, by="ben").status == "edited"


def test_approvers_edited_in_the_database_make_the_request_undecidable(
        store: SqlStore, run_id: str) -> None:
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "k3", approvers=["ana"])
    with store._db.engine.begin() as conn:  # someone adds themself to the list
        conn.execute(text("UPDATE agentlab_approvals SET approvers = :a WHERE request_id = :r"),
                     {"a": '["ana","eve"]', "r": req.id})
    forged = manager.get(req.id)
    assert forged.approvers == ["ana", "eve"] and not manager.authentic(forged)
    with pytest.raises(ApprovalError, match="MAC"):
        manager.approve(req.id, by="eve")


def test_an_agent_approving_itself_in_a_run_is_refused_and_nothing_runs(
        store: SqlStore, run_id: str) -> None:
    ran: list[str] = []

    @al.tool(side_effect=True, scope="desk:write")
    def close_ticket(ticket: str) -> dict[str, Any]:
        ran.append(ticket)
        return {"closed": ticket}

    def self_approver(req: ApprovalRequest, manager: ApprovalManager) -> None:
        manager.approve(req.id, by=AGENT)  # the agent's own process tries to say yes

    policy = al.Policy([al.Rule("closing-needs-lead", "approve", tool="close_ticket",
                                approvers=("ana",))])
    with pytest.raises(ToolDeniedError), \
            al.record_run("desk", agent=AGENT, store=store, grants=[GRANT], policy=policy,
                          approver=self_approver, approval_timeout=timedelta(seconds=5)):
        close_ticket("T-9")
    assert ran == []
    [req] = [r for r in store.approvals() if r.tool == "close_ticket" and r.run_id != run_id]
    assert req.approvers == ["ana"] and req.status != "approved"


def test_a_rule_names_its_approvers_properly() -> None:
    with pytest.raises(ConfigError, match="goes with action 'approve'"):
        al.Rule("r", "allow", approvers=("ana",))
    with pytest.raises(ConfigError, match="non-empty list of names"):
        al.Rule("r", "approve", approvers="ana")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="non-empty list of names"):
        al.Rule("r", "approve", approvers=())
    assert al.Rule("r", "approve", approvers=["ana"]).approvers == ("ana",)  # type: ignore[arg-type]
