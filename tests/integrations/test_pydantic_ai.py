"""The pydantic-ai adapter: a pydantic-ai agent's model requests and tool calls recorded as
agentlab LLM and tool calls, its tools governed by grants, policy and approvals, each
tool-call id executed and recorded once. Offline: the models are pydantic-ai's
FunctionModel and TestModel."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import WrapperToolset
from pydantic_ai.usage import RequestUsage, RunUsage

import agentlab as al
from agentlab.analysis import explain
from agentlab.approval import ApprovalManager
from agentlab.errors import ConfigError
from agentlab.integrations.pydantic_ai import (
    GovernedToolset,
    RecordedModel,
    ToolRules,
    governed_tools,
    response_from_json,
)
from agentlab.store import SqlStore


class Account(BaseModel):
    account_id: str
    plan: str


def script(*steps: list[ToolCallPart] | str) -> FunctionModel:
    """A model that answers the n-th request with the n-th step: tool calls, or text."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = sum(isinstance(m, ModelResponse) for m in messages)
        step = steps[n]
        parts: list[Any] = [TextPart(step)] if isinstance(step, str) else list(step)
        return ModelResponse(parts=parts, usage=RequestUsage(input_tokens=10 + n,
                                                             output_tokens=3 + n))

    return FunctionModel(answer, model_name="scripted")


def _tool_returns(messages: list[ModelMessage]) -> dict[str, Any]:
    return {p.tool_call_id: p.content for m in messages if isinstance(m, ModelRequest)
            for p in m.parts if isinstance(p, ToolReturnPart)}


@pytest.fixture
def world() -> dict[str, Any]:
    ran: list[tuple[str, dict[str, Any]]] = []

    def lookup_account(account_id: str) -> Account:
        """Look an account up in the CRM."""
        ran.append(("lookup_account", {"account_id": account_id}))
        return Account(account_id=account_id, plan="enterprise")

    def create_issue(project: str, title: str) -> dict[str, str]:
        """Open an issue."""
        ran.append(("create_issue", {"project": project, "title": title}))
        return {"key": f"{project}-7", "title": title}

    tools = governed_tools(lookup_account, create_issue, rules={
        "create_issue": ToolRules(side_effect=True, scope="jira:write:{project}")})
    return {"ran": ran, "tools": tools, "fns": (lookup_account, create_issue)}


def test_model_requests_and_tool_calls_are_recorded_field_by_field(
        store: SqlStore, world: dict[str, Any]) -> None:
    model = script([ToolCallPart("lookup_account", {"account_id": "ACME-1"},
                                 tool_call_id="call-1")], "enterprise plan")
    agent = Agent(RecordedModel(model), toolsets=[world["tools"]],
                  instructions="Answer briefly.")
    with al.record_run("triage", agent="bot", store=store) as run:
        result = agent.run_sync("Which plan is ACME-1 on?")
    assert result.output == "enterprise plan"

    events = store.events(run.run_id)
    assert [e.kind for e in events] == ["run_started", "llm_call", "tool_call", "llm_call",
                                        "run_ended"]
    first, call, second = events[1], events[2], events[3]
    assert first.model == "scripted" and first.provider == "function"
    assert first.messages == [{"role": "system", "content": "Answer briefly."},
                              {"role": "user", "content": "Which plan is ACME-1 on?"}]
    assert first.response == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call-1", "name": "lookup_account", "arguments": {"account_id": "ACME-1"}}]}
    assert (first.input_tokens, first.output_tokens, first.status) == (10, 3, "ok")
    assert first.parameters == {"tools": ["create_issue", "lookup_account"]}

    assert (call.tool, call.call_id, call.status) == ("lookup_account", "call-1", "ok")
    assert call.arguments == {"account_id": "ACME-1"}
    assert call.result == {"account_id": "ACME-1", "plan": "enterprise"}
    assert call.side_effect is False and call.parent_id is None

    assert second.messages[3:] == [{"role": "tool", "tool_call_id": "call-1",
                                    "name": "lookup_account",
                                    "content": {"account_id": "ACME-1", "plan": "enterprise"}}]
    assert second.response == {"role": "assistant", "content": "enterprise plan"}
    assert (second.input_tokens, second.output_tokens) == (11, 4)
    summary = store.run(run.run_id)
    assert (summary.llm_calls, summary.tool_calls, summary.input_tokens,
            summary.output_tokens) == (2, 1, 21, 7)
    assert world["ran"] == [("lookup_account", {"account_id": "ACME-1"})]


def test_outside_a_run_the_agent_runs_unrecorded(store: SqlStore,
                                                 world: dict[str, Any]) -> None:
    agent = Agent(RecordedModel(TestModel()), toolsets=[world["tools"]])
    before = len(store.runs())
    agent.run_sync("hello")
    assert len(store.runs()) == before
    assert {name for name, _ in world["ran"]} == {"lookup_account", "create_issue"}


