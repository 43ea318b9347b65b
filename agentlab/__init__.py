"""agentlab: record, govern, explain, recover and measure AI agent runs.

>>> import agentlab as al                                   # doctest: +SKIP
>>> with al.record_run("support-triage", agent="triage-bot") as run:
...     run.state["ticket"] = {"id": "T-1"}
"""

from agentlab.approval import ApprovalManager, Policy, Rule, announce, auto_approve
from agentlab.errors import (
    AgentlabError,
    ApprovalError,
    ApprovalNotFoundError,
    ConfigError,
    GovernanceError,
    GrantError,
    ImportFormatError,
    IntegrityError,
    PayloadTooLargeError,
    PortabilityError,
    RecordingError,
    RecoveryError,
    ReplayDivergence,
    ReplayedError,
    ResumeBlockedError,
    RunNotFoundError,
    SchemaError,
    SecretError,
    StoreBusyError,
    StoreError,
    ToolDeniedError,
)
from agentlab.identity import issue_grant, lint_grants, revoke_grant
from agentlab.model import ApprovalRequest, Grant
from agentlab.record import (
    NOT_APPLIED,
    Agent,
    Compensation,
    Credential,
    ModelReply,
    RunRecorder,
    RunState,
    agent,
    credential,
    current_run,
    expect,
    llm,
    message,
    record_run,
    set_prices,
    step,
    tool,
)
from agentlab.recovery import fork, replay, resume, rollback
from agentlab.store import RunFilter, RunStore, SqlStore, open_store

__version__ = "0.1.0"

__all__ = [
    "NOT_APPLIED",
    "Agent",
    "AgentlabError",
    "ApprovalError",
    "ApprovalManager",
    "ApprovalNotFoundError",
    "ApprovalRequest",
    "Compensation",
    "ConfigError",
    "Credential",
    "GovernanceError",
    "Grant",
    "GrantError",
    "ImportFormatError",
    "IntegrityError",
    "ModelReply",
    "PayloadTooLargeError",
    "Policy",
    "PortabilityError",
    "RecordingError",
    "RecoveryError",
    "ReplayDivergence",
    "ReplayedError",
    "ResumeBlockedError",
    "Rule",
    "RunFilter",
    "RunNotFoundError",
    "RunRecorder",
    "RunState",
    "RunStore",
    "SchemaError",
    "SecretError",
    "SqlStore",
    "StoreBusyError",
    "StoreError",
    "ToolDeniedError",
    "__version__",
    "agent",
    "announce",
    "auto_approve",
    "credential",
    "current_run",
    "expect",
    "fork",
    "issue_grant",
    "lint_grants",
    "llm",
    "message",
    "open_store",
    "record_run",
    "replay",
    "resume",
    "revoke_grant",
    "rollback",
    "set_prices",
    "step",
    "tool",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext agentlab``: the ``%agentlab`` magic and notebook views (see
    :mod:`agentlab.display._magics`). Notebook libraries load only here, on demand."""
    from agentlab.display._magics import load_ipython_extension as load

    load(ipython)
