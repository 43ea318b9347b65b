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
    └── RecordingError           the recorder was used in a way it cannot record

Each message says what happened, shows the offending value and says what to do next.
"""

from __future__ import annotations

__all__ = [
    "AgentlabError",
    "ConfigError",
    "ImportFormatError",
    "IntegrityError",
    "PayloadTooLargeError",
    "PortabilityError",
    "RecordingError",
    "RunNotFoundError",
    "SchemaError",
    "StoreBusyError",
    "StoreError",
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
