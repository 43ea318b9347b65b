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
    │   └── ImportFormatError    a file to import is malformed or inconsistent
    ├── RecordingError           the recorder was used in a way it cannot record
    ├── InvestigationError       an investigation cannot be opened or concluded as asked
    ├── RecoveryError            a replay, resume, fork or rollback cannot go on
    │   ├── ReplayDivergence     the code did something the record does not hold
    │   ├── ResumeBlockedError   an interrupted side effect needs a reconcile hook or a human
    │   └── ReplayedError        a recorded tool error, raised again where its type is unknown
    └── GovernanceError          grants, secrets, policy and approvals
        ├── GrantError           a grant cannot be issued, found or revoked as asked
        ├── SecretError          a secret cannot be resolved, or the signing key is unusable
        ├── ToolDeniedError      a tool call was refused before it ran (``.denial`` says why)
        └── ApprovalError        an approval request cannot be decided as asked
            └── ApprovalNotFoundError   no request has the id that was given

Each message says what happened, shows the offending value and says what to do next.

One warning: :class:`NewStoreWarning`, when a store is created where none was named (the
default ``agentlab.db``), so runs never go silently into an empty store nobody looks at.
"""

from __future__ import annotations

from typing import Any, Protocol


class _Denial(Protocol):
    """What an error needs of a denial (``agentlab.model.Denial``)."""

    @property
    def code(self) -> str: ...

    @property
    def reason(self) -> str: ...

__all__ = [
    "AgentlabError",
    "AmbiguousIdError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ConfigError",
    "GovernanceError",
    "GrantError",
    "ImportFormatError",
    "IntegrityError",
    "InvestigationError",
    "NewStoreWarning",
    "PayloadTooLargeError",
    "PortabilityError",
    "RecordingError",
    "RecoveryError",
    "ReplayDivergence",
    "ReplayedError",
    "ResumeBlockedError",
    "RunNotFoundError",
    "SchemaError",
    "SecretError",
    "StoreBusyError",
    "StoreError",
    "StoreReadOnlyError",
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


class AmbiguousIdError(StoreError):
    """An id prefix that names more than one run: ``candidates`` lists (up to five of)
    them, and the message says to give more characters."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class StoreReadOnlyError(StoreError):
    """The store can be read but not written by this user (its file or folder is read-only):
    reads work, and anything that writes is refused before it starts."""


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
    """A file given to import is malformed or internally inconsistent. An importer of
    another system's files says where when it can: ``file``, ``run`` (which run of the file)
    and ``at`` (a JSON path such as ``$.trajectory[3].action``); each is None when unknown."""

    def __init__(self, message: str, *, file: str | None = None, run: str | None = None,
                 at: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.run = run
        self.at = at


class RecordingError(AgentlabError):
    """The recorder was used in a way it cannot record (e.g. no active run)."""


class InvestigationError(AgentlabError):
    """An investigation cannot be opened or concluded as asked (e.g. no such culprit step)."""


class RecoveryError(AgentlabError):
    """A replay, resume, fork or rollback cannot go on as asked."""


def _call_text(call: Any) -> str:
    if not call:
        return "nothing"
    args = call.get("arguments")
    shown = "" if args is None else str(args)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    return f"{call.get('kind', 'call')} {call.get('name')}({shown})"


class ReplayDivergence(RecoveryError):
    """The replayed code did something other than what the record holds at ``seq``.

    ``expected`` and ``actual`` describe the two calls (``kind``, ``name``, ``arguments``);
    either is None when a call is missing on that side. ``result`` holds the replay's
    partial result (its run id, the divergences so far) when the replay set it.
    """

    def __init__(self, seq: int | None, expected: dict[str, Any] | None,
                 actual: dict[str, Any] | None, *, why: str = "", hint: str = "") -> None:
        where = f"at seq {seq}" if seq is not None else "after the recorded run's last call"
        text = (f"replay diverged {where}: the record has {_call_text(expected)}, the code "
                f"made {_call_text(actual)}")
        if why:
            text += f" ({why})"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.seq = seq
        self.expected = expected
        self.actual = actual
        self.why = why
        self.result: Any = None


class ResumeBlockedError(RecoveryError):
    """A side-effecting call was interrupted after its intent and before its result, and
    nothing can tell whether it took effect: a human must look before the run goes on."""


class ReplayedError(RecoveryError):
    """A tool error recorded in the run and raised again by a replay whose process cannot
    rebuild its type; ``type`` names the original."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type = type_name
        self.message = message


class GovernanceError(AgentlabError):
    """Root of the errors of grants, secrets, policies and approvals."""


class GrantError(GovernanceError):
    """A grant cannot be issued, found or revoked as asked."""


class SecretError(GovernanceError):
    """A credential's secret cannot be resolved, or the signing key cannot be used."""


class ToolDeniedError(GovernanceError):
    """A tool call was refused before it ran; it is recorded as a denied step."""

    def __init__(self, tool: str, denial: Any) -> None:
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


class NewStoreWarning(UserWarning):
    """A new, empty store was created at the default place because no store was found
    (nothing named one, and no ``agentlab.db`` in the working directory or above)."""
