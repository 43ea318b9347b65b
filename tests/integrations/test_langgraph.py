"""The LangGraph adapter: a real StateGraph (plain nodes, a fake chat model, ToolNode)
recorded into a real store, with grants, a policy and approvals decided through agentlab."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.store import SqlStore

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

from agentlab.analysis import explain
from agentlab.integrations import langgraph as lg

WRITES = al.Policy([al.Rule("priority-drop-needs-a-person", "approve", tool="set_priority",
                            when=lambda a: a["priority"] == "low")])


class State(MessagesState):
    ticket: str
    category: str


def _world(store: SqlStore) -> dict[str, Any]:
    al.issue_grant(store, "jira", principal="triage-bot", owner="support", workflow="triage",
                   scopes=["jira:write:SUP-*", "crm:read"], expires_in=timedelta(days=1))
    ran: list[dict[str, Any]] = []

    @lg.tool(scope="crm:read")
    def lookup_account(account_id: str) -> dict[str, Any]:
        """Look an account up in the CRM."""
        return {"account_id": account_id, "plan": "enterprise"}

    @lg.tool(side_effect=True, scope="jira:write:{ticket}")
    def set_priority(ticket: str, priority: str) -> dict[str, str]:
        """Set a ticket's priority."""
        ran.append({"ticket": ticket, "priority": priority})
        return {"ticket": ticket, "priority": priority}

    return {"tools": [lookup_account, set_priority], "ran": ran}


def _call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id,
                                              "type": "tool_call"}])


def _graph(tools: list[Any], replies: list[AIMessage], checkpointer: Any = None) -> Any:
    model = GenericFakeChatModel(messages=iter(replies))

    def classify(state: State) -> dict[str, Any]:
        return {"category": "outage" if "503" in state["messages"][0].content else "other"}

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: State) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    g = StateGraph(State)
    g.add_node("classify", classify)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "classify")
    g.add_edge("classify", "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer or lg.RecordingCheckpointer())


def _config(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "callbacks": [lg.RecordingCallbacks()]}


def _input() -> dict[str, Any]:
    return {"messages": [HumanMessage("Checkout returns 503 for ACME")], "ticket": "SUP-57"}


def _run(store: SqlStore) -> Any:
    return al.record_run("triage", agent="triage-bot", store=store, grants=["jira"],
                         policy=WRITES, approver=lg.interrupt_approver)


def _by_kind(store: SqlStore, run_id: str, kind: str) -> list[Any]:
    return [e for e in store.events(run_id) if e.kind == kind]


def test_steps_state_llm_and_tool_calls_are_recorded(store: SqlStore) -> None:
    w = _world(store)
    final = AIMessage(content="Raised SUP-57 to high.",
                      usage_metadata={"input_tokens": 42, "output_tokens": 7,
                                      "total_tokens": 49})
    replies = [_call("lookup_account", {"account_id": "ACME-1042"}, "call_lookup"),
               _call("set_priority", {"ticket": "SUP-57", "priority": "high"}, "call_prio"),
               final]
    graph = _graph(w["tools"], replies)
    with _run(store) as run:
        out = graph.invoke(_input(), _config(), durability="sync")
        run.outcome(success=True)
    assert out["messages"][-1].content == "Raised SUP-57 to high."
    assert w["ran"] == [{"ticket": "SUP-57", "priority": "high"}]
    events = store.events(run.run_id)
    by_id = {e.id: e for e in events}

    # each node execution is a step; tool calls nest in a tool step inside the tools node
    steps = [e for e in events if e.kind == "step"]
    assert [s.name for s in steps] == [
        "classify", "agent", "tool:lookup_account", "tools", "agent", "tool:set_priority",
        "tools", "agent"]
    assert steps[0].output == {"category": "outage"} and steps[0].status == "ok"

    # the graph state after each node is a checkpoint
    cps = [e for e in events if e.kind == "checkpoint"]
    after_classify = next(c for c in cps if c.seq > steps[0].seq)
    state = store.state_at(run.run_id, after_classify.seq)
    assert state["category"] == "outage" and state["ticket"] == "SUP-57"
    assert state["messages"] == [{"role": "user", "content": "Checkout returns 503 for ACME"}]
    last = store.state_at(run.run_id)
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "tool", "assistant",
                                                     "tool", "assistant"]
    assert last["messages"][-1]["content"] == "Raised SUP-57 to high."

    # model calls: model, messages, response with its tool calls, tokens when reported
    llm = [e for e in events if e.kind == "llm_call"]
    assert len(llm) == 3
    assert llm[0].model == "generic-fake-chat-model"
    assert llm[0].messages == [{"role": "user", "content": "Checkout returns 503 for ACME"}]
    assert llm[0].response["tool_calls"] == [
        {"id": "call_lookup", "name": "lookup_account", "args": {"account_id": "ACME-1042"}}]
    assert by_id[llm[0].parent_id].name == "agent"
    assert len(llm[2].messages) == 5 and llm[2].messages[2]["tool_call_id"] == "call_lookup"
    assert (llm[2].input_tokens, llm[2].output_tokens) == (42, 7)
    assert llm[2].response["content"] == "Raised SUP-57 to high."

    # tool calls: arguments, structured results, the model's tool-call id
    calls = [e for e in events if e.kind == "tool_call"]
    lookup, prio = calls
    assert (lookup.tool, lookup.status, lookup.arguments, lookup.result) == (
        "lookup_account", "ok", {"account_id": "ACME-1042"},
        {"account_id": "ACME-1042", "plan": "enterprise"})
    assert (lookup.grant, lookup.scope, lookup.side_effect) == ("jira", "crm:read", False)
    assert by_id[lookup.parent_id].output == {"tool_call_id": "call_lookup"}
    assert (prio.tool, prio.status, prio.arguments, prio.result) == (
        "set_priority", "ok", {"ticket": "SUP-57", "priority": "high"},
        {"ticket": "SUP-57", "priority": "high"})
    assert (prio.side_effect, prio.idempotency_key, prio.grant, prio.scope,
            prio.policy_rule) == (True, "langgraph:call_prio", "jira", "jira:write:SUP-57",
                                  "default")
    intent = _by_kind(store, run.run_id, "tool_intent")
    assert [i.idempotency_key for i in intent] == ["langgraph:call_prio"]
    assert by_id[by_id[prio.parent_id].parent_id].name == "tools"

    report = explain(store, run.run_id)
    assert report.run.run_id == run.run_id
    assert [(c.tool, c.status, c.grant) for c in report.calls] == [
        ("lookup_account", "ok", "jira"), ("set_priority", "ok", "jira")]


