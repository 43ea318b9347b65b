"""Approvals: what runs is exactly what was approved, once, or nothing."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.approval import ApprovalManager, binding_for
from agentlab.model import ApprovalRequest, EventStats, canonical_body, new_id, now_ns
from agentlab.store import (
    PendingEvent,
    SqlStore,
)

ASK = al.Policy([al.Rule("jira-needs-human", "approve", tool="create_issue")])


@pytest.fixture
def world(store: SqlStore) -> dict[str, Any]:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="wf",
                   scopes=["jira:write:SUP-*"], expires_in=timedelta(days=1))
    ran: list[dict[str, Any]] = []

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, fields: dict[str, Any], priority: int = 3) -> str:
        ran.append({"project": project, "fields": dict(fields), "priority": priority})
        return f"{project}-1"

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def delete_issue(project: str, fields: dict[str, Any], priority: int = 3) -> str:
        ran.append({"deleted": project})
        return "gone"

    return {"create": create_issue, "delete": delete_issue, "ran": ran}


def _run(store: SqlStore, approver: Any = None, **kw: Any) -> al.RunRecorder:
    return al.record_run("wf", agent="bot", store=store, grants=["jira"], policy=ASK,
                         approver=approver, **kw)


def _denial(store: SqlStore, run_id: str) -> list[str]:
    return [e.denial.code for e in store.events(run_id, kinds=["tool_call"])
            if e.kind == "tool_call" and e.denial is not None]


def _tamper(store: SqlStore, request_id: str, **values: Any) -> None:
    from agentlab.store._schema import approvals

    with store._db.engine.begin() as conn:
        conn.execute(approvals.update().where(approvals.c.request_id == request_id)
                     .values(**values))


def test_approve_runs_the_call_once_with_its_approval_recorded(store: SqlStore,
                                                               world: dict[str, Any]) -> None:
    with _run(store, al.auto_approve("ann")) as run:
        assert world["create"]("SUP-1", {"title": "printer"}) == "SUP-1-1"
    assert len(world["ran"]) == 1
    [req] = store.approvals(run_id=run.run_id)
    assert (req.status, req.decided_by, req.channel) == ("approved", "ann", "auto")
    assert req.consumed_at is not None and req.consumed_by == f"bot@{run.run_id}"
    kinds = [e.kind for e in store.events(run.run_id)]
    assert kinds.index("approval") < kinds.index("tool_intent") < kinds.index("tool_call")
    summary = store.run(run.run_id)
    assert (summary.approval_count, summary.override_count) == (1, 0)


def test_mutating_the_arguments_after_approval_runs_nothing(store: SqlStore,
                                                            world: dict[str, Any]) -> None:
    fields = {"title": "printer"}

    def approve_then_mutate(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.approve(req.id, by="ann")
        fields["title"] = "DROP TABLE customers"   # the very object the call will use

    with _run(store, approve_then_mutate) as run:
        with pytest.raises(al.ToolDeniedError, match="no longer matches"):
            world["create"]("SUP-1", fields)
    assert world["ran"] == []
    assert _denial(store, run.run_id) == ["binding"]
    assert store.approvals(run_id=run.run_id)[0].consumed_at is None


def test_a_decision_cannot_be_moved_to_another_tool_call_or_run(store: SqlStore,
                                                                world: dict[str, Any]) -> None:
    mgr = ApprovalManager(store)
    with _run(store, al.auto_approve("ann")) as run1:
        world["create"]("SUP-1", {"title": "a"})
    [approved] = store.approvals(run_id=run1.run_id)

    def copy_decision_here(req: ApprovalRequest, m: ApprovalManager) -> None:
        # an attacker with database access copies the approved decision onto this request
        _tamper(store, req.id, status="approved", action="approve",
                decided_by=approved.decided_by, channel=approved.channel,
                decided_us=int(approved.decided_at.timestamp() * 1e6),  # type: ignore[union-attr]
                decision_mac=approved.decision_mac)

    with _run(store, copy_decision_here) as run2:   # same call, another run
        with pytest.raises(al.ToolDeniedError, match="MAC"):
            world["create"]("SUP-1", {"title": "a"})
        with pytest.raises(al.ToolDeniedError, match="MAC"):  # another call, same run
            world["create"]("SUP-2", {"title": "b"})
    # swap the tool: the binding names the tool, so an approval of create_issue does not
    # cover delete_issue with the same arguments
    exp_us = int(approved.expires_at.timestamp() * 1e6)
    assert binding_for(run1.run_id, approved.call_key, "create_issue",
                       {"project": "SUP-1", "fields": {"title": "a"}}, "jira", exp_us) \
        == approved.binding
    assert binding_for(run1.run_id, approved.call_key, "delete_issue",
                       {"project": "SUP-1", "fields": {"title": "a"}}, "jira", exp_us) \
        != approved.binding
    _tamper(store, approved.id, tool="delete_issue", consumed_us=None)
    assert not mgr.authentic(mgr.get(approved.id))
    assert len(world["ran"]) == 1
    assert _denial(store, run2.run_id) == ["binding", "binding"]


def test_a_decision_written_by_hand_is_not_honoured(store: SqlStore,
                                                    world: dict[str, Any]) -> None:
    def forge(req: ApprovalRequest, m: ApprovalManager) -> None:
        _tamper(store, req.id, status="approved", action="approve", decided_by="mallory",
                channel="cli", decided_us=now_ns() // 1000, decision_mac="0" * 64)

    with _run(store, forge) as run:
        with pytest.raises(al.ToolDeniedError, match="MAC"):
            world["create"]("SUP-1", {"title": "a"})
    assert world["ran"] == [] and _denial(store, run.run_id) == ["binding"]
    # a forged request cannot even be decided through the manager
    forged = store.approvals(run_id=run.run_id)[0]
    _tamper(store, forged.id, status="pending", action=None, decided_by=None, channel=None,
            decided_us=None, decision_mac=None, arguments='{"project":"SUP-9"}')
    with pytest.raises(al.ApprovalError, match="MAC"):
        ApprovalManager(store).approve(forged.id, by="ann")


def test_approving_twice_and_deciding_late_are_refused(store: SqlStore,
                                                       world: dict[str, Any]) -> None:
    seen: list[str] = []

    def approve_twice(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.approve(req.id, by="ann", channel="widget")
        with pytest.raises(al.ApprovalError, match="already approved by ann via widget"):
            mgr.approve(req.id, by="bob", channel="widget")
        seen.append(req.id)

    with _run(store, approve_twice):
        world["create"]("SUP-1", {"title": "a"})
    assert len(world["ran"]) == 1 and len(seen) == 1
    mgr = ApprovalManager(store)
    with pytest.raises(al.ApprovalError, match="already approved"):
        mgr.reject(seen[0], by="bob", reason="too late")
    # expiry: a request whose time ran out cannot be decided, and the call was refused
    with _run(store, lambda req, m: None, approval_timeout=timedelta(seconds=0)) as run:
        with pytest.raises(al.ToolDeniedError, match="expired"):
            world["create"]("SUP-2", {"title": "b"})
    [late] = store.approvals(run_id=run.run_id)
    assert late.status == "expired"
    with pytest.raises(al.ApprovalError, match="already expired"):
        mgr.approve(late.id, by="ann")
    assert len(world["ran"]) == 1


def test_fail_closed_without_approver_or_when_it_raises(store: SqlStore,
                                                        world: dict[str, Any]) -> None:
    def broken(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        raise ConnectionError("slack is down")

    with _run(store, None) as run:
        with pytest.raises(al.ToolDeniedError, match="no approver"):
            world["create"]("SUP-1", {"title": "a"})
        run.approvals  # noqa: B018
    no_front_end = run.run_id
    with _run(store, broken) as run:
        with pytest.raises(al.ToolDeniedError, match="slack is down"):
            world["create"]("SUP-1", {"title": "a"})
    assert world["ran"] == []
    assert _denial(store, no_front_end) == ["no_approver"]
    assert _denial(store, run.run_id) == ["approver_error"]
    # the abandoned requests are closed, so nobody can approve them afterwards
    assert {r.status for r in store.approvals()} == {"expired"}


def test_edit_runs_the_edited_arguments_validated_against_the_tool(
        store: SqlStore, world: dict[str, Any]) -> None:
    def edit(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.edit(req.id, {**req.arguments, "priority": "1"}, by="ann",
                 reason="customer is on the enterprise tier")

    with _run(store, edit) as run:
        world["create"]("SUP-1", {"title": "a"}, priority=4)
    assert world["ran"] == [{"project": "SUP-1", "fields": {"title": "a"}, "priority": 1}]
    [call] = [e for e in store.events(run.run_id, kinds=["tool_call"]) if e.kind == "tool_call"]
    assert call.arguments["priority"] == 1
    [decision] = [e for e in store.events(run.run_id, kinds=["approval"])]
    assert decision.action == "edit" and decision.arguments["priority"] == "1"  # type: ignore[union-attr]
    assert store.run(run.run_id).override_count == 1

    def bad_edit(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.edit(req.id, {**req.arguments, "priority": "high"}, by="ann")

    with _run(store, bad_edit) as run:
        with pytest.raises(al.ToolDeniedError, match="priority"):
            world["create"]("SUP-1", {"title": "a"})
    assert len(world["ran"]) == 1 and _denial(store, run.run_id) == ["invalid_edit"]


def test_reject_is_an_override_and_refuses_the_call(store: SqlStore,
                                                    world: dict[str, Any]) -> None:
    with _run(store, lambda req, m: m.reject(req.id, by="ann", reason="duplicate")) as run:
        with pytest.raises(al.ToolDeniedError, match="rejected by ann via api: duplicate"):
            world["create"]("SUP-1", {"title": "a"})
    assert world["ran"] == []
    s = store.run(run.run_id)
    assert (s.approval_count, s.override_count, s.denied_count) == (1, 1, 1)


def test_two_resumers_execute_an_approved_call_exactly_once(store: SqlStore,
                                                            world: dict[str, Any]) -> None:
    """A second process (here: a thread with its own recorder) that tries to resume a run
    another one is carrying on is refused at once, before it asks for anything: the
    approved call runs exactly once, by the first."""
    run_id = "resume-race-1"
    body = canonical_body({"kind": "run_started", "workflow": "wf", "agent_name": "bot"})
    store.append([PendingEvent(run_id, new_id(), None, now_ns() // 1000, "run_started", body,
                               None, EventStats())])
    outcomes: list[str] = []

    def resumer() -> None:
        try:
            with _run(store, al.announce, run_id=run_id, resume=True):
                try:
                    world["create"]("SUP-1", {"title": "a"})
                    outcomes.append("ran")
                except al.ToolDeniedError as exc:
                    outcomes.append(exc.denial.code)
        except Exception as exc:  # surfaces in the assertion below
            outcomes.append(repr(exc))

    first = threading.Thread(target=contextvars.copy_context().run, args=(resumer,))
    first.start()
    mgr = ApprovalManager(store)
    deadline = time.monotonic() + 10
    while not mgr.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    [req] = mgr.pending()
    with pytest.raises(al.RecordingError, match="being carried on by"):
        with _run(store, al.announce, run_id=run_id, resume=True):
            world["create"]("SUP-1", {"title": "a"})
    mgr.approve(req.id, by="ann")
    first.join(timeout=20)
    assert outcomes == ["ran"], outcomes
    assert len(world["ran"]) == 1
    assert len(store.approvals(run_id=run_id)) == 1
    assert store.run(run_id).holder is None  # released when the run ended


def test_a_decision_from_another_process_wakes_the_waiting_agent(
        store: SqlStore, world: dict[str, Any]) -> None:
    url = store.url
    schema = getattr(store._db, "schema", None)
    script = (
        "import sys, time\n"
        "from agentlab import open_store\n"
        "from agentlab.approval import ApprovalManager\n"
        f"s = open_store({url!r}, schema={schema!r})\n"
        "m = ApprovalManager(s)\n"
        "for _ in range(400):\n"
        "    p = m.pending()\n"
        "    if p:\n"
        "        m.approve(p[0].id, by='ops', channel='cli'); break\n"
        "    time.sleep(0.05)\n"
        "s.close()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        with _run(store, al.announce) as run:
            t0 = time.monotonic()
            world["create"]("SUP-1", {"title": "a"})
            waited = time.monotonic() - t0
    finally:
        child.wait(timeout=30)
    assert child.returncode == 0 and len(world["ran"]) == 1
    assert waited < 10
    assert store.approvals(run_id=run.run_id)[0].channel == "cli"


def test_phases_set_a_floor_that_rules_cannot_lower(store: SqlStore,
                                                    world: dict[str, Any]) -> None:
    allow_all_rules = al.Policy([al.Rule("anything-goes", "allow")])

    def recorder(phase: Any, approver: Any = None) -> al.RunRecorder:
        return al.record_run("wf", agent="bot", store=store, grants=["jira"],
                             policy=allow_all_rules, approver=approver, phase=phase)

    with recorder("read") as run:
        with pytest.raises(al.ToolDeniedError, match="phase read"):
            world["create"]("SUP-1", {"title": "a"})
        run.enter_phase("draft")
    assert _denial(store, run.run_id) == ["phase"]
    with recorder("draft", al.auto_approve()) as run:
        world["create"]("SUP-1", {"title": "a"})   # allowed by the rule, approved by the floor
        run.enter_phase("act")
        world["create"]("SUP-2", {"title": "b"})   # act: the rule alone decides
    assert len(store.approvals(run_id=run.run_id)) == 1
    assert store.run(run.run_id).phase == "act"
    calls = [e for e in store.events(run.run_id, kinds=["tool_call"]) if e.kind == "tool_call"]
    assert [(c.phase, c.policy_rule) for c in calls] == [("draft", "phase:draft"),
                                                         ("act", "anything-goes")]
    assert len(world["ran"]) == 2


def test_policy_rules_match_tool_scope_phase_and_arguments() -> None:
    def boom(a: Any) -> bool:
        raise KeyError("priority")

    policy = al.Policy([
        al.Rule("no-deletes", "deny", tool="delete_*"),
        al.Rule("lowering-priority", "approve", tool="set_priority",
                when=lambda a: a["priority"] in ("low", "normal")),
        al.Rule("broken", "allow", tool="odd", when=boom),
        al.Rule("eng-needs-human", "approve", scope="jira:write:ENG-*"),
    ])

    def decide(tool: str, scope: str | None = None, **args: Any) -> tuple[str, str]:
        d = policy.decide(tool=tool, scope=scope, phase="act", side_effect=True,
                          arguments=args)
        return d.action, d.rule

    assert decide("delete_issue") == ("deny", "no-deletes")
    assert decide("set_priority", priority="low") == ("approve", "lowering-priority")
    assert decide("set_priority", priority="urgent") == ("allow", "default")
    assert decide("odd") == ("deny", "broken")             # a raising predicate fails closed
    assert decide("create_issue", "jira:write:ENG-1") == ("approve", "eng-needs-human")
    with pytest.raises(al.ConfigError, match="unique"):
        al.Policy([al.Rule("a", "allow"), al.Rule("a", "deny")])
    with pytest.raises(al.ConfigError, match="action must be"):
        al.Rule("x", "maybe")  # type: ignore[arg-type]


def test_async_tools_wait_off_the_event_loop(store: SqlStore, world: dict[str, Any]) -> None:
    ran: list[str] = []

    @al.tool(side_effect=True, scope="jira:write:{project}")
    async def create(project: str) -> str:
        ran.append(project)
        return project

    async def main() -> list[int]:
        ticks: list[int] = []

        async def ticker() -> None:
            for i in range(5):
                ticks.append(i)
                await asyncio.sleep(0.02)

        def approve_later(req: ApprovalRequest, mgr: ApprovalManager) -> None:
            threading.Timer(0.2, lambda: mgr.approve(req.id, by="ann")).start()

        async with al.record_run("wf", agent="bot", store=store, grants=["jira"],
                                 policy=al.Policy([al.Rule("ask", "approve")]),
                                 approver=approve_later):
            await asyncio.gather(create("SUP-1"), ticker())
        return ticks

    ticks = asyncio.run(main())
    assert ran == ["SUP-1"] and ticks == [0, 1, 2, 3, 4]  # the loop kept running while waiting


def test_a_call_whose_request_expired_can_ask_again(store: SqlStore) -> None:
    mgr = ApprovalManager(store)
    first = mgr.request(run_id="r1", call_key="create_issue:abc:1", tool="create_issue",
                        arguments={"project": "SUP-1"}, timeout=timedelta(seconds=0))
    assert mgr.wait(first.id).status == "expired"
    again = mgr.request(run_id="r1", call_key="create_issue:abc:1", tool="create_issue",
                        arguments={"project": "SUP-1"})
    assert again.id != first.id and again.status == "pending"
    assert again.call_key == "create_issue:abc:1#2"
    # while it is pending (or decided), asking again returns the same request
    assert mgr.request(run_id="r1", call_key="create_issue:abc:1", tool="create_issue",
                       arguments={"project": "SUP-1"}).id == again.id


def test_an_edit_cannot_move_the_call_outside_its_grant_or_policy(
        store: SqlStore, world: dict[str, Any]) -> None:
    def move_to(project: str) -> Any:
        def edit(req: ApprovalRequest, mgr: ApprovalManager) -> None:
            mgr.edit(req.id, {**req.arguments, "project": project}, by="ann")
        return edit

    with _run(store, move_to("ENG-1")) as run:    # the grant covers SUP-* only
        with pytest.raises(al.ToolDeniedError, match="does not allow jira:write:ENG-1"):
            world["create"]("SUP-1", {"title": "a"})
    assert world["ran"] == [] and _denial(store, run.run_id) == ["scope"]

    guarded = al.Policy([al.Rule("no-sup-9", "deny", tool="create_issue",
                                 when=lambda a: a["project"] == "SUP-9"),
                         al.Rule("ask", "approve", tool="create_issue")])
    with al.record_run("wf", agent="bot", store=store, grants=["jira"], policy=guarded,
                       approver=move_to("SUP-9")) as run:
        with pytest.raises(al.ToolDeniedError, match="no-sup-9"):
            world["create"]("SUP-1", {"title": "a"})
    assert world["ran"] == [] and _denial(store, run.run_id) == ["policy"]

    with _run(store, move_to("SUP-7")) as run:    # inside the grant: runs, scope re-derived
        world["create"]("SUP-1", {"title": "a"})
    [call] = [e for e in store.events(run.run_id, kinds=["tool_call"]) if e.kind == "tool_call"]
    assert (call.scope, call.arguments["project"]) == ("jira:write:SUP-7", "SUP-7")
    assert world["ran"][0]["project"] == "SUP-7"