def test_a_side_effect_without_a_grant_is_refused_and_the_model_is_told(
        store: SqlStore, world: dict[str, Any]) -> None:
    model = script([ToolCallPart("create_issue", {"project": "SUP", "title": "printer"},
                                 tool_call_id="call-2")], "could not")
    agent = Agent(RecordedModel(model), toolsets=[world["tools"]])
    with al.record_run("triage", agent="bot", store=store) as run:
        result = agent.run_sync("open an issue")
    assert world["ran"] == []  # never executed
    [denied] = store.events(run.run_id, kinds=["tool_call"])
    assert (denied.tool, denied.call_id, denied.status) == ("create_issue", "call-2", "denied")
    assert denied.denial is not None and denied.denial.code == "no_grant"
    assert denied.arguments == {"project": "SUP", "title": "printer"}
    assert not store.events(run.run_id, kinds=["tool_intent"])
    told = _tool_returns(result.all_messages())["call-2"]
    assert told == {"error": "denied", "code": "no_grant", "reason": denied.denial.reason}
    assert store.run(run.run_id).status == "succeeded"


def test_a_refusal_can_end_the_agent_run_instead(store: SqlStore,
                                                 world: dict[str, Any]) -> None:
    lookup, create = world["fns"]
    tools = governed_tools(lookup, create, on_denied="raise", rules={
        "create_issue": ToolRules(side_effect=True, scope="jira:write:{project}")})
    model = script([ToolCallPart("create_issue", {"project": "SUP", "title": "x"},
                                 tool_call_id="call-3")], "unreachable")
    agent = Agent(RecordedModel(model), toolsets=[tools])
    with pytest.raises(al.ToolDeniedError, match="create_issue was not run"):
        with al.record_run("triage", agent="bot", store=store) as run:
            agent.run_sync("open an issue")
    assert world["ran"] == []
    summary = store.run(run.run_id)
    assert summary.status == "errored" and summary.denied_count == 1


def test_a_policy_approval_is_awaited_then_the_call_runs_once(
        store: SqlStore, world: dict[str, Any]) -> None:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP"], expires_in=timedelta(days=1))
    policy = al.Policy([al.Rule("issues-need-a-person", "approve", tool="create_issue")])
    model = script([ToolCallPart("create_issue", {"project": "SUP", "title": "printer"},
                                 tool_call_id="call-4")], "opened SUP-7")
    agent = Agent(RecordedModel(model), toolsets=[world["tools"]])
    mgr = ApprovalManager(store)
    decided: list[str] = []

    def person() -> None:  # a person answering from elsewhere while the run waits
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pending = mgr.pending()
            if pending:
                mgr.approve(pending[0].id, by="dana", channel="cli")
                decided.append(pending[0].id)
                return
            time.sleep(0.02)

    answering = threading.Thread(target=person)
    answering.start()
    with al.record_run("triage", agent="bot", store=store, grants=["jira"], policy=policy,
                       approver=al.announce) as run:
        result = agent.run_sync("open an issue")
    answering.join()
    assert result.output == "opened SUP-7"
    assert world["ran"] == [("create_issue", {"project": "SUP", "title": "printer"})]
    [req] = store.approvals(run_id=run.run_id)
    assert [req.id] == decided and (req.status, req.decided_by) == ("approved", "dana")
    [intent] = store.events(run.run_id, kinds=["tool_intent"])
    [call] = store.events(run.run_id, kinds=["tool_call"])
    assert intent.idempotency_key == call.idempotency_key == "pydantic-ai:1:call-4"
    assert call.call_id == intent.call_id and call.intent_id == intent.id
    assert (call.status, call.grant, call.scope, call.policy_rule, call.approval) == (
        "ok", "jira", "jira:write:SUP", "issues-need-a-person", req.id)
    assert call.result == {"key": "SUP-7", "title": "printer"}
    kinds = [e.kind for e in store.events(run.run_id)]
    assert kinds.index("approval") < kinds.index("tool_intent") < kinds.index("tool_call")


def test_a_rejected_approval_is_a_denied_call(store: SqlStore,
                                              world: dict[str, Any]) -> None:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP"], expires_in=timedelta(days=1))
    policy = al.Policy([al.Rule("issues-need-a-person", "approve", tool="create_issue")])

    def reject(req: Any, mgr: ApprovalManager) -> None:
        mgr.reject(req.id, by="dana", reason="not this week")

    model = script([ToolCallPart("create_issue", {"project": "SUP", "title": "x"},
                                 tool_call_id="call-5")], "ok")
    agent = Agent(RecordedModel(model), toolsets=[world["tools"]])
    with al.record_run("triage", agent="bot", store=store, grants=["jira"], policy=policy,
                       approver=reject) as run:
        result = agent.run_sync("open an issue")
    assert world["ran"] == []
    [call] = store.events(run.run_id, kinds=["tool_call"])
    assert call.status == "denied" and call.call_id == "call-5"
    told = _tool_returns(result.all_messages())["call-5"]
    assert told["error"] == "denied" and "not this week" in told["reason"]