def test_side_effecting_call_without_a_grant_is_refused(store: SqlStore) -> None:
    w = _world(store)
    replies = [_call("set_priority", {"ticket": "ENG-9", "priority": "high"}, "call_eng"),
               AIMessage(content="I may not change ENG tickets.")]
    graph = _graph(w["tools"], replies)
    with _run(store) as run:
        out = graph.invoke(_input(), _config())
    assert w["ran"] == []
    seen = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(seen) == 1 and seen[0].status == "error" and seen[0].tool_call_id == "call_eng"
    assert seen[0].content.startswith("agentlab refused set_priority: ")
    assert "jira:write:ENG-9" in seen[0].content
    (call,) = _by_kind(store, run.run_id, "tool_call")
    assert (call.status, call.denial.code, call.arguments) == (
        "denied", "scope", {"ticket": "ENG-9", "priority": "high"})
    assert _by_kind(store, run.run_id, "tool_intent") == []
    assert out["messages"][-1].content == "I may not change ENG tickets."
    assert [c.status for c in explain(store, run.run_id).calls] == ["denied"]


def test_denied_call_can_raise_into_the_graph(store: SqlStore) -> None:
    _world(store)

    @lg.tool(side_effect=True, scope="jira:write:{ticket}", on_denied="raise")
    def close_ticket(ticket: str) -> str:
        """Close a ticket."""
        raise AssertionError("must not run")

    graph = _graph([close_ticket], [_call("close_ticket", {"ticket": "ENG-1"}, "c1")])
    with _run(store) as run, pytest.raises(al.ToolDeniedError):
        graph.invoke(_input(), _config())
    assert [c.denial.code for c in _by_kind(store, run.run_id, "tool_call")] == ["scope"]


def _low(call_id: str = "call_low") -> list[AIMessage]:
    return [_call("set_priority", {"ticket": "SUP-57", "priority": "low"}, call_id),
            AIMessage(content="Lowered SUP-57.")]


