"""The background writer: read-only steps are committed in batches, off the caller's path.

The caller serialises an event (about a microsecond) and puts it on a queue; a daemon
thread drains the queue into the store in batches. ``write_now`` is the durable path for
side-effecting calls: under the writer's lock it takes everything still queued and commits
it together with the new events in one transaction, so order is kept and the call returns
only once all of it is on disk. ``flush`` waits until everything queued before it is
committed. A process that is killed loses at most the queued, unflushed tail.

A queued item may also be a :class:`Deferred` event, whose content is fixed but whose body
is still to be made (a checkpoint's state tree: see ``agentlab.record._state``); taking it
off the queue makes it, so that work runs here rather than on the caller, in queue order.

Errors: a busy or unreachable database is transient, and the batch is kept and retried. Any
other error belongs to the events, not the store: the batch is split by run, the other
runs' events are committed, and the offending run is marked failed (logged, and raised to
its recorder at the next durable write or flush), so one bad run never blocks the others.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from agentlab.errors import AgentlabError, RecordingError, StoreBusyError
from agentlab.identity import Redactor, default_redactor, scrubbed_logger
from agentlab.model import canonical_body, loads, new_id, now_ns
from agentlab.record._lease import LEASE_S, lease_until
from agentlab.store import Appended, PendingEvent, RunStore

__all__ = ["BackgroundWriter", "Deferred", "writer_for"]

log = scrubbed_logger("agentlab.record")


def _transient(exc: BaseException) -> bool:
    """Worth retrying: the database was busy or unreachable, not the events wrong."""
    if isinstance(exc, StoreBusyError):
        return True
    if isinstance(exc, AgentlabError):
        return False
    return type(exc).__name__ in ("OperationalError", "InterfaceError") or isinstance(
        exc, OSError
    )


class Deferred(Protocol):
    """An event made when the writer takes it off the queue (or earlier, by whoever needs it
    first); ``resolve`` returns the same event whichever thread asks."""

    run_id: str

    def resolve(self) -> PendingEvent: ...


def redact_events(batch: Sequence[PendingEvent], redactor: Redactor) -> list[PendingEvent]:
    """The batch with secrets scrubbed from every body, the scrubbed paths listed in the
    body's ``redacted`` field. A fast byte scan skips bodies with nothing to scrub."""
    out = list(batch)
    for i, ev in enumerate(out):
        if not redactor.might_contain(ev.body):
            continue
        body = loads(ev.body)
        scrubbed, paths = redactor.scrub(body)
        if not paths:
            continue
        if not isinstance(scrubbed, dict):  # the scrubber failed closed on the whole body
            scrubbed = {"kind": ev.kind, "redacted": [""]}
        else:
            scrubbed["kind"] = ev.kind
            scrubbed["redacted"] = sorted(set(body.get("redacted") or ()) | set(paths))
        out[i] = ev._replace(body=canonical_body(scrubbed))
    return out


