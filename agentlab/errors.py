"""Every error agentlab raises, under one root.

    AgentlabError
    ├── ConfigError              a setting has a value agentlab cannot use
    ├── PortabilityError         a value cannot be stored portably (import side)
    ├── PayloadTooLargeError     a payload exceeds the configured size limit
    ├── StoreError               the store cannot do what was asked
    │   ├── StoreBusyError       the database stayed locked past the retry budget
    │   ├── SchemaError          the database schema is missing, newer or foreign
    │   ├── RunNotFoundError     no run has the id that was given
    │   ├── IntegrityError       a hash chain or blob does not match its contents
    │   └── ImportFormatError    a portable file is malformed or inconsistent
    ├── RecordingError           the recorder was used in a way it cannot record
    ├── InvestigationError       an investigation cannot be opened or concluded as asked
    └── GovernanceError          grants, secrets, policy and approvals
        ├── GrantError           a grant cannot be issued, found or revoked as asked
        ├── SecretError          a secret cannot be resolved, or the signing key is unusable
        ├── ToolDeniedError      a tool call was refused before it ran (``.denial`` says why)
        └── ApprovalError        an approval request cannot be decided as asked
            └── ApprovalNotFoundError   no request has the id that was given

Each message says what happened, shows the offending value and says what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentlab.model import Denial

__all__ = [
    "AgentlabError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ConfigError",
    "GovernanceError",
    "GrantError",
    "ImportFormatError",
    "IntegrityError",
    "InvestigationError",
    "PayloadTooLargeError",
    "PortabilityError",
    "RecordingError",
    "RunNotFoundError",
    "SchemaError",
    "SecretError",
    "StoreBusyError",
    "StoreError",
    "ToolDeniedError",
]


class AgentlabError(Exception):
    """Root of every error agentlab raises."""


class ConfigError(AgentlabError):
    """A configuration value is invalid."""


class PortabilityError(AgentlabError, ValueError):
    """A value has no portable JSON form (raised when importing foreign data)."""


class PayloadTooLargeError(AgentlabError, ValueError):
    """A recorded payload is larger than the store's configured limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} is {size:,} bytes, over the limit of {limit:,} bytes; "
            "store a reference (a path or URL) instead, or raise the limit with "
            "AGENTLAB_MAX_PAYLOAD_BYTES / open_store(max_payload_bytes=...)"
        )
        self.what = what
        self.size = size
        self.limit = limit


class StoreError(AgentlabError):
    """The store cannot carry out an operation."""


class StoreBusyError(StoreError):
    """The database stayed locked by other writers past the retry budget."""


class SchemaError(StoreError):
    """The database schema is missing, newer than this agentlab, or not agentlab's."""


class RunNotFoundError(StoreError, KeyError):
    """No run has the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __str__(self) -> str:
        return (
            f"no run with id {self.run_id!r} in this store; "
            "list runs with `agentlab runs` (ids may be abbreviated to a unique prefix)"
        )


class IntegrityError(StoreError):
    """Stored data does not match its hash chain or content hash."""


class ImportFormatError(StoreError):
    """A portable export file is malformed or internally inconsistent."""


class RecordingError(AgentlabError):
    """The recorder was used in a way it cannot record (e.g. no active run)."""


class InvestigationError(AgentlabError):
    """An investigation cannot be opened or concluded as asked (e.g. no such culprit step)."""


class GovernanceError(AgentlabError):
    """Root of the errors of grants, secrets, policies and approvals."""


class GrantError(GovernanceError):
    """A grant cannot be issued, found or revoked as asked."""


class SecretError(GovernanceError):
    """A credential's secret cannot be resolved, or the signing key cannot be used."""


class ToolDeniedError(GovernanceError):
    """A tool call was refused before it ran; it is recorded as a denied step."""

    def __init__(self, tool: str, denial: Denial) -> None:
        super().__init__(f"{tool} was not run: {denial.reason}")
        self.tool = tool
        self.denial = denial


class ApprovalError(GovernanceError):
    """An approval request cannot be decided as asked (already decided, expired, ...)."""


class ApprovalNotFoundError(ApprovalError, KeyError):
    """No approval request has the given id (or the prefix matches several)."""

    def __init__(self, request_id: str, *, ambiguous: bool = False) -> None:
        super().__init__(request_id)
        self.request_id = request_id
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        if self.ambiguous:
            return (f"approval id prefix {self.request_id!r} matches several requests; "
                    "give more of the id (see `agentlab approvals`)")
        return (f"no approval request with id {self.request_id!r}; "
                "list them with `agentlab approvals`")
