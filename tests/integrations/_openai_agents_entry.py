"""An OpenAI Agents SDK agent behind an agentlab entry point, importable so that a replay
finds its code (used by test_openai_agents)."""

from __future__ import annotations

from typing import Any

from agents import Agent, Runner
from agents.testing import ScriptedModel, assistant_message, function_call

import agentlab as al
from agentlab.integrations.openai_agents import RecordedModel, RecordingHooks, tool

ran: list[str] = []
"""The accounts the tool looked up."""
model = ScriptedModel()
"""The model: the test scripts it before each run (a replay must not consume it)."""


def script() -> None:
    model.extend([[function_call("lookup_account", {"account_id": "ACME-1"}, call_id="call-1")],
                  [assistant_message("ACME-1 is on enterprise")]])


def lookup_account(account_id: str) -> dict[str, str]:
    """Look an account up in the CRM."""
    ran.append(account_id)
    return {"account_id": account_id, "plan": "enterprise"}


@al.agent("openai-agents-triage", name="bot", version="1.0.0")
def triage(task_input: dict[str, Any]) -> str:
    agent = Agent(name="triage", model=RecordedModel(model, name="scripted"),
                  tools=[tool(lookup_account)])
    return str(Runner.run_sync(agent, task_input["question"], hooks=RecordingHooks())
               .final_output)
