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
    Credential,
    RunRecorder,
    RunState,
    credential,
    current_run,
    record_run,
    set_prices,
    step,
    tool,
)
from agentlab.store import RunFilter, RunStore, SqlStore, open_store

__version__ = "0.1.0"

__all__ = [
    "AgentlabError",
    "ApprovalError",
    "ApprovalManager",
    "ApprovalNotFoundError",
    "ApprovalRequest",
    "ConfigError",
    "Credential",
    "GovernanceError",
    "Grant",
    "GrantError",
    "ImportFormatError",
    "IntegrityError",
    "PayloadTooLargeError",
    "Policy",
    "PortabilityError",
    "RecordingError",
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
    "announce",
    "auto_approve",
    "credential",
    "current_run",
    "issue_grant",
    "lint_grants",
    "open_store",
    "record_run",
    "revoke_grant",
    "set_prices",
    "step",
    "tool",
]
