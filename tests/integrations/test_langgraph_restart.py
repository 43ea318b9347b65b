"""A LangGraph run paused on an agentlab approval and resumed by another process.

Real child processes on a real store (a SQLite file, and PostgreSQL): the first runs the
graph under ``record_run``; the model asks for four calls in one message (a read, a call no
grant covers, a tool that fails, a write the policy sends to a person), the graph interrupts
and the run is paused. A second process resumes before anyone decided and pauses again;
``agentlab approve`` decides; a third resumes the graph (``Command(resume=...)``, same
thread, LangGraph's SQLite checkpointer) into the same agentlab run. LangGraph re-runs the
whole tools node each time: the three calls that had ended are answered from the record, the
write runs once, and the record holds every call once. This file is also the child program.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.sqlite")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import ToolException
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command

import agentlab as al
from agentlab.analysis import explain
from agentlab.integrations import langgraph as lg
from agentlab.store import SqlStore

RUN_ID = "triage-sup-57"
TIMEOUT_S = 120


# -- the child program -----------------------------------------------------------------------

def child(url: str, folder: Path, how: str) -> dict[str, Any]:
    """Run the graph ("start") or carry the paused run on ("resume"); say what happened."""
    ledger = folder / "ledger.jsonl"

    @lg.tool(scope="crm:read")
    def lookup_account(account_id: str) -> dict[str, Any]:
        """Look an account up."""
        return {"account_id": account_id, "plan": "enterprise"}

    @lg.tool(scope="crm:read")
    def check_sla(account_id: str) -> str:
        """Read an account's SLA."""
        raise ToolException(f"SLA service unavailable for {account_id}")

    @lg.tool(side_effect=True, scope="jira:write:{ticket}")
    def set_priority(ticket: str, priority: str) -> dict[str, str]:
        """Set a ticket's priority."""
        with ledger.open("a") as f:  # the side effect, seen across processes
            f.write(json.dumps({"ticket": ticket, "priority": priority, "pid": os.getpid()})
                    + "\n")
        if os.environ.get("LG_CRASH_AFTER_WRITE"):
            os._exit(3)  # the process dies after the write, before its result is recorded
        return {"ticket": ticket, "priority": priority}

    calls = [("lookup_account", {"account_id": "ACME-1"}, "c_lookup"),
             ("set_priority", {"ticket": "ENG-9", "priority": "high"}, "c_eng"),
             ("check_sla", {"account_id": "ACME-1"}, "c_sla"),
             ("set_priority", {"ticket": "SUP-57", "priority": "low"}, "c_low")]
    asks = AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"}
                                             for n, a, i in calls])
    final = AIMessage(content="Lowered SUP-57; ENG-9 is not mine; SLA unknown.")
    # Scripted offline: the first process gets the tool calls, a resumed one the answer.
    model = GenericFakeChatModel(messages=iter([asks, final] if how == "start" else [final]))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([lookup_account, check_sla, set_priority]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    saver = SqliteSaver(sqlite3.connect(folder / "graph.db", check_same_thread=False))
    graph = g.compile(checkpointer=lg.RecordingCheckpointer(saver))

    store = al.open_store(url)
    policy = al.Policy([al.Rule("priority-drop-needs-a-person", "approve",
                                tool="set_priority", when=lambda a: a["priority"] == "low")])
    config = {"configurable": {"thread_id": "SUP-57"}, "callbacks": [lg.RecordingCallbacks()]}
    with al.record_run("triage", agent="triage-bot", store=store, run_id=RUN_ID, resume=True,
                       catch_up=False, grants=["jira"], policy=policy,
                       approver=lg.interrupt_approver) as run:
        if how == "start":
            out = graph.invoke({"messages": [HumanMessage("Lower SUP-57, ACME asked")]},
                               config, durability="sync")
        else:
            out = graph.invoke(Command(resume=True), config, durability="sync")
        if out.get("__interrupt__"):
            run.pause("waits for an approval")
            return {"paused": out["__interrupt__"][0].value["agentlab_approval"]}
        run.outcome(success=True)
        return {"answer": out["messages"][-1].content}


# -- the test --------------------------------------------------------------------------------

def _start_child(url: str, folder: Path, how: str, env: dict[str, str], **extra: str
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, __file__, url, str(folder), how],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder,
                          env={**env, **extra})


