"""The store's contract: what any backend must guarantee, stated once.

Invariants every implementation keeps (the conformance suite in tests/store checks each):

1. Events are append-only. Within a run, ``seq`` starts at 1 and has no gaps; the pair
   ``(run_id, seq)`` is unique even with many writers in many processes.
2. ``append`` is all-or-nothing per call, returns once the events are durable, and is
   idempotent on event ids: appending an event id that is already stored is a no-op.
3. Each event's ``hash`` is SHA-256 over the previous hash and the event's canonical
   bytes (``chain_bytes``); ``verify`` recomputes it and names the first bad ``seq``.
4. Blobs are content-addressed: a blob's key is the SHA-256 of its canonical bytes.
5. The run summary row is updated in the same transaction as the events it summarises.
6. Nothing is ever truncated silently: too-large payloads raise PayloadTooLargeError.
7. Grants are never edited, only revoked; revocation is visible to every process at once.
8. An approval decision is written only over a pending request, and a decided request is
   consumed (executed) at most once, however many processes try at the same moment.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from agentlab.errors import IntegrityError
from agentlab.model import (
    ActionStatus,
    ApprovalRequest,
    ApproverChange,
    CheckpointInfo,
    Event,
    EventLine,
    EventStats,
    Grant,
    Investigation,
    RunSummary,
    TreeReader,
    VerifyReport,
)

__all__ = [
    "GENESIS",
    "Appended",
    "ImportResult",
    "PendingEvent",
    "RunFilter",
    "RunStore",
    "chain_bytes",
    "chain_hash",
]

GENESIS = "0" * 64
"""The 'previous hash' of a run's first event."""


def chain_bytes(
    prev: str, run_id: str, seq: int, event_id: str, parent_id: str | None, ts_us: int,
    kind: str, body: bytes,
) -> bytes:
    """The exact bytes one link of the hash chain covers."""
    head = f"{prev}|{run_id}|{seq}|{event_id}|{parent_id or ''}|{ts_us}|{kind}|"
    return head.encode("ascii") + body


def chain_hash(prev: str, run_id: str, seq: int, event_id: str, parent_id: str | None,
               ts_us: int, kind: str, body: bytes) -> str:
    return hashlib.sha256(
        chain_bytes(prev, run_id, seq, event_id, parent_id, ts_us, kind, body)
    ).hexdigest()


class PendingEvent(NamedTuple):
    """An event on its way into the store: ``seq`` and ``hash`` are assigned on append.

    ``body`` is the canonical JSON of the kind's fields (including ``kind``). ``blobs``
    are nodes the body refers to (checkpoint state trees), or None. ``stats`` may be
    precomputed by the recorder; otherwise the store derives it from the body. A plain
    tuple in this field order is accepted wherever a PendingEvent is.
    """

    run_id: str
    event_id: str | None  # None: the store assigns a new time-ordered id on append
    parent_id: str | None
    ts_us: int
    kind: str
    body: bytes
    blobs: Mapping[str, bytes] | None = None
    stats: EventStats | None = None


class Appended(NamedTuple):
    event_id: str
    run_id: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to list; every field is optional and they combine with AND."""

    workflow: str | None = None
    agent_name: str | None = None
    agent_version: str | None = None
    status: str | None = None
    """``running`` selects runs still carried on by a live recorder; ``paused``, runs their
    recorder left open to be carried on later; ``abandoned``, runs marked running whose
    recorder stopped renewing their lease (see :attr:`~agentlab.model.RunSummary.abandoned`)."""
    phase: str | None = None
    task_id: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    limit: int | None = None
    run_kind: str | None = None
    """``"run"``: ordinary runs only; ``"replay"``, ``"fork"``, ``"rollback"``: runs made
    from another; None: every run."""
    parent_run_id: str | None = None
    """Only the runs made from this one (its replays, forks, rollbacks)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: list[str]
    skipped: list[str]