class _CalledTwice(WrapperToolset[Any]):
    """A wrapper outside the governed toolset that runs each call twice (a retrying layer,
    or a durable engine re-executing a step)."""

    seen: list[Any]

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any,
                        tool: Any) -> Any:
        first = await self.wrapped.call_tool(name, tool_args, ctx, tool)
        again = await self.wrapped.call_tool(name, tool_args, ctx, tool)
        assert again == first
        return first


def test_the_same_tool_call_id_runs_and_is_recorded_once(store: SqlStore,
                                                        world: dict[str, Any]) -> None:
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP"], expires_in=timedelta(days=1))
    model = script([ToolCallPart("create_issue", {"project": "SUP", "title": "a"},
                                 tool_call_id="call-6"),
                    ToolCallPart("lookup_account", {"account_id": "ACME-1"},
                                 tool_call_id="call-7")],
                   # a later step may reuse an id (some models number calls per response)
                   [ToolCallPart("lookup_account", {"account_id": "ACME-2"},
                                 tool_call_id="call-7")], "done")
    agent = Agent(RecordedModel(model), toolsets=[_CalledTwice(world["tools"])])
    with al.record_run("triage", agent="bot", store=store, grants=["jira"]) as run:
        agent.run_sync("go")
    assert sorted(world["ran"], key=str) == [
        ("create_issue", {"project": "SUP", "title": "a"}),
        ("lookup_account", {"account_id": "ACME-1"}),
        ("lookup_account", {"account_id": "ACME-2"})]
    calls = store.events(run.run_id, kinds=["tool_call"])
    assert sorted((c.tool, c.arguments.get("account_id", "")) for c in calls) == [
        ("create_issue", ""), ("lookup_account", "ACME-1"), ("lookup_account", "ACME-2")]
    assert len(store.events(run.run_id, kinds=["tool_intent"])) == 1
    assert store.actions(run.run_id)[0].idempotency_key == "pydantic-ai:1:call-6"


def test_explain_runs_on_a_recorded_agent_run(store: SqlStore, world: dict[str, Any]) -> None:
    model = script([ToolCallPart("lookup_account", {"account_id": "ACME-1"},
                                 tool_call_id="call-8"),
                    ToolCallPart("create_issue", {"project": "SUP", "title": "b"},
                                 tool_call_id="call-9")], "partly done")
    agent = Agent(RecordedModel(model), toolsets=[world["tools"]])
    with al.record_run("triage", agent="bot", store=store) as run:
        agent.run_sync("go")
        run.outcome(success=False)
    ex = explain(store, run.run_id)
    assert ex.run.run_id == run.run_id and ex.run.status == "failed"
    assert {(c.tool, c.status) for c in ex.calls} >= {("create_issue", "denied")}
    denied = next(c for c in ex.calls if c.tool == "create_issue")
    assert denied.denial is not None and "no grant" in denied.denial


def test_a_recorded_response_converts_back_to_the_same_calls() -> None:
    data = {"role": "assistant", "content": "hi",
            "tool_calls": [{"id": "c1", "name": "lookup_account",
                            "arguments": {"account_id": "A"}}]}
    response = response_from_json(data, model_name="m", input_tokens=3, output_tokens=2)
    text, call = response.parts
    assert isinstance(text, TextPart) and text.content == "hi"
    assert isinstance(call, ToolCallPart)
    assert (call.tool_name, call.args, call.tool_call_id) == ("lookup_account",
                                                              {"account_id": "A"}, "c1")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 2)
    with pytest.raises(ConfigError, match="not a recorded pydantic-ai response"):
        response_from_json({"role": "user", "content": "x"})


def test_bad_rules_are_refused_with_what_to_do(world: dict[str, Any]) -> None:
    lookup, _create = world["fns"]
    with pytest.raises(ConfigError, match=r"rules name tools that are not given: \['delete'\]"):
        governed_tools(lookup, rules={"delete": ToolRules(side_effect=True, scope="x:y")})
    with pytest.raises(ConfigError, match="must be a ToolRules"):
        GovernedToolset(world["tools"].wrapped, rules={"create_issue": {"scope": "x"}})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="on_denied"):
        governed_tools(lookup, on_denied="ignore")  # type: ignore[arg-type]


