"""An OpenAI Agents SDK run paused by needs_approval survives its process: the paused
RunState is kept in the store (SQLite file, PostgreSQL), the decision is taken through
agentlab (the CLI), and a new process resumes the run and runs the approved call once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

import agentlab as al
from agentlab.analysis import explain

AGENT = Path(__file__).with_name("_openai_agents_agent.py")


def child(env: dict[str, str], phase: str, url: str, schema: str | None, *extra: str,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(AGENT), phase, url, schema or "-", *extra],
                          capture_output=True, text=True, env=env, check=check, timeout=120)


def test_a_run_paused_for_approval_resumes_in_a_new_process_and_runs_once(
        store_url: tuple[str, str | None], store_cli_url: str, child_env: dict[str, str],
        tmp_path: Path) -> None:
    url, schema = store_url
    ran_log = url if schema is None else str(tmp_path / "pg.db")
    store = al.open_store(url, schema=schema)
    al.issue_grant(store, "payments", principal="refund-bot", owner="finance",
                   workflow="refunds", scopes=["payments:refund"],
                   expires_in=timedelta(days=1))

    paused = json.loads(child(child_env, "pause", url, schema, ran_log).stdout)
    [req_id] = paused["requests"]
    req = store.approval(req_id)
    assert (req.run_id, req.call_key, req.tool, req.status) == (
        paused["run_id"], "openai-agents:call-2", "refund", "pending")
    assert req.arguments == {"order": "O-7", "amount": 40}
    ran = Path(ran_log).with_suffix(".ran")
    assert not ran.exists()  # nothing refunded before the decision
    # The paused run is left open, free for any process to carry on.
    waiting = store.run(paused["run_id"])
    assert waiting.status == "running" and waiting.holder == "paused"
    assert not store.events(paused["run_id"], kinds=["run_ended"])

    cli = [sys.executable, "-m", "agentlab", "approve", req_id, "--as", "dana",
           "--store", store_cli_url]
    out = subprocess.run(cli, capture_output=True, text=True, env=child_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert store.approval(req_id).status == "approved"

    resumed = json.loads(child(child_env, "resume", url, schema, ran_log, req_id).stdout)
    assert resumed["output"] == "refunded O-7"
    assert resumed["decisions"] == {"call-2": "approved"}
    assert ran.read_text() == "O-7\n"

    # A second resume of the same pause is refused: the run has ended, the call ran once.
    again = child(child_env, "resume", url, schema, ran_log, req_id, check=False)
    assert again.returncode != 0 and "already ended" in again.stderr
    assert ran.read_text() == "O-7\n"

    # One run, paused then continued, holds every call once.
    run_id = paused["run_id"]
    assert resumed["run_id"] == run_id and store.run(run_id).status == "succeeded"
    calls: dict[str, list[Any]] = {}
    for e in store.events(run_id, kinds=["tool_call"]):
        key = e.idempotency_key or e.call_id
        calls.setdefault(key, []).append(e.status)
    assert calls == {"call-1": ["ok"], "openai-agents:call-2": ["ok"]}
    assert len(store.events(run_id, kinds=["tool_intent"])) == 1
    assert len(store.events(run_id, kinds=["run_resumed"])) == 1
    state = store.state_at(run_id)
    assert state["openai_agents_resumed"] == {
        "paused_run": run_id, "approvals": {"call-2": {"request": req_id,
                                                        "decision": "approved"}}}
    assert "openai_agents_paused" not in state
    assert [e.response["content"] for e in store.events(run_id, kinds=["llm_call"])][-1] == (
        "refunded O-7")
    ex = explain(store, run_id)
    assert [(c.tool, c.status) for c in ex.calls] == [("lookup_order", "ok"),
                                                      ("refund", "ok")]
    store.close()
