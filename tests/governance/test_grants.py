"""Grants: a call outside its grant never runs, and every refusal is recorded with why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.identity import (
    ToolUse,
    fingerprint,
    is_broad,
    lint_grants,
    render_scope,
    scope_matches,
    validate_scope,
)
from agentlab.store import SqlStore

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TOKEN = "jira-token-7f3a9c2e5b"


class FakeClock:
    """An injected clock (ns), moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> int:
        return int(self.at.timestamp() * 1e9)


@pytest.fixture
def jira(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("JIRA_TOKEN", TOKEN)
    al.issue_grant(store, "jira-writer", principal="triage-bot", owner="support-team",
                   workflow="support-triage", scopes=["jira:write:SUP-*"],
                   expires_in=timedelta(hours=1), secret="env:JIRA_TOKEN", now=T0)
    ran: list[dict[str, Any]] = []

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str) -> dict[str, Any]:
        ran.append({"project": project, "token": al.credential().secret})
        return {"key": f"{project}-1"}

    return {"tool": create_issue, "ran": ran}


def _run(store: SqlStore, clock: FakeClock, **kw: Any) -> al.RunRecorder:
    opts: dict[str, Any] = {"agent": "triage-bot", "store": store, "clock": clock,
                            "grants": ["jira-writer"]}
    opts.update(kw)
    workflow = opts.pop("workflow", "support-triage")
    return al.record_run(workflow, **opts)


def _denials(store: SqlStore, run_id: str) -> list[tuple[str, str]]:
    return [(e.denial.code, e.denial.reason) for e in store.events(run_id, kinds=["tool_call"])
            if e.kind == "tool_call" and e.status == "denied" and e.denial is not None]


def test_a_call_inside_the_grant_runs_with_its_credential(store: SqlStore,
                                                          jira: dict[str, Any]) -> None:
    with _run(store, FakeClock(T0 + timedelta(minutes=5))) as run:
        assert jira["tool"]("SUP-12", "printer") == {"key": "SUP-12-1"}
    assert jira["ran"] == [{"project": "SUP-12", "token": TOKEN}]
    [call] = [e for e in store.events(run.run_id, kinds=["tool_call"]) if e.kind == "tool_call"]
    assert (call.grant, call.scope, call.status) == ("jira-writer", "jira:write:SUP-12", "ok")
    # which credential made the call: checkable with the key, without storing the secret
    assert call.credential == fingerprint(TOKEN)
    assert store.grant("jira-writer").fingerprint == fingerprint(TOKEN)  # type: ignore[union-attr]


def test_scope_expiry_revocation_workflow_and_principal_are_refused(
        store: SqlStore, jira: dict[str, Any]) -> None:
    clock = FakeClock(T0 + timedelta(minutes=5))
    attempts = 0

    def attempt(run: al.RunRecorder, project: str = "SUP-1") -> None:
        nonlocal attempts
        attempts += 1
        with pytest.raises(al.ToolDeniedError):
            jira["tool"](project, "t")

    with _run(store, clock) as run:
        attempt(run, "ENG-101")                     # scope: another project
        clock.at = T0 + timedelta(hours=2)
        attempt(run)                                # expired (injected clock)
    scope_expiry = run.run_id
    with _run(store, FakeClock(T0 + timedelta(minutes=5)), workflow="billing") as run:
        attempt(run)                                # wrong workflow
    wrong_workflow = run.run_id
    with _run(store, FakeClock(T0 + timedelta(minutes=5)), agent="other-bot") as run:
        attempt(run)                                # another agent holds it
    wrong_principal = run.run_id
    with _run(store, FakeClock(T0 + timedelta(minutes=5)), grants=[]) as run:
        attempt(run)                                # the run holds no grant
    no_grant = run.run_id
    # revoked from elsewhere (another connection, as another process would) mid-run
    other = al.open_store(store.url, schema=getattr(store._db, "schema", None))
    try:
        with _run(store, FakeClock(T0 + timedelta(minutes=10))) as run:
            jira["tool"]("SUP-2", "before revocation")
            al.revoke_grant(other, "jira-writer", by="sec-team", reason="token leaked")
            attempt(run)
    finally:
        other.close()
    revoked = run.run_id

    assert attempts == 6
    assert [r["project"] for r in jira["ran"]] == ["SUP-2"]   # 0 executions outside the grant
    codes = {rid: [c for c, _ in _denials(store, rid)] for rid in
             (scope_expiry, wrong_workflow, wrong_principal, no_grant, revoked)}
    assert codes == {scope_expiry: ["scope", "expired"], wrong_workflow: ["workflow"],
                     wrong_principal: ["principal"], no_grant: ["no_grant"],
                     revoked: ["revoked"]}
    reasons = dict(_denials(store, scope_expiry))
    assert "does not allow jira:write:ENG-101" in reasons["scope"]
    assert "expired at" in reasons["expired"]
    assert "by sec-team" in _denials(store, revoked)[0][1]
    assert store.run(scope_expiry).denied_count == 2
    assert all(r.ok for r in store.verify())


