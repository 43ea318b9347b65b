"""The write path: record runs, steps, tool calls, LLM calls and state into a store."""

from agentlab.record._calls import error_info
from agentlab.record._context import Credential, credential, current_run
from agentlab.record._prices import DEFAULT_PRICES, Price, price_call, set_prices
from agentlab.record._run import RunRecorder, record_run
from agentlab.record._state import RunState
from agentlab.record._step import step
from agentlab.record._tool import ToolSpec, tool
from agentlab.record._writer import BackgroundWriter, writer_for

__all__ = [
    "DEFAULT_PRICES",
    "BackgroundWriter",
    "Credential",
    "Price",
    "RunRecorder",
    "RunState",
    "ToolSpec",
    "credential",
    "current_run",
    "error_info",
    "price_call",
    "record_run",
    "set_prices",
    "step",
    "tool",
    "writer_for",
]
