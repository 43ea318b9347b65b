"""agentlab: record, govern, explain, recover and measure AI agent runs.

>>> import agentlab as al                                   # doctest: +SKIP
>>> with al.record_run("support-triage", agent="triage-bot") as run:
...     run.state["ticket"] = {"id": "T-1"}
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__)
    from agentlab.approval import (
        ApprovalManager,
        Policy,
        Rule,
        add_approver,
        announce,
        auto_approve,
        revoke_approver,
    )
    from agentlab.identity import (
        issue_grant,
        lint_grants,
        revoke_grant,
    )
    from agentlab.model import (
        ApprovalRequest,
        Grant,
    )
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
    from agentlab.recovery import (
        fork,
        replay,
        resume,
        rollback,
    )
    from agentlab.store import (
        RunFilter,
        RunStore,
        SqlStore,
        open_store,
    )

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
    "add_approver",
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
    "revoke_approver",
    "revoke_grant",
    "rollback",
    "set_prices",
    "step",
    "tool",
]


_LAZY: dict[str, str] = {
    "ApprovalManager": "agentlab.approval",
    "Policy": "agentlab.approval",
    "Rule": "agentlab.approval",
    "announce": "agentlab.approval",
    "auto_approve": "agentlab.approval",
    "add_approver": "agentlab.approval",
    "revoke_approver": "agentlab.approval",
    "issue_grant": "agentlab.identity",
    "lint_grants": "agentlab.identity",
    "revoke_grant": "agentlab.identity",
    "ApprovalRequest": "agentlab.model",
    "Grant": "agentlab.model",
    "NOT_APPLIED": "agentlab.record",
    "Agent": "agentlab.record",
    "Compensation": "agentlab.record",
    "Credential": "agentlab.record",
    "ModelReply": "agentlab.record",
    "RunRecorder": "agentlab.record",
    "RunState": "agentlab.record",
    "agent": "agentlab.record",
    "credential": "agentlab.record",
    "current_run": "agentlab.record",
    "expect": "agentlab.record",
    "llm": "agentlab.record",
    "message": "agentlab.record",
    "record_run": "agentlab.record",
    "set_prices": "agentlab.record",
    "step": "agentlab.record",
    "tool": "agentlab.record",
    "fork": "agentlab.recovery",
    "replay": "agentlab.recovery",
    "resume": "agentlab.recovery",
    "rollback": "agentlab.recovery",
    "RunFilter": "agentlab.store",
    "RunStore": "agentlab.store",
    "SqlStore": "agentlab.store",
    "open_store": "agentlab.store",
}
"""Where each public name lives: `import agentlab` loads none of them (no SQLAlchemy, no
pydantic), the first use of one loads its module."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentlab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext agentlab``: the ``%agentlab`` magic and notebook views (see
    :mod:`agentlab.display._magics`). Notebook libraries load only here, on demand."""
    from agentlab.display._magics import load_ipython_extension as load

    load(ipython)
