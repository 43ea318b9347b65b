"""The demo under governance: its grants, the lead's approvals, edit and rejection, secrets
kept out of the store, and the two ways approvals are answered (scripted, or a human)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.cli import cli
from agentlab.demo import (
    AGENT,
    GRANTS,
    LEAD,
    TOKEN_ENV,
    WORKFLOW,
    DemoResult,
    demo_policy,
    demo_tokens,
    ensure_grants,
    governance_lines,
    run_demo,
    run_triage,
    waiting_approver,
)
from agentlab.identity import ToolUse, fingerprint
from agentlab.model import ApprovalEvent, ToolCallEvent
from agentlab.store import SqlStore, open_store


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("governed") / "demo.db"


@pytest.fixture(scope="module")
def demo_store(db_path: Path) -> Iterator[SqlStore]:
    store = open_store(db_path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def demo(demo_store: SqlStore) -> DemoResult:
    return run_demo(demo_store)


def calls(store: SqlStore, run_id: str) -> list[ToolCallEvent]:
    return [e for e in store.events(run_id, kinds=["tool_call"]) if isinstance(e, ToolCallEvent)]


def approvals(store: SqlStore, run_id: str) -> list[ApprovalEvent]:
    return [e for e in store.events(run_id, kinds=["approval"]) if isinstance(e, ApprovalEvent)]


# -- grants ---------------------------------------------------------------------------------

def test_grants_are_narrow_bound_to_the_agent_and_lint_clean(
        demo_store: SqlStore, demo: DemoResult) -> None:
    grants = {g.name: g for g in demo_store.grants()}
    assert set(grants) == {"crm-reader", "jira-writer", "reply-drafter"}
    assert grants["jira-writer"].scopes == ("jira:write:SUP-*", "jira:write:ENG-*")
    for g in grants.values():
        assert (g.principal, g.owner, g.workflow) == (AGENT, "support-ops", WORKFLOW)
        assert g.secret_ref is not None and g.secret_ref.startswith("env:AGENTLAB_DEMO_")
        assert g.expires_at is not None
        assert timedelta(days=29) < g.expires_at - g.issued_at <= timedelta(days=30)
    uses = [ToolUse(c.tool, c.grant, c.side_effect, AGENT)
            for run_id in demo.run_ids for c in calls(demo_store, run_id) if c.grant]
    assert {u.grant for u in uses} == set(grants)
    assert al.lint_grants(demo_store.grants(), uses) == []


def test_every_call_names_its_grant_scope_and_credential(
        demo_store: SqlStore, demo: DemoResult) -> None:
    tokens = demo_tokens()
    expected = {"crm-reader": fingerprint(tokens.crm), "jira-writer": fingerprint(tokens.jira),
                "reply-drafter": fingerprint(tokens.helpdesk)}
    scopes = {"read_ticket": "helpdesk:read", "lookup_account": "crm:read",
              "check_entitlement": "entitlements:read", "set_priority": "helpdesk:priority",
              "draft_reply": "helpdesk:draft"}
    for run_id in demo.run_ids:
        for call in calls(demo_store, run_id):
            assert call.grant is not None and call.credential == expected[call.grant]
            if call.tool == "create_issue":
                assert call.scope is not None and call.scope.startswith("jira:write:")
            else:
                assert call.scope == scopes[call.tool]
            assert call.phase == ("read" if not call.side_effect else
                                  "draft" if call.tool == "draft_reply" else "act")
    [issue] = [c for c in calls(demo_store, demo.good_run_id) if c.tool == "create_issue"]
    assert issue.scope == "jira:write:ENG-new"


def test_phases_and_policy_say_when_a_human_is_asked() -> None:
    policy = demo_policy()

    def action(tool: str, phase: str, **arguments: str) -> str:
        return policy.decide(tool=tool, scope=None, phase=phase,  # type: ignore[arg-type]
                             side_effect=True, arguments=arguments).action

    assert action("create_issue", "act", project="ENG") == "approve"
    assert action("set_priority", "act", priority="low", current="normal") == "approve"
    assert action("set_priority", "act", priority="urgent", current="normal") == "allow"
    assert action("draft_reply", "draft") == "approve"
    assert action("draft_reply", "read") == "deny"


# -- the lead's decisions ---------------------------------------------------------------------

def test_good_run_is_approved(demo_store: SqlStore, demo: DemoResult) -> None:
    run = demo_store.run(demo.good_run_id)
    assert (run.approval_count, run.override_count, run.denied_count) == (2, 0, 0)
    assert [(a.tool, a.action, a.by, a.channel, a.rule) for a in
            approvals(demo_store, demo.good_run_id)] == [
        ("create_issue", "approve", LEAD, "demo", "jira-issue-needs-lead"),
        ("draft_reply", "approve", LEAD, "demo", "phase:draft"),
    ]


def test_bad_run_issue_is_edited_by_the_lead(demo_store: SqlStore, demo: DemoResult) -> None:
    run = demo_store.run(demo.bad_run_id)
    assert run.override_count >= 1 and run.denied_count == 0
    edit = next(a for a in approvals(demo_store, demo.bad_run_id) if a.tool == "create_issue")
    assert (edit.action, edit.by, edit.channel) == ("edit", LEAD, "demo")
    assert edit.arguments is not None
    assert (edit.arguments["project"], edit.arguments["priority"]) == ("ENG", "urgent")
    [created] = [c for c in calls(demo_store, demo.bad_run_id) if c.tool == "create_issue"]
    assert created.approval is not None and created.arguments == edit.arguments


def test_rejected_run_records_a_denied_call(demo_store: SqlStore, demo: DemoResult) -> None:
    run = demo_store.run(demo.rejected_run_id)
    assert run.override_count >= 1 and run.denied_count == 1
    [denied] = [c for c in calls(demo_store, demo.rejected_run_id) if c.status == "denied"]
    assert denied.tool == "set_priority" and denied.denial is not None
    assert (denied.denial.code, denied.denial.rule) == ("rejected", "priority-drop-needs-lead")
    assert LEAD in denied.denial.reason
    assert denied.arguments == {"ticket_id": "T-1004", "priority": "normal", "current": "high"}
    [reject] = [a for a in approvals(demo_store, demo.rejected_run_id) if a.action == "reject"]
    assert reject.tool == "set_priority" and reject.by == LEAD


def test_governance_lines_name_who_decided_and_what_was_refused(
        demo_store: SqlStore, demo: DemoResult) -> None:
    text = "\n".join(governance_lines(demo_store, demo.rejected_run_id))
    assert "grants     crm-reader, reply-drafter" in text
    assert f"set_priority (priority-drop-needs-lead) reject by {LEAD} via demo" in text
    assert "denials    set_priority (rejected)" in text


# -- secrets --------------------------------------------------------------------------------

def _store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def test_demo_tokens_never_reach_the_store(
        db_path: Path, demo_store: SqlStore, demo: DemoResult) -> None:
    tokens = [os.environ[env].encode() for env in TOKEN_ENV.values()]
    assert all(len(t) > 20 for t in tokens)
    data = _store_bytes(db_path)
    assert len(data) > 10_000
    assert [t for t in tokens if t in data] == []


def test_demo_tokens_never_reach_a_closed_store_or_an_export(tmp_path: Path) -> None:
    db = tmp_path / "closed.db"
    store = open_store(db)
    result = run_demo(store)
    out = tmp_path / "export.jsonl"
    with out.open("wb") as f:
        store.export_runs(list(result.run_ids), f)
    store.close()
    tokens = [os.environ[env].encode() for env in TOKEN_ENV.values()]
    assert [t for t in tokens if t in _store_bytes(db) or t in out.read_bytes()] == []


# -- running again, revocation, a human approver ------------------------------------------------

def test_a_second_demo_on_the_same_store_reuses_the_grants(tmp_path: Path) -> None:
    store = open_store(tmp_path / "again.db")
    try:
        first = run_demo(store)
        issued = {g.name: g.issued_at for g in store.grants()}
        second = run_demo(store)
        assert {g.name: g.issued_at for g in store.grants()} == issued
        assert [store.run(r).status for r in second.run_ids] == [
            store.run(r).status for r in first.run_ids] == ["succeeded", "failed", "failed"]
        assert len(ensure_grants(store)) == len(GRANTS)
    finally:
        store.close()


def test_a_revoked_grant_refuses_its_calls_and_the_run_goes_on(tmp_path: Path) -> None:
    store = open_store(tmp_path / "revoked.db")
    try:
        ensure_grants(store)
        al.revoke_grant(store, "jira-writer", by="security", reason="token leaked")
        run_id = run_triage(store, scenario="fresh")
        [denied] = [c for c in calls(store, run_id) if c.status == "denied"]
        assert (denied.tool, denied.denial and denied.denial.code) == ("create_issue", "revoked")
        assert store.approvals(run_id=run_id)[0].tool == "draft_reply"  # never asked for Jira
        assert store.run(run_id).status == "failed"
    finally:
        store.close()


def test_a_human_can_answer_from_elsewhere(tmp_path: Path) -> None:
    """The path of ``agentlab demo`` without --auto-approve: the run waits for a decision
    made through another store handle (as the CLI in another terminal would)."""
    db = tmp_path / "human.db"
    store = open_store(db)
    shown: list[str] = []
    stop = threading.Event()

    def human() -> None:
        other = open_store(db)
        manager = al.ApprovalManager(other)
        while not stop.is_set():
            for req in manager.pending():
                if req.tool == "set_priority":
                    manager.reject(req.id, by="sam", channel="cli", reason="keep it high")
                else:
                    manager.approve(req.id, by="sam", channel="cli")
            stop.wait(0.05)
        other.close()

    thread = threading.Thread(target=human)
    thread.start()
    try:
        run_id = run_triage(store, scenario="fresh", ticket_id="T-1004",
                            approver=waiting_approver(shown.append, answer_hint=" --store x"))
    finally:
        stop.set()
        thread.join()
    text = "\n".join(shown)
    [first, *_] = store.approvals(run_id=run_id)
    assert f"agentlab approve {first.id} --as NAME --store x" in text
    assert [(a.tool, a.action, a.by, a.channel) for a in approvals(store, run_id)] == [
        ("set_priority", "reject", "sam", "cli"), ("draft_reply", "approve", "sam", "cli")]
    store.close()


def test_an_unanswered_request_expires_and_its_call_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "nobody.db")
    try:
        run_id = run_triage(store, scenario="fresh", ticket_id="T-1004",
                            approver=waiting_approver(lambda line: None),
                            approval_timeout=timedelta(milliseconds=200))
        denied = [c.denial.code for c in calls(store, run_id) if c.denial is not None]
        assert denied == ["approval_expired", "approval_expired"]
        assert store.run(run_id).status == "failed"
    finally:
        store.close()


# -- the command -----------------------------------------------------------------------------

def test_cli_demo_auto_approve(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    runner = CliRunner()
    out = runner.invoke(cli, ["demo", "--auto-approve", "--store", str(db)])
    assert out.exit_code == 0, out.output
    text = out.output
    with open_store(db) as store:
        runs = store.runs()
    assert len(runs) >= 300
    assert f"{len(runs)} of {len(runs)} runs intact" in text
    assert "14 days from 2024-05-27 to 2024-06-09 (and the waiting run, recorded now)" in text
    for part in ("good", "bad", "fixed", "rejected", "edited", "waiting"):
        assert f"\n  {part} " in text
    # The bad run's explanation, then how to open the workbench, last.
    assert "== Why the bad run failed: agentlab explain" in text
    assert "#1 seq 7 tool_call lookup_account" in text
    assert "approve by sam (on-call) via demo" in text
    assert text.rstrip().splitlines()[-1].startswith("open the workbench: agentlab lab")
    assert "agentlab verify --store" in text and "agentlab metrics --by agent_version" in text

    again = runner.invoke(cli, ["demo", "--auto-approve", "--store", str(db), "--json"])
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["stored"] == len(runs) and data["broken"] == []  # nothing imported twice
    assert [r["run_id"] for r in data["runs"]] == [
        data[f"{part}_run_id"] for part in
        ("good", "bad", "fixed", "rejected", "edited", "waiting")]
    [pending] = data["approvals"]
    assert (pending["id"], pending["run_id"], pending["status"]) == (
        data["waiting_request_id"], data["waiting_run_id"], "pending")
    assert data["explanation"]["culprits"][0]["name"] == "lookup_account"


def test_cli_demo_waits_for_a_human_without_auto_approve(tmp_path: Path) -> None:
    """Without --auto-approve the waiting run waits in the foreground for decisions made
    elsewhere (here a thread playing the human at another terminal), then finishes."""
    db = tmp_path / "human.db"
    decided: list[str] = []
    stop = threading.Event()

    def human() -> None:
        with open_store(db) as store:
            manager = al.ApprovalManager(store)
            while not stop.is_set() and len(decided) < 2:
                for request in store.approvals(status="pending"):
                    manager.approve(request.id, by="a human", reason="checked it")
                    decided.append(request.tool)
                stop.wait(0.05)

    out = None
    thread = threading.Thread(target=human)
    try:
        open_store(db).close()  # the human's thread opens it first
        thread.start()
        out = CliRunner().invoke(cli, ["demo", "--store", str(db), "--approval-timeout", "1"])
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
    assert out is not None and out.exit_code == 0, out.output if out else ""
    assert decided == ["create_issue", "draft_reply"]
    assert "answer from another terminal within 1 minutes: agentlab approve" in out.output
    assert "T-1006 (1.1.0): recorded with your decisions; succeeded" in out.output


def test_cli_demo_help_documents_the_flag() -> None:
    out = CliRunner().invoke(cli, ["demo", "--help"], terminal_width=200)
    text = " ".join(out.output.split())
    assert "--auto-approve" in text and "agentlab approve ID --as NAME" in text
    assert "--approval-timeout MINUTES" in text
