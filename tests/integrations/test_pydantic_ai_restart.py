"""A pydantic-ai agent's run that pauses for an agentlab approval and resumes in another
process: the help-desk agent of ``_pydantic_ai_agent.py`` (a tool error, a denied call, then
a call that needs a person) runs as a child process on a real SQLite file or PostgreSQL
schema; the call is deferred (pydantic-ai's ``DeferredToolRequests``), the run paused and the
process gone; the decision is taken through agentlab's CLI or API; a new process resumes the
run and the call runs once. Also in one process: ``deferred_results`` continues the agent
run with pydantic-ai's own ``DeferredToolResults``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import DeferredToolRequests, ToolApproved
from pydantic_ai.toolsets import FunctionToolset

import agentlab as al
from agentlab.analysis import explain
from agentlab.approval import ApprovalManager
from agentlab.errors import ConfigError, RecordingError
from agentlab.integrations.pydantic_ai import (
    GovernedToolset,
    ToolRules,
    defer_approval,
    deferred_results,
)
from agentlab.store import SqlStore

CHILD = Path(__file__).with_name("_pydantic_ai_agent.py")
TIMEOUT_S = 120
BEFORE_THE_GATE = ["run_started", "llm_call", "tool_call", "llm_call", "tool_call", "llm_call",
                   "tool_call", "llm_call"]


def _child(url: str, run_id: str, side_log: Path, how: str, env: dict[str, str]
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHILD), url, run_id, str(side_log), how],
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=side_log.parent, env=env)


def _paused(url: str, run_id: str, side_log: Path, how: str, env: dict[str, str]) -> str:
    out = _child(url, run_id, side_log, how, env)
    assert out.returncode == 3, out.stderr
    [line] = out.stdout.splitlines()
    word, request_id = line.split()
    assert word == "PAUSED"
    return request_id


def _executions(side_log: Path) -> list[str]:
    return side_log.read_text(encoding="utf-8").splitlines() if side_log.exists() else []


def test_an_approval_pauses_the_run_and_a_new_process_resumes_it(
        child_store: tuple[str, SqlStore], child_env: dict[str, str],
        tmp_path: Path) -> None:
    url, store = child_store
    side_log = tmp_path / "issues.log"
    request_id = _paused(url, "helpdesk-1", side_log, "policy", child_env)

    # Process 1 is gone; the run is open (no end), free to resume, its request pending.
    summary = store.run("helpdesk-1")
    assert summary.status == "running"
    assert [e.kind for e in store.events("helpdesk-1")] == BEFORE_THE_GATE
    [req] = store.approvals(run_id="helpdesk-1")
    assert (req.id, req.status, req.tool, req.call_key) == (
        request_id, "pending", "create_issue", "pydantic-ai:4:call-3")
    assert req.arguments == {"project": "SUP", "title": "Refund ACME-1042"}
    assert _executions(side_log) == []

    # Resumed while nobody has decided: it pauses again, on the same request.
    assert _paused(url, "helpdesk-1", side_log, "policy", child_env) == request_id
    assert _executions(side_log) == [] and len(store.approvals(run_id="helpdesk-1")) == 1

    approved = subprocess.run(
        [sys.executable, "-m", "agentlab", "approve", request_id[:12], "--as", "ana",
         "--store", url], capture_output=True, text=True, timeout=TIMEOUT_S,
        cwd=tmp_path, env=child_env)
    assert approved.returncode == 0, approved.stderr

    done = _child(url, "helpdesk-1", side_log, "policy", child_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DONE Opened an issue for the refund of ACME-1042"
    assert _executions(side_log) == ["SUP Refund ACME-1042"]  # once, with a wrapper calling twice

    events = store.events("helpdesk-1")
    assert [e.kind for e in events] == [*BEFORE_THE_GATE, "run_resumed", "run_resumed",
                                        "approval", "tool_intent", "tool_call", "llm_call",
                                        "run_ended"]
    calls = [e for e in events if e.kind == "tool_call"]
    assert [(c.tool, c.status) for c in calls] == [
        ("lookup_account", "error"), ("lookup_account", "ok"), ("delete_account", "denied"),
        ("create_issue", "ok")]
    assert [c.call_id for c in calls[:3]] == ["call-0", "call-1", "call-2"]
    assert calls[0].error is not None and calls[0].error.type.endswith("ModelRetry")
    assert calls[2].denial is not None and calls[2].denial.code == "scope"
    created = calls[3]
    assert (created.approval, created.policy_rule, created.idempotency_key, created.result) == (
        request_id, "issues-need-a-person", "pydantic-ai:4:call-3",
        {"key": "SUP-101", "title": "Refund ACME-1042"})
    [decision] = [e for e in events if e.kind == "approval"]
    assert (decision.action, decision.by, decision.channel) == ("approve", "ana", "cli")
    summary = store.run("helpdesk-1")
    assert (summary.status, summary.success, summary.llm_calls, summary.denied_count) == (
        "succeeded", True, 5, 1)
    assert store.approvals(run_id="helpdesk-1")[0].consumed_by is not None

    ex = explain(store, "helpdesk-1")
    assert ex.run.status == "succeeded"
    assert [(c.tool, c.status) for c in ex.calls] == [(c.tool, c.status) for c in calls]
    assert ex.calls[3].approval == "approve by ana via cli"

    # The run has ended: a further resume is refused and runs nothing.
    again = _child(url, "helpdesk-1", side_log, "policy", child_env)
    assert again.returncode != 0 and "has already ended" in again.stderr
    assert len(_executions(side_log)) == 1


def test_a_native_requires_approval_tool_is_an_agentlab_approval_across_a_restart(
        child_store: tuple[str, SqlStore], child_env: dict[str, str],
        tmp_path: Path) -> None:
    url, store = child_store
    side_log = tmp_path / "issues.log"
    request_id = _paused(url, "helpdesk-2", side_log, "native", child_env)
    req = store.approval(request_id)
    assert (req.rule, req.call_key) == ("pydantic-ai:requires_approval", "pydantic-ai:4:call-3")
    ApprovalManager(store).reject(request_id, by="ana", reason="refunds go through billing")

    done = _child(url, "helpdesk-2", side_log, "native", child_env)
    assert done.returncode == 0, done.stderr
    assert _executions(side_log) == []
    events = store.events("helpdesk-2")
    [refused] = [e for e in events if e.kind == "tool_call" and e.tool == "create_issue"]
    assert (refused.status, refused.approval, refused.call_id) == ("denied", request_id, "call-3")
    assert refused.denial is not None and refused.denial.code == "rejected"
    assert "refunds go through billing" in refused.denial.reason
    told = events[events.index(refused) + 1]
    assert told.kind == "llm_call" and told.messages[-1]["content"]["code"] == "rejected"
    assert store.run("helpdesk-2").status == "succeeded"
    assert not store.events("helpdesk-2", kinds=["tool_intent"])


# -- in one process -----------------------------------------------------------------------------

def _returns(messages: list[ModelMessage]) -> dict[str, Any]:
    return {p.tool_call_id: p.content for m in messages if isinstance(m, ModelRequest)
            for p in m.parts if isinstance(p, ToolReturnPart)}


@pytest.fixture
def helpdesk(store: SqlStore, tmp_path: Path) -> dict[str, Any]:
    from . import _pydantic_ai_agent as child

    al.issue_grant(store, child.GRANT, principal=child.AGENT, owner="support",
                   workflow=child.WORKFLOW, scopes=["crm:read", "jira:write:SUP"])
    side_log = tmp_path / "issues.log"
    return {"child": child, "log": side_log,
            "agent": child.helpdesk_agent(str(side_log), native=True)}


def test_deferred_results_continue_the_agent_run_with_an_edit(
        store: SqlStore, helpdesk: dict[str, Any]) -> None:
    child, agent = helpdesk["child"], helpdesk["agent"]
    with al.record_run(child.WORKFLOW, agent=child.AGENT, store=store, grants=[child.GRANT],
                       policy=al.Policy(), approver=defer_approval) as run:
        paused = agent.run_sync(child.QUESTION)
        requests = paused.output
        assert isinstance(requests, DeferredToolRequests)
        [call] = requests.approvals
        request_id = requests.metadata[call.tool_call_id]["agentlab_approval"]
        assert deferred_results(requests) is None  # nobody decided yet
        run.approvals.edit(request_id, {"project": "SUP", "title": "Refund ACME-1042 (EUR)"},
                           by="ana", reason="say the currency")
        results = deferred_results(requests)
        assert results is not None
        assert results.approvals == {"call-3": ToolApproved()}
        assert results.metadata["call-3"]["agentlab_decision"] == "edited"
        assert results.metadata["call-3"]["agentlab_decided_by"] == "ana"
        done = agent.run_sync(message_history=paused.all_messages(),
                              deferred_tool_results=results)
        # The same continuation again (a retry): the call id has run, it gets the result.
        again = agent.run_sync(message_history=paused.all_messages(),
                               deferred_tool_results=results)
    assert done.output == "Opened an issue for the refund of ACME-1042"
    assert _executions(helpdesk["log"]) == ["SUP Refund ACME-1042 (EUR)"]
    created = [e for e in store.events(run.run_id, kinds=["tool_call"])
               if e.tool == "create_issue"]
    assert [(c.status, c.arguments["title"]) for c in created] == [
        ("ok", "Refund ACME-1042 (EUR)")]
    assert created[0].approval == request_id and created[0].call_id is not None
    assert [i.arguments["title"] for i in store.events(run.run_id, kinds=["tool_intent"])] == [
        "Refund ACME-1042 (EUR)"]
    [decision] = store.events(run.run_id, kinds=["approval"])
    assert (decision.action, decision.by) == ("edit", "ana")
    assert _returns(done.all_messages())["call-3"] == _returns(again.all_messages())["call-3"] \
        == {"key": "SUP-101", "title": "Refund ACME-1042 (EUR)"}


def test_a_deferral_needs_an_agentlab_request(store: SqlStore) -> None:
    def refund(amount: int) -> str:
        """Refund."""
        return "refunded"

    tools = FunctionToolset()
    tools.add_function(refund, requires_approval=True)
    plain = Agent(TestModel(), toolsets=[tools], output_type=[str, DeferredToolRequests])
    outside = plain.run_sync("refund").output   # not governed: pydantic-ai's own deferral
    assert isinstance(outside, DeferredToolRequests)
    with al.record_run("t", agent="bot", store=store):
        with pytest.raises(ConfigError, match="deferred outside agentlab"):
            deferred_results(outside)
    with pytest.raises(RecordingError, match="inside the recorded run"):
        deferred_results(DeferredToolRequests())
    assert deferred_results(DeferredToolRequests(), manager=ApprovalManager(store)) is not None
    assert not store.approvals()

    governed = Agent(TestModel(), toolsets=[GovernedToolset(tools)],
                     output_type=[str, DeferredToolRequests])
    assert isinstance(governed.run_sync("refund").output, DeferredToolRequests)  # outside a run
    with pytest.raises(ConfigError, match=r"requires approval .* give the run a policy"):
        with al.record_run("t", agent="bot", store=store):
            governed.run_sync("refund")
    gated = Agent(TestModel(), toolsets=[GovernedToolset(tools, rules={
        "refund": ToolRules(scope="pay:refund")})], output_type=[str, DeferredToolRequests])
    al.issue_grant(store, "pay", principal="bot", owner="o", workflow="t", scopes=["pay:*"])
    with al.record_run("t", agent="bot", store=store, grants=["pay"],
                       approver=defer_approval) as run:
        out = gated.run_sync("refund").output
        run.pause("waits for the refund's approval")
    assert isinstance(out, DeferredToolRequests)
    [req] = store.approvals(run_id=run.run_id)
    assert (req.tool, req.rule, req.scope, req.status) == (
        "refund", "pydantic-ai:requires_approval", "pay:refund", "pending")
    assert out.metadata[out.approvals[0].tool_call_id]["agentlab_approval"] == req.id


def test_calls_made_inside_an_approved_tool_are_not_asked_again(store: SqlStore) -> None:
    @al.tool(scope="pay:read")
    def balance(account_id: str) -> int:
        return 40

    def refund(account_id: str) -> str:
        """Refund what the account was charged."""
        return f"refunded {balance(account_id)}"

    tools = FunctionToolset()
    tools.add_function(refund, requires_approval=True)
    agent = Agent(TestModel(), toolsets=[GovernedToolset(tools, rules={
        "refund": ToolRules(scope="pay:refund")})], output_type=[str, DeferredToolRequests])
    al.issue_grant(store, "pay", principal="bot", owner="o", workflow="t", scopes=["pay:*"])
    with al.record_run("t", agent="bot", store=store, grants=["pay"],
                       approver=defer_approval) as run:
        paused = agent.run_sync("refund ACME-1")
        assert isinstance(paused.output, DeferredToolRequests)
        [req] = run.approvals.pending()
        run.approvals.approve(req.id, by="ana")
        results = deferred_results(paused.output)
        agent.run_sync(message_history=paused.all_messages(), deferred_tool_results=results)
    calls = store.events(run.run_id, kinds=["tool_call"])
    assert [(c.tool, c.status, c.policy_rule, c.approval) for c in calls] == [
        ("balance", "ok", "default", None),
        ("refund", "ok", "pydantic-ai:requires_approval", req.id)]
    assert len(store.approvals(run_id=run.run_id)) == 1


def test_agentlab_resume_carries_a_paused_entry_point_run_on(store: SqlStore,
                                                             tmp_path: Path) -> None:
    from agentlab.recovery import resume

    from . import _pydantic_ai_agent as child

    al.issue_grant(store, child.GRANT, principal=child.AGENT, owner="support",
                   workflow=child.WORKFLOW, scopes=["crm:read", "jira:write:SUP"])
    side_log = tmp_path / "issues.log"
    task = {"question": child.QUESTION, "side_log": str(side_log)}
    first = child.helpdesk.run(task, store=store)
    assert (first.status, first.output) == ("running", None)
    [req] = store.approvals(run_id=first.run_id)
    assert resume(store, first.run_id).outcome.status == "running"  # undecided: paused again
    ApprovalManager(store).approve(req.id, by="ana")
    done = resume(store, first.run_id)
    assert done.outcome.status == "succeeded" and done.error is None
    assert _executions(side_log) == ["SUP Refund ACME-1042"]
    created = store.events(first.run_id, kinds=["tool_call"])[-1]
    assert (created.tool, created.status, created.approval) == ("create_issue", "ok", req.id)
