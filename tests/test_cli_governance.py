"""The governance commands: grants, revoke, approvals, approve / reject / edit.

Every test uses a real SQLite file and its own signing key file; one drives a waiting agent
in another process with the console script, as a person in another terminal would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.cli import cli

GOVERNANCE = ["grants", "grant", "revoke", "approvals", "approve", "reject", "edit", "approver"]
TOKEN = "tok-jira-0123456789abcdef"  # a secret value: must never appear in any output


@pytest.fixture(autouse=True)
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "keys" / "key"
    monkeypatch.setenv("AGENTLAB_KEY_FILE", str(key))
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    monkeypatch.setenv("JIRA_TOKEN", TOKEN)
    return key


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "gov.db")
    al.open_store(path).close()
    return path


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> Result:
    result = run_cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert TOKEN not in result.output
    return result


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command (and no traceback)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentlab: error: ")
    return lines[0]


def issue(db: str, name: str, *extra: str, principal: str = "triage-bot",
          scopes: tuple[str, ...] = ("jira:write:SUP-*",)) -> Result:
    args = ["grant", name, "--store", db, "--principal", principal, "--owner", "support",
            "--workflow", "triage", "--expires-in", "30d"]
    for s in scopes:
        args += ["--scope", s]
    return ok(*args, *extra)


# -- help ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", GOVERNANCE)
def test_help_for_every_governance_command(name: str) -> None:
    result = ok(name, "--help")
    assert "Usage: " in result.output and f" {name} " in result.output
    cmd = cli.get_command(click.Context(cli), name)
    assert cmd is not None
    assert cmd.help and len(cmd.help) > 40
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


# -- grants -------------------------------------------------------------------------------

def test_issue_list_revoke_round_trip(db: str) -> None:
    out = issue(db, "jira-writer", "--secret", "env:JIRA_TOKEN", "--by", "ana").output
    assert out.startswith("issued jira-writer: triage-bot for support in triage")
    assert "fingerprint" in out and "stored" in out

    table = ok("grants", "--store", db).output.splitlines()
    assert table[0].split() == ["NAME", "PRINCIPAL", "OWNER", "WORKFLOW", "SCOPES", "STATUS",
                                "EXPIRES", "SECRET"]
    assert table[1].split()[:6] == ["jira-writer", "triage-bot", "support", "triage",
                                    "jira:write:SUP-*", "active"]
    assert table[1].split()[-1] == "env:JIRA_TOKEN"

    out = ok("revoke", "jira-writer", "--store", db, "--by", "bo", "--reason", "leaked").output
    assert out.startswith("revoked jira-writer at ") and out.strip().endswith("by bo: leaked")
    again = ok("revoke", "jira-writer", "--store", db).output
    assert again.startswith("already revoked jira-writer") and "by bo: leaked" in again
    assert ok("grants", "--store", db).output.splitlines()[1].split()[5] == "revoked"


def test_json_shapes(db: str) -> None:
    issued = json.loads(issue(db, "jira-writer", "--secret", "env:JIRA_TOKEN", "--json").output)
    assert issued["name"] == "jira-writer" and issued["status"] == "active"
    assert issued["scopes"] == ["jira:write:SUP-*"] and issued["secret_ref"] == "env:JIRA_TOKEN"
    assert len(issued["fingerprint"]) == 64

    listed = json.loads(ok("grants", "--store", db, "--json").output)
    assert [g["name"] for g in listed] == ["jira-writer"]
    assert set(listed[0]) == {
        "name", "principal", "owner", "workflow", "scopes", "issued_at", "issued_by",
        "expires_at", "revoked_at", "revoked_by", "revoke_reason", "secret_ref",
        "fingerprint", "status"}

    revoked = json.loads(ok("revoke", "jira-writer", "--store", db, "--json").output)
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None


def test_grant_without_expiry_or_resolvable_secret(db: str) -> None:
    out = ok("grant", "crm", "--store", db, "--principal", "bot", "--owner", "o",
             "--workflow", "w", "--scope", "crm:read", "--secret", "env:NOT_SET_HERE").output
    assert "expires never" in out and "does not resolve here" in out
    g = json.loads(ok("grants", "--store", db, "--json").output)[0]
    assert g["expires_at"] is None and g["fingerprint"] is None


@pytest.mark.parametrize("text", ["3w", "0m", "12", "h", "1.5h", "-1d", "30 days", "",
                                  "99999999999d"])
def test_bad_duration_is_one_line(db: str, text: str) -> None:
    line = one_line_error(run_cli("grant", "g", "--store", db, "--principal", "a",
                                  "--owner", "o", "--workflow", "w", "--scope", "x:y",
                                  "--expires-in", text))
    assert "--expires-in" in line
    assert json.loads(ok("grants", "--store", db, "--json").output) == []


def test_grant_errors_are_one_line(db: str) -> None:
    issue(db, "jira-writer")
    assert "already exists" in one_line_error(run_cli(
        "grant", "jira-writer", "--store", db, "--principal", "a", "--owner", "o",
        "--workflow", "w", "--scope", "x:y"))
    assert "empty segment" in one_line_error(run_cli(
        "grant", "g2", "--store", db, "--principal", "a", "--owner", "o", "--workflow", "w",
        "--scope", "jira::write"))
    assert "is not 'env:NAME' or 'file:PATH'" in one_line_error(run_cli(
        "grant", "g3", "--store", db, "--principal", "a", "--owner", "o", "--workflow", "w",
        "--scope", "x:y", "--secret", TOKEN))
    assert "no grant named 'nope'" in one_line_error(run_cli("revoke", "nope", "--store", db))


# -- lint and check, from recorded calls -----------------------------------------------------

@al.tool(side_effect=True, scope="jira:write:{ticket}")
def set_priority(ticket: str, priority: str) -> dict[str, str]:
    return {"ticket": ticket, "priority": priority}


@al.tool(scope="crm:read")
def lookup(account: str) -> dict[str, str]:
    return {"account": account, "plan": "enterprise"}


def record(db: str, agent: str, grants: list[str], calls: Any) -> str:
    store = al.open_store(db)
    try:
        with al.record_run("triage", agent=agent, store=store, grants=grants) as run:
            calls()
            run.outcome(success=True)
    finally:
        store.close()
    return run.run_id


def test_lint_flags_broad_scope_on_side_effect_and_shared_grant(db: str) -> None:
    issue(db, "ops-admin", principal="bot-a", scopes=("jira:*:*",))
    issue(db, "crm-reader", principal="bot-*", scopes=("crm:read",))
    issue(db, "sup-writer", principal="bot-a", scopes=("jira:write:SUP-*",))
    # Before any call: a broad scope alone is not flagged; a pattern principal already is.
    before = json.loads(run_cli("grants", "--lint", "--json", "--store", db).stdout)
    assert [(f["grant"], f["code"]) for f in before["findings"]] == [
        ("crm-reader", "shared-grant")]
    assert "pattern 'bot-*'" in before["findings"][0]["message"]

    # No policy: the side-effecting call runs under its grant, no approver needed.
    record(db, "bot-a", ["ops-admin", "crm-reader"],
           lambda: (set_priority("SUP-57", "high"), lookup("A1")))
    record(db, "bot-b", ["crm-reader"], lambda: lookup("A2"))

    result = run_cli("grants", "--lint", "--store", db)
    line = one_line_error(result)
    assert "2 grant finding(s)" in line
    table = result.stdout
    # now named by the agents that did use it
    assert "ops-admin" in table and "broad-scope-on-side-effect" in table
    assert "crm-reader" in table and "shared-grant" in table and "bot-a, bot-b" in table
    assert "sup-writer" not in table

    found = json.loads(run_cli("grants", "--lint", "--json", "--store", db).stdout)
    assert sorted((f["grant"], f["code"]) for f in found["findings"]) == [
        ("crm-reader", "shared-grant"), ("ops-admin", "broad-scope-on-side-effect")]
    assert "set_priority" in next(f["message"] for f in found["findings"]
                                  if f["grant"] == "ops-admin")


def test_check_tells_which_credential_made_each_call(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue(db, "jira-writer", "--secret", "env:JIRA_TOKEN")
    issued = json.loads(ok("grants", "--json", "--store", db).output)[0]["fingerprint"]
    record(db, "triage-bot", ["jira-writer"],
           lambda: (set_priority("SUP-1", "high"), set_priority("SUP-2", "low")))

    report = json.loads(ok("grants", "--check", "jira-writer", "--json", "--store", db).output)
    assert report["matches"] is True and report["fingerprint"] == issued
    assert report["calls"] == [{"credential": issued, "calls": 2, "current": True,
                                "issued": True}]

    rotated = "tok-jira-rotated-9876543210"
    monkeypatch.setenv("JIRA_TOKEN", rotated)
    record(db, "triage-bot", ["jira-writer"], lambda: set_priority("SUP-3", "high"))
    result = ok("grants", "--check", "jira-writer", "--store", db)
    assert rotated not in result.output
    assert "match    NO" in result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[-2:]}
    assert rows[issued[:16]] == ["2", "issued"]
    assert next(v for k, v in rows.items() if k != issued[:16]) == ["1", "current"]


def test_check_errors_are_one_line(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    issue(db, "plain")
    issue(db, "jira-writer", "--secret", "env:JIRA_TOKEN")
    assert "no grant named 'nope'" in one_line_error(run_cli("grants", "--check", "nope",
                                                             "--store", db))
    assert "no secret reference" in one_line_error(run_cli("grants", "--check", "plain",
                                                           "--store", db))
    monkeypatch.delenv("JIRA_TOKEN")
    assert "JIRA_TOKEN is not set" in one_line_error(run_cli("grants", "--check",
                                                             "jira-writer", "--store", db))
    assert "give one of them" in one_line_error(run_cli("grants", "--lint", "--check", "plain",
                                                        "--store", db))


def test_read_and_decide_commands_never_create_a_store(tmp_path: Path) -> None:
    missing = str(tmp_path / "nodir" / "typo.db")
    for args in (["grants"], ["revoke", "g"], ["approvals"], ["approve", "abc", "--as", "a"],
                 ["reject", "abc", "--as", "a", "--reason", "r"],
                 ["edit", "abc", "--as", "a", "--args", "{}"]):
        assert "no store at" in one_line_error(run_cli(*args, "--store", missing))
    assert not (tmp_path / "nodir").exists()


# -- approvals ------------------------------------------------------------------------------

ARGS = {"ticket": "SUP-57", "priority": "low"}


@pytest.fixture
def requests(db: str) -> Iterator[tuple[str, list[al.ApprovalRequest]]]:
    store = al.open_store(db)
    manager = ApprovalManager(store)
    made = [
        manager.request(run_id="run-1", call_key=f"call-{i}", tool="set_priority",
                        arguments=ARGS, grant="jira-writer", rule="priority-needs-human")
        for i in range(3)
    ] + [manager.request(run_id="run-2", call_key="call-0", tool="set_priority",
                         arguments=ARGS, grant="jira-writer", rule="priority-needs-human")]
    store.close()
    yield db, made


def stored(db: str, request_id: str) -> al.ApprovalRequest:
    store = al.open_store(db)
    try:
        row = store.approval(request_id)
        assert ApprovalManager(store).authentic(row)
        return row
    finally:
        store.close()


def test_list_pending_and_all(requests: tuple[str, list[al.ApprovalRequest]]) -> None:
    db, made = requests
    lines = ok("approvals", "--store", db).output.splitlines()
    assert lines[0].split() == ["ID", "RUN", "TOOL", "ARGUMENTS", "GRANT", "RULE",
                                "REQUESTED", "EXPIRES", "STATUS"]
    printed = [ln.split()[0] for ln in lines[1:]]  # each the shortest unique prefix, >= 8
    assert len(printed) == len(made) and all(len(p) >= 8 for p in printed)
    assert all(r.id.startswith(p) for r, p in zip(made, printed, strict=True))
    store = al.open_store(db)
    try:  # every printed id opens its own request
        assert [store.approval(p).id for p in printed] == [r.id for r in made]
    finally:
        store.close()
    assert all("set_priority" in ln and "jira-writer" in ln and ln.endswith("pending")
               for ln in lines[1:])
    assert '{"priority": "low", "ticket": "SUP-57"}' in lines[1]

    listed = json.loads(ok("approvals", "--json", "--run", "run-2", "--store", db).output)
    assert [r["id"] for r in listed] == [made[3].id]
    assert {"id", "run_id", "tool", "arguments", "grant", "rule", "requested_at",
            "expires_at", "status", "decided_by", "channel"} <= set(listed[0])

    ok("approve", made[0].id, "--as", "ana", "--store", db)
    still = [ln.split()[0] for ln in ok("approvals", "--store", db).output.splitlines()[1:]]
    assert len(still) == len(made) - 1 and not any(made[0].id.startswith(p) for p in still)
    every = ok("approvals", "--all", "--store", db).output
    assert "approved by ana via cli" in every
    assert "no pending approval requests for run nope" in ok(
        "approvals", "--run", "nope", "--store", db).output


def test_approve_reject_edit_record_channel_cli(
    requests: tuple[str, list[al.ApprovalRequest]]
) -> None:
    db, made = requests
    out = ok("approve", made[0].id[:14], "--as", "ana", "--reason", "fine", "--store", db)
    assert out.output.startswith(f"approved {made[0].id} (set_priority, run run-1) by ana "
                                 "via cli: fine")
    row = stored(db, made[0].id)
    assert (row.status, row.action, row.decided_by, row.channel, row.reason) == (
        "approved", "approve", "ana", "cli", "fine")

    out = ok("reject", made[1].id, "--as", "bo", "--reason", "wrong ticket", "--store", db)
    assert out.output.startswith(f"rejected {made[1].id}")
    row = stored(db, made[1].id)
    assert (row.status, row.decided_by, row.channel, row.reason) == (
        "rejected", "bo", "cli", "wrong ticket")

    out = ok("edit", made[2].id, "--args", '{"ticket": "SUP-57", "priority": "high", '
             '"note": "vip"}', "--as", "cy", "--store", db).output.splitlines()
    assert out[0].startswith(f"edited {made[2].id}") and "by cy via cli" in out[0]
    assert out[1:] == ['  + note: "vip"', '  ~ priority: "low" -> "high"']
    row = stored(db, made[2].id)
    assert (row.status, row.channel, row.edited_arguments) == (
        "edited", "cli", {"ticket": "SUP-57", "priority": "high", "note": "vip"})

    # A partial edit keeps the other arguments as asked (an edit missing some would reach
    # the tool without them, and be refused when the agent checks the signature).
    edited = json.loads(ok("edit", made[3].id, "--args", '{"ticket": "SUP-58"}', "--as", "cy",
                           "--json", "--store", db).output)
    assert edited["changes"] == ['~ ticket: "SUP-57" -> "SUP-58"']
    assert edited["kept"] == ["priority"]
    assert edited["request"]["status"] == "edited" and edited["request"]["channel"] == "cli"
    assert stored(db, made[3].id).edited_arguments == {"ticket": "SUP-58", "priority": "low"}


def test_decision_errors_are_one_line(requests: tuple[str, list[al.ApprovalRequest]]) -> None:
    db, made = requests
    assert "no approval request with id 'ffffffff'" in one_line_error(
        run_cli("approve", "ffffffff", "--as", "ana", "--store", db))
    assert "matches several requests" in one_line_error(
        run_cli("approve", made[0].id[:4], "--as", "ana", "--store", db))
    assert "give the request ID" in one_line_error(
        run_cli("approve", "", "--as", "ana", "--store", db))
    assert "a rejection needs a reason" in one_line_error(
        run_cli("reject", made[0].id, "--as", "ana", "--store", db))
    assert "a rejection needs a reason" in one_line_error(
        run_cli("reject", made[0].id, "--as", "ana", "--reason", "  ", "--store", db))
    assert "--args is not valid JSON" in one_line_error(
        run_cli("edit", made[0].id, "--args", "{priority: high}", "--as", "ana", "--store", db))
    assert "must be a JSON object" in one_line_error(
        run_cli("edit", made[0].id, "--args", '["high"]', "--as", "ana", "--store", db))
    assert "say who decides" in one_line_error(
        run_cli("approve", made[0].id, "--as", " ", "--store", db))
    # nothing above decided anything
    assert stored(db, made[0].id).status == "pending"

    ok("approve", made[0].id, "--as", "ana", "--store", db)
    line = one_line_error(run_cli("reject", made[0].id, "--as", "bo", "--reason", "no",
                                  "--store", db))
    assert f"request {made[0].id} is already approved by ana via cli" in line
    assert "already approved" in one_line_error(
        run_cli("edit", made[0].id, "--args", "{}", "--as", "bo", "--store", db))
    # click's own usage errors (a missing --as) stay usage errors: exit 2
    assert run_cli("approve", made[1].id, "--store", db).exit_code == 2


def test_approver_groups_and_keys_from_the_cli(db: str, tmp_path: Path) -> None:
    out = ok("approver", "add", "ana", "--group", "support-leads", "--issue-key", "--by", "lee",
             "--reason", "new lead", "--store", db).output
    [key] = [w for w in out.split() if w.startswith("agentlab-approver-key-")]
    key_file = tmp_path / "ana.key"
    key_file.write_text(key + "\n")
    ok("approver", "add", "bob", "--group", "billing-leads", "--by", "lee", "--store", db)
    store = al.open_store(db)
    req = ApprovalManager(store).request(run_id="run-1", call_key="c", tool="set_priority",
                                         arguments=ARGS, approvers=["support-leads"])
    store.close()
    assert "bob may not decide" in one_line_error(
        run_cli("approve", req.id, "--as", "bob", "--store", db))
    assert "ana holds an approver key" in one_line_error(
        run_cli("approve", req.id, "--as", "ana", "--store", db))
    assert "cannot read secret file" in one_line_error(
        run_cli("approve", req.id, "--as", "ana", "--key-from", f"file:{tmp_path}/none",
                "--store", db))
    assert stored(db, req.id).status == "pending"
    done = ok("approve", req.id, "--as", "ana", "--key-from", f"file:{key_file}",
              "--store", db)
    assert "approved" in done.output and stored(db, req.id).signature is not None

    listed = ok("approver", "list", "--store", db).output.splitlines()
    assert listed[0].split() == ["NAME", "STATUS", "GROUPS", "KEY", "SINCE"]
    assert listed[1].split()[:3] == ["ana", "active", "support-leads"]
    assert listed[2].split()[:4] == ["bob", "active", "billing-leads", "-"]
    assert [s["name"] for s in json.loads(ok("approver", "list", "--group", "billing-leads",
                                             "--json", "--store", db).output)] == ["bob"]
    ok("approver", "revoke", "bob", "--group", "billing-leads", "--by", "lee", "--store", db)
    assert "revoked" in ok("approver", "revoke", "ana", "--by", "kim", "--reason", "left",
                           "--store", db).output
    assert "already revoked" in one_line_error(
        run_cli("approver", "revoke", "ana", "--store", db))
    history = ok("approver", "list", "--history", "--store", db).output.splitlines()
    assert [line.split()[3:5] for line in history[1:]] == [
        ["ana", "added"], ["bob", "added"], ["bob", "removed"], ["ana", "revoked"]]
    assert "kim" in history[-1] and "left" in history[-1] and "new lead" in history[1]
    changes = json.loads(ok("approver", "list", "--history", "--json", "--store", db).output)
    assert [(c["approver"], c["action"], c["by"]) for c in changes] == [
        ("ana", "add", "lee"), ("bob", "add", "lee"), ("bob", "revoke", "lee"),
        ("ana", "revoke", "kim")]
    everything = "".join(ok(*a, "--store", db).output for a in (
        ("approver", "list", "--json"), ("approver", "list", "--history", "--json"),
        ("approvals", "--all", "--json")))
    assert key.removeprefix("agentlab-approver-key-") not in everything


def test_expired_request_cannot_be_approved(db: str) -> None:
    from datetime import timedelta

    store = al.open_store(db)
    req = ApprovalManager(store).request(run_id="run-1", call_key="c", tool="set_priority",
                                         arguments=ARGS, timeout=timedelta(microseconds=1))
    store.close()
    time.sleep(0.01)
    assert "expired (undecided)" in ok("approvals", "--store", db).output
    assert "expired at" in one_line_error(run_cli("approve", req.id, "--as", "ana",
                                                  "--store", db))
    assert stored(db, req.id).status == "expired"


def test_approve_all_pending(requests: tuple[str, list[al.ApprovalRequest]]) -> None:
    db, made = requests
    assert "not both" in one_line_error(run_cli("approve", made[0].id, "--all-pending",
                                                "--as", "ci", "--store", db))
    assert "--run only narrows --all-pending" in one_line_error(
        run_cli("approve", made[0].id, "--run", "run-1", "--as", "ci", "--store", db))

    out = ok("approve", "--all-pending", "--run", "run-1", "--as", "ana", "--store", db)
    assert len(out.output.splitlines()) == 3
    for r in made[:3]:
        row = stored(db, r.id)
        assert (row.status, row.decided_by, row.channel, row.reason) == (
            "approved", "ana", "cli", "bulk approval (--all-pending)")
    assert stored(db, made[3].id).status == "pending"

    result = json.loads(ok("approve", "--all-pending", "--as", "ana", "--reason", "reviewed",
                           "--json", "--store", db).output)
    assert [r["id"] for r in result["approved"]] == [made[3].id]
    assert result["approved"][0]["reason"] == "bulk approval (--all-pending): reviewed"
    assert "no pending approval requests" in ok("approve", "--all-pending", "--as", "ana",
                                                "--store", db).output


# -- end to end: an agent waits, a person answers ----------------------------------------------

POLICY = al.Policy([al.Rule("priority-needs-human", "approve", tool="set_priority")])


def wait_for_pending(db: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = json.loads(ok("approvals", "--json", "--store", db).output)
        if found:
            return dict(found[0])
        time.sleep(0.05)
    raise AssertionError("no approval request appeared")


def test_edit_from_the_cli_changes_what_the_waiting_agent_runs(db: str) -> None:
    issue(db, "jira-writer", "--secret", "env:JIRA_TOKEN")
    outcome: dict[str, Any] = {}

    def agent() -> None:
        store = al.open_store(db)
        try:
            with al.record_run("triage", agent="triage-bot", store=store,
                               grants=["jira-writer"], policy=POLICY,
                               approver=al.announce) as run:
                outcome["result"] = set_priority(**ARGS)
                outcome["run_id"] = run.run_id
        finally:
            store.close()

    thread = threading.Thread(target=agent)
    thread.start()
    pending = wait_for_pending(db)
    ok("edit", pending["id"][:12], "--args", '{"ticket": "SUP-57", "priority": "high"}',
       "--as", "ana", "--reason", "enterprise customer", "--store", db)
    thread.join(30)
    assert outcome["result"] == {"ticket": "SUP-57", "priority": "high"}

    shown = json.loads(ok("show", outcome["run_id"], "--json", "--store", db).output)
    approval = next(e for e in shown["events"] if e["kind"] == "approval")
    assert (approval["action"], approval["by"], approval["channel"]) == ("edit", "ana", "cli")
    call = next(e for e in shown["events"] if e["kind"] == "tool_call")
    assert call["arguments"]["priority"] == "high" and call["approval"] == pending["id"]
    text = ok("show", outcome["run_id"], "--store", db).output
    assert "edit by ana via cli" in text


def test_console_script_approves_an_agent_waiting_in_another_process(
    db: str, tmp_path: Path
) -> None:
    agentlab = [sys.executable, "-m", "agentlab"]
    env = dict(os.environ)

    def cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*agentlab, *args, "--store", db], capture_output=True,
                              text=True, timeout=60, env=env)

    made = cmd("grant", "jira-writer", "--principal", "triage-bot", "--owner", "support",
               "--workflow", "triage", "--scope", "jira:write:SUP-*", "--expires-in", "1h",
               "--secret", "env:JIRA_TOKEN")
    assert made.returncode == 0, made.stderr
    script = tmp_path / "agent.py"
    script.write_text(
        "import sys\nimport agentlab as al\n\n"
        "@al.tool(side_effect=True, scope='jira:write:{ticket}')\n"
        "def set_priority(ticket: str, priority: str) -> str:\n"
        "    return f'{ticket}={priority}'\n\n"
        "policy = al.Policy([al.Rule('priority-needs-human', 'approve', tool='set_priority')])\n"
        "store = al.open_store(sys.argv[1])\n"
        "with al.record_run('triage', agent='triage-bot', store=store, grants=['jira-writer'],\n"
        "                   policy=policy, approver=al.announce) as run:\n"
        "    print(run.run_id, set_priority('SUP-57', 'high'), flush=True)\n"
        "store.close()\n"
    )
    agent = subprocess.Popen([sys.executable, str(script), db], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        pending: list[dict[str, Any]] = []
        while not pending and time.monotonic() < deadline:
            listed = cmd("approvals", "--json")
            assert listed.returncode == 0, listed.stderr
            pending = json.loads(listed.stdout)
            time.sleep(0.1)
        assert pending, "the agent never asked"
        assert agent.poll() is None  # it waits for a person
        approved = cmd("approve", pending[0]["id"][:12], "--as", "ana")
        assert approved.returncode == 0, approved.stderr
        assert "by ana via cli" in approved.stdout
        out, err = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0, err
    run_id, result = out.split()
    assert result == "SUP-57=high"
    assert "agentlab approve" in err  # the announce approver said where to answer

    listed = cmd("approvals", "--all", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["status"], row["channel"], row["consumed_by"]) == (
        "approved", "cli", f"triage-bot@{run_id}")
    checked = cmd("grants", "--check", "jira-writer", "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["matches"] is True and report["calls"][0]["calls"] == 1
    assert TOKEN not in checked.stdout + listed.stdout + out + err