class BackgroundWriter:
    """Batches events into one store from any number of threads."""

    def __init__(self, store: RunStore, *, batch_size: int = 1000, interval_s: float = 0.2) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max(50 * batch_size, 10_000)
        self.failed: dict[str, BaseException] = {}
        """Runs whose events the store refused, with the reason."""
        self._queue: deque[PendingEvent | Deferred] = deque()
        # Held from taking a batch off the queue until it is committed, so whoever holds
        # it next sees every earlier event either committed or still queued.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._leases: dict[str, str] = {}
        """Runs this process carries on, and their holders: leased as they start, renewed
        while they run."""
        self._renewed = time.monotonic()
        self._stopped = False
        self._forked = False  # set in a forked child: this writer belongs to the parent
        self._thread = threading.Thread(target=self._loop, name="agentlab-writer", daemon=True)
        self._thread.start()

    def _usable(self) -> None:
        if self._stopped:
            raise RecordingError(
                "the store this run records into was closed; nothing more can be recorded"
            )
        if self._forked:
            raise RecordingError(
                "this run was started in another process (before a fork); start a new run "
                "in this process and open the store again here"
            )

    def enqueue(self, ev: PendingEvent | Deferred) -> None:
        """Queue an event for the next batch. Costs a deque append.

        Past ``max_pending`` queued events the caller commits the backlog itself
        (back-pressure), so a recorder in a tight loop cannot grow memory without bound.
        """
        if self._stopped or self._forked:  # attribute reads only: this is the hot path
            self._usable()
        q = self._queue
        q.append(ev)
        if len(q) >= self.batch_size:
            # Event.set() takes a lock and notifies even when already set (~0.5 µs); while
            # a batch commits the queue stays this long, so test first. A set missed this
            # way is safe: the writer clears the event before it drains the queue.
            if not self._wake.is_set():
                self._wake.set()
            if len(q) > self.max_pending:
                self.flush()

    @property
    def pending(self) -> int:
        """Events queued and not yet taken into a batch."""
        return len(self._queue)

    def _take(self, limit: int | None = None) -> list[PendingEvent]:
        """Events off the queue, each made (a deferred one) and with its final id (read-only
        calls are queued without one; giving it here keeps it stable if the batch has to be
        retried)."""
        batch: list[PendingEvent] = []
        q = self._queue
        while q and (limit is None or len(batch) < limit):
            ev = q.popleft()
            if not isinstance(ev, tuple):
                try:
                    ev = ev.resolve()
                except Exception as exc:  # a fault of the run's own data: that run fails
                    self.failed.setdefault(ev.run_id, exc)
                    log.error("agentlab: run %s: an event could not be made and was dropped: "
                              "%s", ev.run_id, exc)
                    continue
            if ev.event_id is None:
                ev = ev._replace(event_id=new_id())
            batch.append(ev)
        return batch

    def hold(self, run_id: str, holder: str) -> None:
        """Lease ``run_id`` to ``holder`` when its start is written, and renew it."""
        self._leases[run_id] = holder

    def let_go(self, run_id: str) -> None:
        self._leases.pop(run_id, None)

    def _starts(self, batch: Sequence[PendingEvent]) -> dict[str, tuple[str, int]] | None:
        leases = self._leases
        if not leases:
            return None
        found = {ev.run_id: (leases[ev.run_id], lease_until(now_ns() // 1000))
                 for ev in batch if ev.kind == "run_started" and ev.run_id in leases}
        return found or None

    def _renew(self) -> None:
        """Push the leases of the runs this process carries on forward (a third of the
        lease's length before they would run out)."""
        if not self._leases or time.monotonic() - self._renewed < LEASE_S / 3:
            return
        self._renewed = time.monotonic()
        try:
            self.store.renew_runs(list(self._leases.items()), lease_until(now_ns() // 1000))
        except Exception as exc:  # the next renewal tries again, well before expiry
            log.warning("agentlab writer: run leases not renewed (%s); retrying", exc)

    def _commit(self, batch: Sequence[PendingEvent], *, acks: bool = True) -> list[Appended]:
        """Append a batch; on an error that is not transient, commit run by run and set
        the refused runs aside (see the module docstring). Secrets are scrubbed first."""
        batch = redact_events(batch, default_redactor())
        starts = self._starts(batch)
        try:
            return self.store.append(batch, trusted=True, acks=acks, leases=starts)
        except Exception as exc:
            if _transient(exc):
                raise
        by_run: dict[str, list[PendingEvent]] = {}
        for ev in batch:
            by_run.setdefault(ev.run_id, []).append(ev)
        out: list[Appended] = []
        for run_id, evs in by_run.items():
            if run_id in self.failed:
                continue
            try:
                out.extend(self.store.append(evs, trusted=True, leases=starts))
            except Exception as exc:
                if _transient(exc):
                    raise
                self.failed[run_id] = exc
                log.error("agentlab: run %s: %d event(s) refused by the store and dropped: %s",
                          run_id, len(evs), exc)
        return out

    def check(self, run_ids: Iterable[str]) -> None:
        """Raise if the store refused events of any of these runs."""
        for run_id in run_ids:
            exc = self.failed.get(run_id)
            if exc is not None:
                raise RecordingError(
                    f"run {run_id}: the store refused some of its events ({exc}); "
                    "the run's record is incomplete"
                ) from exc

    def write_now(self, events: Sequence[PendingEvent] = ()) -> list[Appended]:
        """Commit everything queued plus ``events`` in one durable transaction.

        Returns the store's acknowledgements for ``events``. On a transient failure
        nothing of the batch is stored and the queued events are put back, in order; the
        error is raised. Not allowed inside the caller's own ``store.atomic()`` block: the
        record must not depend on (or wait for) the caller's transaction.
        """
        if self._stopped or self._forked:
            self._usable()
        if self.store.in_transaction():
            raise RecordingError(
                "cannot record a durable event inside store.atomic(): the record would "
                "commit or roll back with your transaction; record outside the block"
            )
        with self._lock:
            batch = self._take() if self._queue else []
            if not batch and not events:
                return []
            try:
                out = self._commit([*batch, *events] if batch else events)
            except BaseException:
                self._queue.extendleft(reversed(batch))
                raise
        if self.failed:
            self.check({ev.run_id for ev in events})
        if not batch:  # (the common durable record: nothing was queued)
            return out
        wanted = {ev.event_id for ev in events}
        return [a for a in out if a.event_id in wanted]

    def flush(self) -> None:
        """Return once every event queued before this call is committed (or raise)."""
        self.write_now(())

    def _loop(self) -> None:
        failures = 0
        while not self._stopped:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._renew()
            while self._queue and not self._stopped:
                with self._lock:
                    batch = self._take(self.batch_size)
                    if not batch:
                        break
                    try:
                        self._commit(batch, acks=False)
                        failures = 0
                    except Exception as exc:  # transient: keep the events and retry
                        failures += 1
                        self._queue.extendleft(reversed(batch))
                        log.warning(
                            "agentlab writer: batch of %d not stored (%s); retrying",
                            len(batch), exc,
                        )
                if failures:
                    time.sleep(min(0.05 * 2**failures, 2.0))
                    break

    def close(self) -> None:
        """Flush, then stop the thread (idempotent)."""
        if self._stopped:
            return
        try:
            if not self._forked:
                self.flush()
        finally:
            self._stopped = True
            self._wake.set()
            if self._thread is not threading.current_thread() and self._thread.is_alive():
                self._thread.join(timeout=5.0)
            _writers.pop(id(self.store), None)


_writers: dict[int, BackgroundWriter] = {}
_writers_lock = threading.Lock()


def writer_for(store: RunStore) -> BackgroundWriter:
    """The process's writer for ``store`` (one per store object)."""
    key = id(store)
    w = _writers.get(key)
    if w is not None and w.store is store and not w._stopped:
        return w
    with _writers_lock:
        w = _writers.get(key)
        if w is None or w.store is not store or w._stopped:
            from agentlab.config import settings

            s = settings()
            w = BackgroundWriter(store, batch_size=s.batch_size, interval_s=s.flush_interval_s)
            _writers[key] = w
            store.on_close(w.close)
        return w


def _after_fork_in_child() -> None:
    # The parent's writer threads do not exist here and their queues hold the parent's
    # events: forget them (using one raises), so a child starts clean.
    global _writers_lock
    for w in _writers.values():
        w._forked = True
    _writers.clear()
    _writers_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _flush_all() -> None:
    for w in list(_writers.values()):
        try:
            w.flush()
        except Exception as exc:  # at exit there is no one left to raise to
            log.error("agentlab: events not stored at exit: %s", exc)