def test_approval_interrupts_the_graph_and_resumes_once_decided(store: SqlStore) -> None:
    w = _world(store)
    graph = _graph(w["tools"], _low())
    with _run(store) as run:
        paused = graph.invoke(_input(), _config())
        (intr,) = paused["__interrupt__"]
        assert w["ran"] == []
        manager = al.ApprovalManager(store)
        (pending,) = manager.pending()
        assert intr.value["agentlab_approval"] == pending.id
        assert intr.value["tool"] == "set_priority"
        assert intr.value["arguments"] == {"ticket": "SUP-57", "priority": "low"}
        assert intr.value["rule"] == "priority-drop-needs-a-person"
        assert pending.call_key == "langgraph:call_low"
        manager.approve(pending.id, by="ana", reason="customer asked")
        out = graph.invoke(Command(resume=True), _config())
        run.outcome(success=True)
    assert out["messages"][-1].content == "Lowered SUP-57."
    assert w["ran"] == [{"ticket": "SUP-57", "priority": "low"}]
    (call,) = _by_kind(store, run.run_id, "tool_call")
    assert (call.status, call.approval, call.policy_rule) == (
        "ok", pending.id, "priority-drop-needs-a-person")
    (approval,) = _by_kind(store, run.run_id, "approval")
    assert (approval.action, approval.by) == ("approve", "ana")
    tools_steps = [s for s in _by_kind(store, run.run_id, "step") if s.name == "tools"]
    assert tools_steps[0].output == {"interrupted": True} and len(tools_steps) == 2
    assert [c.approval for c in explain(store, run.run_id).calls] == ["approve by ana via api"]


def test_resume_value_can_carry_the_decision(store: SqlStore) -> None:
    w = _world(store)
    graph = _graph(w["tools"], [*_low()[:1], AIMessage(content="Left it as it was.")])
    with _run(store) as run:
        graph.invoke(_input(), _config())
        out = graph.invoke(Command(resume={"action": "reject", "by": "ana",
                                           "reason": "keep it high"}), _config())
    assert w["ran"] == []
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert msg.status == "error" and "rejected by ana" in msg.content
    (call,) = _by_kind(store, run.run_id, "tool_call")
    assert (call.status, call.denial.code) == ("denied", "rejected")
    with pytest.raises(al.ConfigError, match="not a decision"):
        with _run(store):
            g2 = _graph(w["tools"], _low("call_other"))
            g2.invoke(_input(), _config("t2"))
            g2.invoke(Command(resume={"action": "maybe"}), _config("t2"))


def test_a_node_run_again_on_resume_does_not_write_twice(store: SqlStore) -> None:
    w = _world(store)
    set_priority = w["tools"][1]

    def act(state: State) -> dict[str, Any]:
        call = {"name": "set_priority", "args": {"ticket": "SUP-57", "priority": "high"},
                "id": "call_once", "type": "tool_call"}
        done = set_priority.invoke(call)
        confirmed = interrupt({"confirm": done.content})   # the node runs again on resume
        return {"messages": [done], "category": f"confirmed:{confirmed}"}

    g = StateGraph(State)
    g.add_node("act", act)
    g.add_edge(START, "act")
    g.add_edge("act", END)
    graph = g.compile(checkpointer=lg.RecordingCheckpointer())
    with _run(store) as run:
        graph.invoke(_input(), _config())
        out = graph.invoke(Command(resume="yes"), _config())
    assert out["category"] == "confirmed:yes"
    assert w["ran"] == [{"ticket": "SUP-57", "priority": "high"}]
    assert [e.idempotency_key for e in _by_kind(store, run.run_id, "tool_intent")] == [
        "langgraph:call_once"]
    assert len(_by_kind(store, run.run_id, "tool_call")) == 1
    assert [s.name for s in _by_kind(store, run.run_id, "step")] == [
        "tool:set_priority", "act", "act"]
    assert store.state_at(run.run_id)["category"] == "confirmed:yes"


def test_tools_run_unrecorded_outside_a_run(store: SqlStore) -> None:
    w = _world(store)
    graph = _graph(w["tools"], [*_low()[:1], AIMessage(content="done")])
    out = graph.invoke(_input(), _config())
    assert w["ran"] == [{"ticket": "SUP-57", "priority": "low"}]
    assert out["messages"][-1].content == "done"
    assert store.runs() == []


def test_async_graph_runs_are_refused_with_a_typed_error(store: SqlStore) -> None:
    w = _world(store)
    graph = _graph(w["tools"], [AIMessage(content="done")])
    with _run(store), pytest.raises(al.RecordingError, match="async runs"):
        asyncio.run(graph.ainvoke(_input(), _config()))


def test_importing_agentlab_does_not_import_langgraph() -> None:
    code = ("import sys, agentlab, agentlab.integrations; "
            "assert not any(m.split('.')[0] in ('langgraph', 'langchain_core') "
            "for m in sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
