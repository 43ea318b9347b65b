"""An OpenAI Agents SDK agent run in child processes by test_openai_agents_restart: the
first process records a run that pauses for approval, a later one resumes it.

    python _openai_agents_agent.py pause|resume STORE_URL SCHEMA|- LOG [REQUEST_ID]

Each refund the tool makes is appended to LOG with the suffix ``.ran``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agents import Agent, Runner, set_trace_processors
from agents.testing import ScriptedModel, assistant_message, function_call

import agentlab as al
from agentlab.integrations.openai_agents import (
    RecordingHooks,
    RecordingProcessor,
    pause_for_approvals,
    resume_state,
    tool,
)

RAN = Path(sys.argv[4]).with_suffix(".ran") if len(sys.argv) > 4 else None


def refund(order: str, amount: int) -> dict[str, Any]:
    """Refund an order."""
    if RAN is not None:
        with RAN.open("a") as f:
            f.write(f"{order}\n")
    return {"refunded": order, "amount": amount}


def lookup_order(order: str) -> dict[str, Any]:
    """Look an order up."""
    return {"order": order, "paid": 40}


def build(*steps: Any) -> Agent[Any]:
    return Agent(name="refunds", instructions="Refund when asked.",
                 model=ScriptedModel(steps),
                 tools=[tool(lookup_order),
                        tool(refund, side_effect=True, scope="payments:refund",
                             needs_approval=True)])


async def main(phase: str, url: str, schema: str | None, request_id: str | None) -> None:
    set_trace_processors([RecordingProcessor()])  # offline: no trace goes to OpenAI
    store = al.open_store(url, schema=schema)
    if phase == "pause":
        agent = build([function_call("lookup_order", {"order": "O-7"}, call_id="call-1"),
                       function_call("refund", {"order": "O-7", "amount": 40},
                                     call_id="call-2")])
        with al.record_run("refunds", agent="refund-bot", store=store,
                           grants=["payments"]) as run:
            result = await Runner.run(agent, "refund O-7", hooks=RecordingHooks())
            requests = pause_for_approvals(result)
            again = pause_for_approvals(result)  # idempotent: the same requests
            assert [r.id for r in again] == [r.id for r in requests]
        print(json.dumps({"run_id": run.run_id, "requests": [r.id for r in requests]}))
        return
    assert request_id is not None
    agent = build([assistant_message("refunded O-7")])
    paused_run = store.approval(request_id).run_id  # the run goes on where it paused
    with al.record_run("refunds", agent="refund-bot", store=store, grants=["payments"],
                       run_id=paused_run, resume=True, catch_up=False) as run:
        resumed = await resume_state(store, agent, request_id)
        result = await Runner.run(agent, resumed.state, hooks=RecordingHooks())
    print(json.dumps({"run_id": run.run_id, "output": result.final_output,
                      "decisions": dict(resumed.decisions)}))


if __name__ == "__main__":
    schema_arg = sys.argv[3]
    asyncio.run(main(sys.argv[1], sys.argv[2], None if schema_arg == "-" else schema_arg,
                     sys.argv[5] if len(sys.argv) > 5 else None))
