"""Rollback of the demo's bad run in one process: each side effect undone once, newest
first, the issue's closing approved by the lead as the policy demands; what cannot be
undone is listed. The crash suite (test_rollback_crash.py) kills the rollback mid-way."""

from __future__ import annotations

from typing import Any

import pytest

from agentlab.approval import ApprovalManager
from agentlab.demo import ScriptedLead, TriageTools, demo_policy, demo_tokens, run_triage
from agentlab.demo.systems import Systems, build_systems
from agentlab.model import ApprovalEvent, ApprovalRequest, ToolCallEvent
from agentlab.recovery import rollback, rollback_run_id
from agentlab.store import SqlStore


@pytest.fixture
def bad(store: SqlStore) -> tuple[str, Systems]:
    world = build_systems("stale", tokens=demo_tokens())
    run_id = run_triage(store, scenario="stale", systems=world)
    [issue] = world.tracker.issues(auth=world.bearer("jira"))
    assert issue.status == "open" and world.writes == 3
    return run_id, world


def _tools(world: Systems) -> list[Any]:
    t = TriageTools(world)
    return [t.create_issue, t.set_priority, t.draft_reply]


def test_rolling_back_the_bad_run_undoes_each_side_effect_once(
        store: SqlStore, bad: tuple[str, Systems]) -> None:
    run_id, world = bad
    result = rollback(store, run_id, tools=_tools(world), policy=demo_policy(),
                      approver=ScriptedLead(world))
    assert result.complete and result.run_id == rollback_run_id(run_id)
    original = {e.seq: e.tool for e in store.events(run_id, kinds=["tool_call"])
                if isinstance(e, ToolCallEvent) and e.side_effect}
    assert [u.seq for u in result.undos] == sorted(original, reverse=True)  # newest first
    [issue] = world.tracker.issues(auth=world.bearer("jira"))
    assert issue.status == "closed"
    assert world.calls()["tracker.close"] == 1
    assert world.calls()["helpdesk.discard_draft"] == 1
    assert world.helpdesk.draft("T-1001", auth=world.bearer("helpdesk")) is None
    # Closing the issue needed the lead, as the policy says; the other undos did not.
    events = store.events(result.run_id)
    decisions = [e for e in events if isinstance(e, ApprovalEvent)]
    assert [(d.tool, d.action, d.rule) for d in decisions] == [
        ("undo:create_issue", "approve", "closing-an-issue-needs-lead")]
    undos = {e.tool: e for e in events if isinstance(e, ToolCallEvent)}
    assert undos["undo:create_issue"].approval == decisions[0].request_id
    assert {e.compensates for e in undos.values()} == set(original)
    assert undos["undo:create_issue"].grant == "jira-writer"
    assert undos["undo:create_issue"].scope == "jira:write:ENG-close"
    summary = store.run(result.run_id)
    assert (summary.run_kind, summary.parent_run_id, summary.status) == (
        "rollback", run_id, "succeeded")
    assert store.verify(result.run_id)[0].ok
    # Again: nothing more is undone.
    again = rollback(store, run_id, tools=_tools(world), policy=demo_policy(),
                     approver=ScriptedLead(world))
    assert again.complete and world.calls()["tracker.close"] == 1
    assert all("undone by rollback run" in u.detail for u in again.undos)


def _reject_undo(request: ApprovalRequest, manager: ApprovalManager) -> None:
    manager.reject(request.id, by="dana", channel="tests", reason="engineering is on it")


def test_a_refused_undo_is_listed_and_a_later_attempt_does_only_what_is_left(
        store: SqlStore, bad: tuple[str, Systems]) -> None:
    run_id, world = bad
    first = rollback(store, run_id, tools=_tools(world), policy=demo_policy(),
                     approver=_reject_undo)
    assert not first.complete
    status = {u.tool: u.status for u in first.undos}
    assert status == {"draft_reply": "undone", "set_priority": "undone",
                      "create_issue": "refused"}
    assert store.run(first.run_id).status == "failed"
    second = rollback(store, run_id, tools=_tools(world), policy=demo_policy(),
                      approver=ScriptedLead(world))
    assert second.complete and second.run_id == rollback_run_id(run_id, 2)
    assert world.calls()["helpdesk.discard_draft"] == 1  # not undone twice
    assert world.calls()["tracker.close"] == 1


def test_a_side_effect_without_a_compensation_is_listed_not_skipped(
        store: SqlStore, bad: tuple[str, Systems]) -> None:
    run_id, world = bad
    tools = TriageTools(world)
    result = rollback(store, run_id, tools=[tools.create_issue], policy=demo_policy(),
                      approver=ScriptedLead(world))
    status = {u.tool: u.status for u in result.undos}
    assert status == {"draft_reply": "no_compensation", "set_priority": "no_compensation",
                      "create_issue": "undone"}
    assert not result.complete and "NOT complete" in result.to_text()
    steps = [e for e in store.events(result.run_id, kinds=["step"])]
    assert {s.name for s in steps} == {  # type: ignore[union-attr]
        "rollback: draft_reply seq 29 no_compensation",
        "rollback: set_priority seq 22 no_compensation"}
    # Asked again with nothing more to undo, it starts no run and lists the same.
    again = rollback(store, run_id, tools=[tools.create_issue])
    assert again.run_id == result.run_id and not again.complete
    assert {u.tool: u.status for u in again.undos} == status