def test_importing_agentlab_does_not_import_pydantic_ai() -> None:
    code = ("import sys, agentlab, agentlab.integrations; "
            "print('pydantic_ai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_strict_replay_serves_model_and_tools_from_the_record(store: SqlStore) -> None:
    from agentlab.recovery import replay

    from . import _pydantic_ai_agent as recorded_agent

    recorded_agent.asked.clear()
    recorded_agent.ran.clear()
    result = recorded_agent.triage.run({"question": "Which plan?"}, store=store)
    assert result.output == "ACME-1 is on enterprise"
    assert (recorded_agent.asked, recorded_agent.ran) == ([0, 1], ["ACME-1"])

    recorded_agent.asked.clear()
    recorded_agent.ran.clear()
    again = replay(store, result.run_id)
    assert again.identical and again.outcome.status == "succeeded", again
    assert (recorded_agent.asked, recorded_agent.ran) == ([], [])  # nothing asked, nothing run
    served = store.events(again.run_id, kinds=["llm_call", "tool_call"])
    assert [(e.kind, e.replayed is not None) for e in served] == [
        ("llm_call", True), ("tool_call", True), ("llm_call", True)]
    assert served[1].call_id == "call-1"


def test_a_tool_asking_the_model_to_retry_is_a_recorded_error_run_once(
        store: SqlStore) -> None:
    from pydantic_ai import ModelRetry

    tried: list[str] = []

    def lookup_account(account_id: str) -> dict[str, str]:
        """Look an account up in the CRM."""
        tried.append(account_id)
        if not account_id.startswith("ACME-"):
            raise ModelRetry("account ids look like ACME-<n>")
        return {"account_id": account_id}

    model = script([ToolCallPart("lookup_account", {"account_id": "1042"},
                                 tool_call_id="call-a")],
                   [ToolCallPart("lookup_account", {"account_id": "ACME-1042"},
                                 tool_call_id="call-b")], "found it")
    agent = Agent(RecordedModel(model), toolsets=[_CalledTwice(governed_tools(lookup_account))])
    with al.record_run("triage", agent="bot", store=store) as run:
        assert agent.run_sync("find 1042").output == "found it"
    assert tried == ["1042", "ACME-1042"]  # the duplicate got the first call's error
    failed, found = store.events(run.run_id, kinds=["tool_call"])
    assert (failed.call_id, failed.status) == ("call-a", "error")
    assert failed.error is not None and failed.error.type.endswith("ModelRetry")
    assert (found.call_id, found.status, found.result) == ("call-b", "ok",
                                                           {"account_id": "ACME-1042"})
    retry_prompt = store.events(run.run_id, kinds=["llm_call"])[1].messages[-1]
    assert retry_prompt["role"] == "tool" and retry_prompt["tool_call_id"] == "call-a"
    assert "ACME-<n>" in retry_prompt["content"]


def test_a_streamed_request_is_recorded_when_its_stream_ends(store: SqlStore) -> None:
    import asyncio

    agent = Agent(RecordedModel(TestModel(custom_output_text="streamed answer")))

    async def ask() -> str:
        async with agent.run_stream("say something") as stream:
            return await stream.get_output()

    with al.record_run("triage", agent="bot", store=store) as run:
        assert asyncio.run(ask()) == "streamed answer"
    [call] = store.events(run.run_id, kinds=["llm_call"])
    assert (call.model, call.provider, call.reported) == ("test", "test", True)
    assert call.messages == [{"role": "user", "content": "say something"}]
    assert call.response == {"role": "assistant", "content": "streamed answer"}
    assert call.input_tokens and call.output_tokens and call.status == "ok"


def test_a_cancelled_call_may_run_again_under_the_same_id(store: SqlStore) -> None:
    import asyncio

    from pydantic_ai import RunContext

    started = asyncio.Event()
    runs: list[str] = []

    async def slow(account_id: str) -> str:
        """Slow lookup."""
        runs.append(account_id)
        if len(runs) == 1:
            started.set()
            await asyncio.sleep(30)
        return account_id

    tools = governed_tools(slow)

    async def go() -> None:
        ctx = RunContext(deps=None, model=TestModel(), usage=RunUsage(), tool_call_id="c-1",
                         run_step=1)
        tool = (await tools.get_tools(ctx))["slow"]
        first = asyncio.create_task(tools.call_tool("slow", {"account_id": "A"}, ctx, tool))
        await started.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await tools.call_tool("slow", {"account_id": "A"}, ctx, tool) == "A"

    with al.record_run("triage", agent="bot", store=store) as run:
        asyncio.run(go())
    assert runs == ["A", "A"]
    calls = store.events(run.run_id, kinds=["tool_call"])
    assert [(c.call_id, c.status) for c in calls] == [("c-1", "error"), ("c-1", "ok")]
