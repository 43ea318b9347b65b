"""The OpenAI Agents SDK adapter: model calls, governed tool calls (keyed on the model's
tool-call id), handoffs and run state recorded; denials and tool errors recorded and told
to the model; needs_approval pauses bridged to agentlab approvals. Offline: the model is
the SDK's own ScriptedModel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, set_trace_processors
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext
from agents.usage import Usage

import agentlab as al
from agentlab.analysis import explain
from agentlab.approval import ApprovalManager
from agentlab.errors import ApprovalError, ConfigError
from agentlab.integrations.openai_agents import (
    PAUSED_KEY,
    RecordingHooks,
    RecordingProcessor,
    pause_for_approvals,
    resume_state,
    tool,
)
from agentlab.store import SqlStore


@pytest.fixture(autouse=True)
def offline_tracing() -> None:
    set_trace_processors([RecordingProcessor()])  # no trace is sent to OpenAI


@pytest.fixture
def world() -> dict[str, Any]:
    ran: list[tuple[str, Any]] = []

    def lookup_account(account_id: str) -> dict[str, str]:
        """Look an account up in the CRM."""
        ran.append(("lookup_account", account_id))
        return {"account_id": account_id, "plan": "enterprise"}

    def create_issue(project: str, title: str) -> dict[str, str]:
        """Open an issue."""
        ran.append(("create_issue", project))
        return {"key": f"{project}-7", "title": title}

    def flaky(account_id: str) -> str:
        """Always fails."""
        ran.append(("flaky", account_id))
        raise RuntimeError("CRM is down")

    return {"ran": ran, "fns": (lookup_account, create_issue, flaky),
            "tools": [tool(lookup_account),
                      tool(create_issue, side_effect=True, scope="jira:write:{project}"),
                      tool(flaky)]}


def usage(i: int, o: int) -> Usage:
    return Usage(requests=1, input_tokens=i, output_tokens=o, total_tokens=i + o)


def run_agent(store: SqlStore, agent: Agent[Any], text: str = "go", **kw: Any) -> Any:
    with al.record_run("triage", agent="bot", store=store, **kw) as run:
        result = Runner.run_sync(agent, text, hooks=RecordingHooks())
    return run, result


def test_model_calls_tool_calls_errors_and_state_are_recorded(
        store: SqlStore, world: dict[str, Any]) -> None:
    model = ScriptedModel([
        {"output": [function_call("lookup_account", {"account_id": "ACME-1"}, call_id="c-1"),
                    function_call("flaky", {"account_id": "ACME-1"}, call_id="c-2")],
         "usage": usage(10, 3)},
        {"output": [assistant_message("enterprise")], "usage": usage(20, 4)}])
    agent = Agent(name="triage", instructions="Answer briefly.", model=model,
                  tools=world["tools"])
    run, result = run_agent(store, agent, "Which plan is ACME-1 on?")
    assert result.final_output == "enterprise"

    first, second = store.events(run.run_id, kinds=["llm_call"])
    assert first.messages == [{"role": "system", "content": "Answer briefly."},
                              {"role": "user", "content": "Which plan is ACME-1 on?"}]
    assert first.response == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c-1", "name": "lookup_account", "arguments": {"account_id": "ACME-1"}},
        {"id": "c-2", "name": "flaky", "arguments": {"account_id": "ACME-1"}}]}
    assert (first.input_tokens, first.output_tokens, first.provider) == (10, 3,
                                                                         "openai-agents")
    assert second.messages[2]["tool_calls"][1]["id"] == "c-2"
    told = {m["tool_call_id"]: m["content"] for m in second.messages if m["role"] == "tool"}
    assert "enterprise" in told["c-1"] and "error occurred" in told["c-2"]
    assert second.response == {"role": "assistant", "content": "enterprise"}

    ok, failed = store.events(run.run_id, kinds=["tool_call"])
    assert (ok.tool, ok.call_id, ok.status) == ("lookup_account", "c-1", "ok")
    assert ok.arguments == {"account_id": "ACME-1"}
    assert ok.result == {"account_id": "ACME-1", "plan": "enterprise"}
    assert (failed.tool, failed.call_id, failed.status) == ("flaky", "c-2", "error")
    assert failed.error is not None and "CRM is down" in failed.error.message

    state = store.state_at(run.run_id)
    assert (state["agent"], state["final_output"]) == ("triage", "enterprise")
    [trace] = [e for e in store.events(run.run_id, kinds=["step"])
               if e.name == "openai-agents:trace"]
    assert trace.output["workflow"] == "Agent workflow"
    assert trace.output["trace_id"].startswith("trace_")
    assert [(s["type"], s["name"]) for s in state["openai_agents_spans"]] == [
        ("function", "flaky")]
    summary = store.run(run.run_id)
    assert (summary.llm_calls, summary.tool_calls, summary.input_tokens) == (2, 2, 30)


def test_a_denied_call_is_recorded_and_the_model_is_told(
        store: SqlStore, world: dict[str, Any]) -> None:
    model = ScriptedModel([
        [function_call("create_issue", {"project": "SUP", "title": "x"}, call_id="c-3")],
        [assistant_message("could not")]])
    agent = Agent(name="triage", model=model, tools=world["tools"])
    run, _result = run_agent(store, agent)
    assert world["ran"] == []
    [denied] = store.events(run.run_id, kinds=["tool_call"])
    assert (denied.tool, denied.call_id, denied.status) == ("create_issue", "c-3", "denied")
    assert denied.denial is not None and denied.denial.code == "no_grant"
    last = store.events(run.run_id, kinds=["llm_call"])[1].messages[-1]
    assert last["tool_call_id"] == "c-3" and "no_grant" in last["content"]
    assert store.run(run.run_id).status == "succeeded"


def test_a_denial_can_end_the_sdk_run_instead(store: SqlStore,
                                              world: dict[str, Any]) -> None:
    _lookup, create_issue, _flaky = world["fns"]
    model = ScriptedModel([
        [function_call("create_issue", {"project": "SUP", "title": "x"}, call_id="c-4")]])
    agent = Agent(name="triage", model=model, tools=[
        tool(create_issue, side_effect=True, scope="jira:write:{project}", on_denied="raise")])
    with pytest.raises(al.ToolDeniedError, match="create_issue was not run"):
        run_agent(store, agent)
    [summary] = [r for r in store.runs() if r.workflow == "triage"]
    assert summary.status == "errored" and summary.denied_count == 1
    assert world["ran"] == []


def test_a_granted_side_effect_runs_once_per_tool_call_id(
        store: SqlStore, world: dict[str, Any]) -> None:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP"], expires_in=timedelta(days=1))
    create = world["tools"][1]
    args = '{"project": "SUP", "title": "printer"}'

    async def twice() -> list[Any]:  # a framework calling the tool again on resume
        ctx = ToolContext(context=None, tool_name="create_issue", tool_call_id="c-5",
                          tool_arguments=args)
        return [await create.on_invoke_tool(ctx, args) for _ in range(2)]

    flaky = world["tools"][2]

    async def failing_twice() -> list[str]:
        ctx = ToolContext(context=None, tool_name="flaky", tool_call_id="c-f",
                          tool_arguments='{"account_id": "F"}')
        return [await flaky.on_invoke_tool(ctx, '{"account_id": "F"}') for _ in range(2)]

    with al.record_run("triage", agent="bot", store=store, grants=["jira"]) as run:
        first, again = asyncio.run(twice())
        told = asyncio.run(failing_twice())
    assert told[0] == told[1] and "error occurred" in told[0]
    [failed] = [c for c in store.events(run.run_id, kinds=["tool_call"]) if c.tool == "flaky"]
    assert (failed.call_id, failed.status) == ("c-f", "error")
    world["ran"].remove(("flaky", "F"))  # ran once: the second invocation got its error
    assert first == again == {"key": "SUP-7", "title": "printer"}
    assert world["ran"] == [("create_issue", "SUP")]
    [intent] = store.events(run.run_id, kinds=["tool_intent"])
    [call] = [c for c in store.events(run.run_id, kinds=["tool_call"]) if c.tool != "flaky"]
    assert intent.idempotency_key == call.idempotency_key == "openai-agents:c-5"
    assert call.status == "ok" and call.grant == "jira"


def test_a_handoff_is_a_step_and_the_state_follows_the_agent(store: SqlStore) -> None:
    billing = Agent(name="billing", model=ScriptedModel([[assistant_message("refunded")]]))
    triage = Agent(name="triage", handoffs=[billing], model=ScriptedModel([
        [function_call("transfer_to_billing", {}, call_id="h-1")]]))
    run, result = run_agent(store, triage)
    assert result.final_output == "refunded"
    [step] = [e for e in store.events(run.run_id, kinds=["step"]) if e.name == "handoff"]
    assert step.output == {"from": "triage", "to": "billing"}
    assert store.state_at(run.run_id)["agent"] == "billing"
    assert len(store.events(run.run_id, kinds=["llm_call"])) == 2


def test_explain_runs_on_a_recorded_agent_run(store: SqlStore,
                                              world: dict[str, Any]) -> None:
    model = ScriptedModel([
        [function_call("lookup_account", {"account_id": "A"}, call_id="c-6"),
         function_call("create_issue", {"project": "SUP", "title": "b"}, call_id="c-7")],
        [assistant_message("partly done")]])
    agent = Agent(name="triage", model=model, tools=world["tools"])
    with al.record_run("triage", agent="bot", store=store) as run:
        Runner.run_sync(agent, "go", hooks=RecordingHooks())
        run.outcome(success=False)
    ex = explain(store, run.run_id)
    assert ex.run.status == "failed"
    assert {(c.tool, c.status) for c in ex.calls} >= {("lookup_account", "ok"),
                                                      ("create_issue", "denied")}


def test_outside_a_run_the_tools_run_unrecorded(store: SqlStore,
                                                world: dict[str, Any]) -> None:
    model = ScriptedModel([[function_call("lookup_account", {"account_id": "B"},
                                          call_id="c-8")], [assistant_message("ok")]])
    agent = Agent(name="triage", model=model, tools=world["tools"])
    assert Runner.run_sync(agent, "go", hooks=RecordingHooks()).final_output == "ok"
    assert world["ran"] == [("lookup_account", "B")] and store.runs() == []


def _paused(store: SqlStore, refund: Any) -> tuple[str, list[str]]:
    agent = Agent(name="refunds", tools=[refund], model=ScriptedModel(
        [[function_call("refund", {"order": "O-1"}, call_id="r-1")]]))
    with al.record_run("refunds", agent="bot", store=store) as run:
        result = Runner.run_sync(agent, "refund O-1", hooks=RecordingHooks())
        assert [i.tool_name for i in result.interruptions] == ["refund"]
        ids = [r.id for r in pause_for_approvals(result)]
    return run.run_id, ids


def test_a_paused_run_is_stored_and_resumes_on_an_agentlab_decision(
        store: SqlStore) -> None:
    refunded: list[str] = []

    def refund(order: str) -> str:
        """Refund an order."""
        refunded.append(order)
        return f"refunded {order}"

    refund_tool = tool(refund, needs_approval=True)
    run_id, [req_id] = _paused(store, refund_tool)
    req = store.approval(req_id)
    assert (req.call_key, req.tool, req.arguments, req.status) == (
        "openai-agents:r-1", "refund", {"order": "O-1"}, "pending")
    paused = store.state_at(run_id)[PAUSED_KEY]
    assert paused["approvals"] == {"r-1": req_id} and paused["state"]["$schemaVersion"]
    assert refunded == []

    agent = Agent(name="refunds", tools=[refund_tool],
                  model=ScriptedModel([[assistant_message("done")]]))
    with pytest.raises(ApprovalError, match="still pending"):
        asyncio.run(resume_state(store, agent, req_id))
    ApprovalManager(store).reject(req_id, by="dana", reason="not this one")

    async def resume() -> Any:
        with al.record_run("refunds", agent="bot", store=store) as run:
            resumed = await resume_state(store, agent, req_id)
            result = await Runner.run(agent, resumed.state, hooks=RecordingHooks())
        return run, resumed, result

    run, resumed, result = asyncio.run(resume())
    assert resumed.decisions == {"r-1": "rejected"} and resumed.paused_run_id == run_id
    assert result.final_output == "done" and refunded == []
    assert store.state_at(run.run_id)["openai_agents_resumed"] == {
        "paused_run": run_id, "approvals": {"r-1": {"request": req_id,
                                                    "decision": "rejected"}}}
    told = store.events(run.run_id, kinds=["llm_call"])[0].messages[-1]
    assert told["tool_call_id"] == "r-1" and told["role"] == "tool"


def test_resume_refuses_a_run_that_did_not_pause(store: SqlStore) -> None:
    with al.record_run("refunds", agent="bot", store=store) as run:
        pass
    req = ApprovalManager(store).request(run_id=run.run_id, call_key="k", tool="t",
                                         arguments={})
    with pytest.raises(ConfigError, match="holds no paused OpenAI Agents SDK run"):
        asyncio.run(resume_state(store, Agent(name="x"), req.id))
    with pytest.raises(ConfigError, match=r"inside `with al\.record_run"):
        pause_for_approvals(object())
    with pytest.raises(ConfigError, match="on_denied"):
        tool(lambda: None, on_denied="ignore")  # type: ignore[arg-type]


def test_importing_agentlab_does_not_import_the_sdk() -> None:
    code = "import sys, agentlab, agentlab.integrations; print('agents' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_no_secret_of_a_paused_run_is_stored_in_clear(store: SqlStore) -> None:
    secret = "ghp_" + "Q7x" * 12  # a GitHub-token-shaped value the user pasted

    def rotate(token: str) -> str:
        """Rotate a token."""
        return "rotated"

    agent = Agent(name="ops", tools=[tool(rotate, needs_approval=True)], model=ScriptedModel(
        [[function_call("rotate", {"token": secret}, call_id="s-1")]]))
    with al.record_run("ops", agent="bot", store=store) as run:
        result = Runner.run_sync(agent, f"rotate {secret} please", hooks=RecordingHooks())
        [req] = pause_for_approvals(result)
    assert secret not in repr(store.state_at(run.run_id))
    assert secret not in repr(store.approval(req.id).arguments)
    assert secret not in repr([e.model_dump() for e in store.events(run.run_id)])
    if store.url.startswith("sqlite"):
        store.close()
        db = store.url.removeprefix("sqlite:///")
        assert secret.encode() not in Path(db).read_bytes()


def test_a_policy_approval_is_awaited_and_recorded_on_the_call(
        store: SqlStore, world: dict[str, Any]) -> None:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP"], expires_in=timedelta(days=1))
    policy = al.Policy([al.Rule("issues-need-a-person", "approve", tool="create_issue")])
    model = ScriptedModel([
        [function_call("create_issue", {"project": "SUP", "title": "p"}, call_id="c-9")],
        [assistant_message("opened")]])
    agent = Agent(name="triage", model=model, tools=world["tools"])
    run, result = run_agent(store, agent, grants=["jira"], policy=policy,
                            approver=al.auto_approve("dana"))
    assert result.final_output == "opened" and world["ran"] == [("create_issue", "SUP")]
    [req] = store.approvals(run_id=run.run_id)
    [call] = store.events(run.run_id, kinds=["tool_call"])
    assert req.call_key == call.idempotency_key == "openai-agents:c-9"
    assert (call.status, call.approval, call.policy_rule) == ("ok", req.id,
                                                              "issues-need-a-person")


def test_a_plain_sdk_tool_is_recorded_as_a_step_with_its_call_id(store: SqlStore) -> None:
    from agents import function_tool

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    model = ScriptedModel([[function_call("weather", {"city": "Lyon"}, call_id="w-1")],
                           [assistant_message("sunny")]])
    run, _result = run_agent(store, Agent(name="triage", model=model, tools=[weather]))
    [step] = [e for e in store.events(run.run_id, kinds=["step"])
              if e.name == "tool:weather"]
    assert step.output == {"tool_call_id": "w-1", "arguments": {"city": "Lyon"},
                           "result": "sunny in Lyon"}
    assert store.events(run.run_id, kinds=["tool_call"]) == []  # ungoverned: no tool_call
    governed = ScriptedModel([[function_call("lookup", {"account_id": "A"}, call_id="g-1")],
                              [assistant_message("ok")]])

    def lookup(account_id: str) -> str:
        """Look up."""
        return account_id

    run, _result = run_agent(store, Agent(name="t", model=governed, tools=[tool(lookup)]))
    assert not [e for e in store.events(run.run_id, kinds=["step"])
                if e.name.startswith("tool:")]


def test_a_strict_replay_serves_model_and_tools_from_the_record(store: SqlStore) -> None:
    from agentlab.recovery import replay

    from . import _openai_agents_entry as entry

    entry.ran.clear()
    entry.script()
    result = entry.triage.run({"question": "Which plan?"}, store=store)
    assert result.output == "ACME-1 is on enterprise" and entry.ran == ["ACME-1"]
    assert entry.model.remaining_steps == 0
    first = store.events(result.run_id, kinds=["llm_call"])[0]
    assert (first.model, first.provider, first.reported) == ("scripted", "openai-agents",
                                                              False)
    assert first.response["tool_calls"][0]["id"] == "call-1"

    entry.ran.clear()
    again = replay(store, result.run_id)  # the script is empty: a live model call would fail
    assert again.identical and again.outcome.status == "succeeded", again.state_diff
    assert entry.ran == []
    served = store.events(again.run_id, kinds=["llm_call", "tool_call"])
    assert [(e.kind, e.replayed is not None) for e in served] == [
        ("llm_call", True), ("tool_call", True), ("llm_call", True)]
    assert served[1].call_id == "call-1"


def test_a_streamed_run_is_recorded_by_the_same_hooks(store: SqlStore,
                                                      world: dict[str, Any]) -> None:
    model = ScriptedModel([[function_call("lookup_account", {"account_id": "S"},
                                          call_id="st-1")], [assistant_message("streamed")]])
    agent = Agent(name="triage", model=model, tools=world["tools"])

    async def go() -> Any:
        with al.record_run("triage", agent="bot", store=store) as run:
            streamed = Runner.run_streamed(agent, "go", hooks=RecordingHooks())
            async for _event in streamed.stream_events():
                pass
        return run, streamed

    run, streamed = asyncio.run(go())
    assert streamed.final_output == "streamed"
    assert [e.kind for e in store.events(run.run_id, kinds=["llm_call", "tool_call"])] == [
        "llm_call", "tool_call", "llm_call"]
    [call] = store.events(run.run_id, kinds=["tool_call"])
    assert (call.call_id, call.result) == ("st-1", {"account_id": "S", "plan": "enterprise"})
    assert store.events(run.run_id, kinds=["llm_call"])[1].response == {
        "role": "assistant", "content": "streamed"}


def test_a_recorded_model_records_each_call_once_streamed_or_not(store: SqlStore) -> None:
    from agentlab.integrations.openai_agents import RecordedModel

    def agent() -> Agent[Any]:
        return Agent(name="triage", model=RecordedModel(
            ScriptedModel([[assistant_message("hi")]]), name="scripted"))

    run, _result = run_agent(store, agent())
    [call] = store.events(run.run_id, kinds=["llm_call"])
    assert (call.model, call.reported) == ("scripted", False)  # by @llm: a replay serves it

    async def streamed() -> Any:
        with al.record_run("triage", agent="bot", store=store) as run:
            result = Runner.run_streamed(agent(), "go", hooks=RecordingHooks())
            async for _event in result.stream_events():
                pass
        return run

    run = asyncio.run(streamed())
    [call] = store.events(run.run_id, kinds=["llm_call"])
    assert call.reported and call.response == {"role": "assistant", "content": "hi"}
