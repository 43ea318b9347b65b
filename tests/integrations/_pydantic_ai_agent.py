"""A pydantic-ai agent behind an agentlab entry point, importable so that a replay finds
its code (used by test_pydantic_ai)."""

from __future__ import annotations

from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import agentlab as al
from agentlab.integrations.pydantic_ai import RecordedModel, governed_tools

asked: list[int] = []
"""The requests the model answered (by turn)."""
ran: list[str] = []
"""The accounts the tool looked up."""


def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    turn = sum(isinstance(m, ModelResponse) for m in messages)
    asked.append(turn)
    if turn == 0:
        return ModelResponse(parts=[ToolCallPart("lookup_account", {"account_id": "ACME-1"},
                                                 tool_call_id="call-1")],
                             usage=RequestUsage(input_tokens=5, output_tokens=2))
    return ModelResponse(parts=[TextPart("ACME-1 is on enterprise")],
                         usage=RequestUsage(input_tokens=9, output_tokens=4))


def lookup_account(account_id: str) -> dict[str, str]:
    """Look an account up in the CRM."""
    ran.append(account_id)
    return {"account_id": account_id, "plan": "enterprise"}


@al.agent("pydantic-triage", name="bot", version="1.0.0")
def triage(task_input: dict[str, Any]) -> str:
    agent = Agent(RecordedModel(FunctionModel(answer, model_name="scripted")),
                  toolsets=[governed_tools(lookup_account)])
    return agent.run_sync(task_input["question"]).output