class RunStore(abc.ABC):
    """Where runs live. See the module docstring for the invariants."""

    url: str
    dialect: str

    @abc.abstractmethod
    def append(
        self, events: Sequence[PendingEvent | tuple[Any, ...]], *, trusted: bool = False,
        acks: bool = True, leases: Mapping[str, tuple[str, int]] | None = None,
    ) -> list[Appended]:
        """Append events (one or many runs) durably, all or nothing. ``leases`` holds the
        holder and lease expiry (µs) of runs the events start.

        ``trusted`` (agentlab's recorder only) promises bodies built by ``canonical_body``
        with precomputed stats, so small ones need not be parsed again.
        """

    @abc.abstractmethod
    def take_run(self, run_id: str, *, holder: str, until_us: int, was: str | None) -> bool:
        """Give the run's lease to ``holder`` until ``until_us`` if it is still held by
        ``was`` (compare-and-set): True when taken. A resume takes a run this way."""

    @abc.abstractmethod
    def renew_runs(self, leases: Sequence[tuple[str, str]], until_us: int) -> None:
        """Extend the leases of ``(run_id, holder)`` pairs that the holder still holds."""

    @abc.abstractmethod
    def run(self, run_id: str, *, exact: bool = False) -> RunSummary:
        """The summary of one run (``run_id`` may be a unique prefix, unless ``exact``:
        code that names a run by its own id must not land on another run's)."""

    @abc.abstractmethod
    def runs(self, where: RunFilter | None = None) -> list[RunSummary]:
        """Run summaries, newest first."""

    @abc.abstractmethod
    def events(self, run_id: str, *, kinds: Iterable[str] | None = None) -> list[Event]:
        """A run's events in order, payloads resolved."""

    @abc.abstractmethod
    def raw_events(self, run_id: str) -> Iterator[EventLine]:
        """A run's events exactly as stored (canonical bodies, blob references)."""

    @abc.abstractmethod
    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        """A run's checkpoints in order."""

    @abc.abstractmethod
    def state_at(self, run_id: str, seq: int | None = None) -> dict[str, Any]:
        """The run state as of the last checkpoint at or before ``seq`` (default: latest)."""

    @abc.abstractmethod
    def value(self, root: str) -> Any:
        """The value stored under a tree root hash."""

    @abc.abstractmethod
    def tree_reader(self) -> TreeReader:
        """A reader of the store's content-addressed value trees."""

    @abc.abstractmethod
    def actions(self, run_id: str) -> list[ActionStatus]:
        """Every side-effecting call of the run, classified from its write-ahead intent."""

    @abc.abstractmethod
    def verify(self, run_id: str | None = None) -> list[VerifyReport]:
        """Check hash chains, sequence numbers, summaries and blobs of one or all runs."""

    def verified_events(self, run_id: str) -> list[Event]:
        """The run's events, once its record checks out (else IntegrityError naming where
        it does not); a store may do both in one read."""
        report = self.verify(run_id)[0]
        if not report.ok:
            raise IntegrityError(f"run {run_id} fails verification at seq "
                                 f"{report.first_bad_seq}: {report.reason}")
        return self.events(report.run_id)

    @abc.abstractmethod
    def export_runs(self, run_ids: Sequence[str], out: IO[bytes]) -> int:
        """Write runs in the portable JSONL form; returns the number of lines."""

    @abc.abstractmethod
    def import_runs(self, src: IO[bytes] | Path) -> ImportResult:
        """Import runs from the portable form; each run all or nothing; idempotent."""

    # -- grants and approvals (rows only: the identity and approval layers hold the logic)

    @abc.abstractmethod
    def add_grant(self, grant: Grant) -> None:
        """Store a new grant; a grant of the same name already stored is a StoreError."""

    @abc.abstractmethod
    def grant(self, name: str) -> Grant | None:
        """The grant of that name as stored now (None if there is none)."""

    @abc.abstractmethod
    def grants(self) -> list[Grant]:
        """Every grant, by name."""

    @abc.abstractmethod
    def revoked_grants(self, names: Sequence[str]) -> set[str]:
        """Which of these grants are revoked now (one cheap query: the per-call check)."""

    @abc.abstractmethod
    def revoke_grant(self, name: str, *, at_us: int, by: str | None,
                     reason: str | None) -> bool:
        """Mark a grant revoked; False if it was already revoked or does not exist."""

    @abc.abstractmethod
    def add_approval(self, row: dict[str, Any]) -> ApprovalRequest:
        """Insert a pending approval request, or return the one stored for the same
        ``(run_id, call_key)``."""

    @abc.abstractmethod
    def approval(self, request_id: str) -> ApprovalRequest:
        """One request, by id or unique id prefix (ApprovalNotFoundError otherwise)."""

    @abc.abstractmethod
    def approvals(self, *, status: str | None = None, run_id: str | None = None,
                  prefix: str | None = None) -> list[ApprovalRequest]:
        """Requests, oldest first, optionally by status, run or id prefix."""

    @abc.abstractmethod
    def decide_approval(self, request_id: str, values: dict[str, Any]) -> bool:
        """Write a decision over a pending request; False if it is no longer pending."""

    @abc.abstractmethod
    def consume_approval(self, request_id: str, *, by: str, at_us: int) -> bool:
        """Mark a decided request executed; True for exactly one caller, ever."""

    @abc.abstractmethod
    def add_approver_change(self, row: dict[str, Any]) -> ApproverChange:
        """Append one entry to the history of who may approve (never updated after)."""

    @abc.abstractmethod
    def approver_changes(self, *, approver: str | None = None,
                         group: str | None = None) -> list[ApproverChange]:
        """That history in order: all of it, or one approver's or one group's entries."""

    # -- investigations (MTTE is measured from these rows) ----------------------------------

    @abc.abstractmethod
    def open_investigation(self, run_id: str, *, by: str, at_us: int) -> Investigation:
        """The run's open investigation, or a new one opened at ``at_us``."""

    @abc.abstractmethod
    def conclude_investigation(self, run_id: str, *, by: str, at_us: int,
                               culprit_seq: int | None, note: str | None) -> Investigation:
        """Conclude the run's open investigation (opened now if there is none)."""

    @abc.abstractmethod
    def investigations(self, run_id: str | None = None) -> list[Investigation]:
        """Investigations, oldest first (of one run, or all)."""

    @abc.abstractmethod
    def atomic(self) -> AbstractContextManager[Any]:
        """A transaction; nested uses are savepoints."""

    @abc.abstractmethod
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside an ``atomic()`` block of this store."""

    @abc.abstractmethod
    def close(self) -> None:
        """Run the close hooks (flushing writers), then release connections."""

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the store is closed, before its connections go (the
        recorder's background writer flushes and stops here)."""
        self.__dict__.setdefault("_close_hooks", []).append(hook)

    def _run_close_hooks(self) -> None:
        hooks: list[Callable[[], None]] = self.__dict__.pop("_close_hooks", [])
        for hook in hooks:
            hook()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
