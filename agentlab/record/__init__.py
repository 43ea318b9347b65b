"""The write path: record runs, steps, tool calls, model calls and state into a store.

Every call passes one pipeline of named stages (:mod:`agentlab.record._pipeline`) that the
run's mode configures (:mod:`agentlab.record._calls`): a recording executes calls live, a
resumed run catches up with its record first, and :mod:`agentlab.recovery` plugs in modes
that serve calls from a recorded run.
"""

from agentlab.record._agent import Agent, AgentResult, agent, call_agent, code_ref, load_agent
from agentlab.record._calls import (
    LIVE,
    LIVE_PLAN,
    RECORDING,
    CallMode,
    Live,
    ModelCall,
    Plan,
    Reconcile,
    Serve,
    Stub,
    ToolCall,
)
from agentlab.record._context import Credential, credential
from agentlab.record._core import error_info
from agentlab.record._llm import ModelReply, llm
from agentlab.record._prices import DEFAULT_PRICES, Price, price_call, set_prices
from agentlab.record._record_run import current_run, expect, message, record_run
from agentlab.record._recorded import (
    RecordedCall,
    RecordedRun,
    describe_call,
    message_shape,
    model_signature,
    nested_in_tools,
    tool_signature,
)
from agentlab.record._run import RunRecorder
from agentlab.record._spec import NOT_APPLIED, Compensation, ModelSpec, ToolSpec
from agentlab.record._state import RunState
from agentlab.record._step import step
from agentlab.record._stores import store_for
from agentlab.record._tool import tool
from agentlab.record._writer import BackgroundWriter, writer_for

__all__ = [
    "DEFAULT_PRICES",
    "LIVE",
    "LIVE_PLAN",
    "NOT_APPLIED",
    "RECORDING",
    "Agent",
    "AgentResult",
    "BackgroundWriter",
    "CallMode",
    "Compensation",
    "Credential",
    "Live",
    "ModelCall",
    "ModelReply",
    "ModelSpec",
    "Plan",
    "Price",
    "Reconcile",
    "RecordedCall",
    "RecordedRun",
    "RunRecorder",
    "RunState",
    "Serve",
    "Stub",
    "ToolCall",
    "ToolSpec",
    "agent",
    "call_agent",
    "code_ref",
    "credential",
    "current_run",
    "describe_call",
    "error_info",
    "expect",
    "llm",
    "load_agent",
    "message",
    "message_shape",
    "model_signature",
    "nested_in_tools",
    "price_call",
    "record_run",
    "set_prices",
    "step",
    "store_for",
    "tool",
    "tool_signature",
    "writer_for",
]