def test_side_effect_without_scope_and_missing_secret_are_refused(
        store: SqlStore, jira: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    @al.tool(side_effect=True)
    def send_mail(to: str) -> None:
        sent.append(to)

    with _run(store, FakeClock(T0 + timedelta(minutes=1))) as run:
        with pytest.raises(al.ToolDeniedError, match="declares no scope"):
            send_mail("ann@example.com")
        monkeypatch.delenv("JIRA_TOKEN")
        with pytest.raises(al.ToolDeniedError, match="JIRA_TOKEN is not set"):
            jira["tool"]("SUP-3", "t")
    assert sent == [] and jira["ran"] == []
    assert [c for c, _ in _denials(store, run.run_id)] == ["no_grant", "secret"]


def test_a_scope_filled_from_arguments_cannot_widen_itself(store: SqlStore,
                                                            jira: dict[str, Any]) -> None:
    with _run(store, FakeClock(T0 + timedelta(minutes=1))) as run:
        for sneaky in ("SUP-*", "SUP-1:admin", ""):
            with pytest.raises(al.ToolDeniedError):
                jira["tool"](sneaky, "t")
    assert jira["ran"] == []
    assert [c for c, _ in _denials(store, run.run_id)] == ["scope", "scope", "scope"]


def test_issuing_checks_its_input(store: SqlStore) -> None:
    with pytest.raises(al.GrantError, match="empty segment"):
        al.issue_grant(store, "g", principal="a", owner="o", workflow="w", scopes=["crm:"])
    with pytest.raises(al.GrantError, match="no scopes"):
        al.issue_grant(store, "g", principal="a", owner="o", workflow="w", scopes=[])
    with pytest.raises(al.GrantError, match="not usable"):
        al.issue_grant(store, "bad name", principal="a", owner="o", workflow="w",
                       scopes=["crm:read"])
    with pytest.raises(al.SecretError, match="not 'env:NAME'"):
        al.issue_grant(store, "g", principal="a", owner="o", workflow="w",
                       scopes=["crm:read"], secret="hunter2-the-actual-secret")
    al.issue_grant(store, "g", principal="a", owner="o", workflow="w", scopes=["crm:read"])
    with pytest.raises(al.StoreError, match="already exists"):
        al.issue_grant(store, "g", principal="a", owner="o", workflow="w", scopes=["crm:read"])
    with pytest.raises(al.GrantError, match="no grant named"):
        al.revoke_grant(store, "nope")
    assert [g.name for g in store.grants()] == ["g"]


@pytest.mark.parametrize(("pattern", "scope", "ok"), [
    ("crm:read", "crm:read", True),
    ("crm:read", "crm:write", False),
    ("jira:write:SUP-*", "jira:write:SUP-57", True),
    ("jira:write:SUP-*", "jira:write:ENG-101", False),
    ("jira:write:SUP-*", "jira:write:SUP-57:delete", False),
    ("jira:**", "jira:write:SUP-57", True),
    ("jira:**", "crm:read", False),
    ("**", "anything:at:all", True),
    ("crm:*", "crm:read", True),
])
def test_scope_patterns(pattern: str, scope: str, ok: bool) -> None:
    assert scope_matches(validate_scope(pattern), scope) is ok


def test_scope_rendering_and_breadth() -> None:
    assert render_scope("jira:write:{project}", {"project": "SUP-1"}) == "jira:write:SUP-1"
    assert render_scope(lambda a: f"crm:read:{a['id']}", {"id": "A9"}) == "crm:read:A9"
    with pytest.raises(al.GrantError, match="needs argument"):
        render_scope("jira:write:{project}", {})
    assert is_broad("**") and is_broad("jira:*") and is_broad("jira:admin")
    assert not is_broad("jira:write:SUP-*")


@pytest.mark.parametrize("project", ["*", "SUP-?", "[A-Z]", "!x", "", "a:", ":a", "a::b", "x]"])
def test_an_argument_cannot_widen_the_scope_a_call_needs(project: str) -> None:
    # A glob or an empty segment from an argument would claim less than the call does.
    with pytest.raises(al.GrantError, match="not concrete"):
        render_scope("jira:write:{project}", {"project": project})
    with pytest.raises(al.GrantError, match="not concrete"):
        render_scope(lambda a: a["p"], {"p": project or ":"})


@pytest.mark.parametrize("project", ["SUP-1", "a.b", "x_y-z", "a:b"])
def test_a_concrete_argument_renders_as_given(project: str) -> None:
    assert render_scope("jira:write:{project}", {"project": project}) == f"jira:write:{project}"


def test_lint_flags_broad_shared_and_endless_grants(store: SqlStore) -> None:
    al.issue_grant(store, "wide", principal="bot", owner="o", workflow="w",
                   scopes=["jira:*"], expires_in=timedelta(days=1))
    al.issue_grant(store, "shared", principal="bot-*", owner="o", workflow="w",
                   scopes=["crm:read"], expires_in=timedelta(days=1))
    al.issue_grant(store, "used-by-two", principal="bot", owner="o", workflow="w",
                   scopes=["crm:read"], expires_in=timedelta(days=1))
    al.issue_grant(store, "forever", principal="bot", owner="o", workflow="w",
                   scopes=["crm:read"])
    al.issue_grant(store, "fine", principal="bot", owner="o", workflow="w",
                   scopes=["jira:write:SUP-*"], expires_in=timedelta(days=1))
    uses = [ToolUse("create_issue", "wide", True, "bot"),
            ToolUse("create_issue", "fine", True, "bot"),
            ToolUse("lookup", "used-by-two", False, "bot"),
            ToolUse("lookup", "used-by-two", False, "bot-2")]
    found = {(f.grant, f.code) for f in lint_grants(store.grants(), uses)}
    assert found == {("wide", "broad-scope-on-side-effect"), ("shared", "shared-grant"),
                     ("used-by-two", "shared-grant"), ("forever", "no-expiry")}