def _run_child(url: str, folder: Path, how: str, env: dict[str, str]) -> dict[str, Any]:
    done = _start_child(url, folder, how, env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _ledger(folder: Path) -> list[dict[str, Any]]:
    path = folder / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_paused_graph_resumes_in_another_process_into_the_same_run(
        child_store: tuple[str, SqlStore], child_env: dict[str, str],
        tmp_path: Path) -> None:
    url, store = child_store
    al.issue_grant(store, "jira", principal="triage-bot", owner="support", workflow="triage",
                   scopes=["jira:write:SUP-*", "crm:read"], expires_in=timedelta(days=1))

    first = _run_child(url, tmp_path, "start", child_env)
    request_id = first["paused"]
    assert store.run(RUN_ID).status == "running" and _ledger(tmp_path) == []
    (pending,) = al.ApprovalManager(store).pending()
    assert (pending.id, pending.call_key) == (request_id, "langgraph:c_low")

    # Resumed before anyone decided: the graph interrupts again, on the same request.
    assert _run_child(url, tmp_path, "resume", child_env) == {"paused": request_id}
    assert _ledger(tmp_path) == [] and len(store.approvals(run_id=RUN_ID)) == 1

    approved = subprocess.run(
        [sys.executable, "-m", "agentlab", "approve", request_id[:12], "--as", "ana",
         "--store", url], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path,
        env=child_env)
    assert approved.returncode == 0, approved.stderr

    last = _run_child(url, tmp_path, "resume", child_env)
    assert last == {"answer": "Lowered SUP-57; ENG-9 is not mine; SLA unknown."}
    # the write ran once, in the last process
    (write,) = _ledger(tmp_path)
    assert (write["ticket"], write["priority"]) == ("SUP-57", "low")

    events = store.events(RUN_ID)
    kinds = [e.kind for e in events]
    assert kinds.count("run_started") == 1 and kinds.count("run_resumed") == 2
    assert kinds[-1] == "run_ended" and store.run(RUN_ID).status == "succeeded"
    calls = {(e.tool, e.arguments.get("ticket")): e for e in events if e.kind == "tool_call"}
    assert len(calls) == len([e for e in events if e.kind == "tool_call"]) == 4  # each once
    assert calls[("lookup_account", None)].status == "ok"
    assert calls[("lookup_account", None)].call_id == "c_lookup"
    assert calls[("set_priority", "ENG-9")].denial.code == "scope"
    assert calls[("check_sla", None)].status == "error"
    low = calls[("set_priority", "SUP-57")]
    assert (low.status, low.approval, low.idempotency_key, low.result) == (
        "ok", request_id, "langgraph:c_low", {"ticket": "SUP-57", "priority": "low"})
    assert [i.idempotency_key for i in events if i.kind == "tool_intent"] == ["langgraph:c_low"]
    (decision,) = [e for e in events if e.kind == "approval"]
    assert (decision.action, decision.by, decision.channel) == ("approve", "ana", "cli")
    # the graph state went on from where it was: the whole conversation, once
    state = store.state_at(RUN_ID)
    assert [m["role"] for m in state["messages"]] == ["user", "assistant", "tool", "tool",
                                                     "tool", "tool", "assistant"]

    report = explain(store, RUN_ID)
    assert sorted(c.status for c in report.calls) == ["denied", "error", "ok", "ok"]
    assert "approve by ana via cli" in [c.approval for c in report.calls]


def test_a_write_cut_off_by_a_crash_is_not_run_again(child_store: tuple[str, SqlStore],
                                                     child_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    url, store = child_store
    al.issue_grant(store, "jira", principal="triage-bot", owner="support", workflow="triage",
                   scopes=["jira:write:SUP-*", "crm:read"], expires_in=timedelta(days=1))
    request_id = _run_child(url, tmp_path, "start", child_env)["paused"]
    al.ApprovalManager(store).approve(request_id, by="ana")
    crashed = _start_child(url, tmp_path, "resume", child_env, LG_CRASH_AFTER_WRITE="1")
    assert crashed.returncode == 3, crashed.stderr
    assert len(_ledger(tmp_path)) == 1
    keys = [(e.kind, e.idempotency_key) for e in store.events(RUN_ID)
            if e.kind in ("tool_intent", "tool_call") and e.tool == "set_priority"]
    assert keys[-1] == ("tool_intent", "langgraph:c_low")  # an intent, no result

    blocked = _start_child(url, tmp_path, "resume", child_env)
    assert blocked.returncode != 0
    assert "ResumeBlockedError" in blocked.stderr and "set_priority" in blocked.stderr
    assert len(_ledger(tmp_path)) == 1  # not written again
    assert store.run(RUN_ID).status == "errored"


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]), sys.argv[3])))
