"""The SQL store: one implementation for SQLite and PostgreSQL, on SQLAlchemy Core."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, Literal, cast

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError

from agentlab.errors import (
    ImportFormatError,
    IntegrityError,
    RecordingError,
    RunNotFoundError,
    StoreError,
)
from agentlab.model import (
    ActionStatus,
    CheckpointInfo,
    Event,
    EventLine,
    RunSummary,
    TreeReader,
    VerifyReport,
    loads,
)
from agentlab.store._base import Appended, ImportResult, PendingEvent, RunFilter, RunStore
from agentlab.store._engine import Durability, SqlEngine
from agentlab.store._governance_tables import GovernanceTables
from agentlab.store._lifecycle import check_pragmas, has_schema, migrate
from agentlab.store._location import (
    announce_new_store,
    check_sqlite_path,
    read_only_reason,
    require_existing_sqlite,
)
from agentlab.store._pages import (
    Histogram,
    RunCursor,
    RunPage,
    checkpoints_around,
    count_children,
    event_histogram,
    select_event_page,
    select_run_page,
    select_runs_facets,
)
from agentlab.store._portable_io import existing_head, export_lines, read_sections
from agentlab.store._read import (
    EV_BODY,
    checkpoint_rows,
    event_from_row,
    fetch_blobs,
    iter_event_rows,
    resolve_run_id,
    row_to_line,
    select_runs,
    summary_from_row,
    unique_prefixes,
    us_to_dt,
)
from agentlab.store._schema import approvals, migrations, runs
from agentlab.store._verify import verify_run
from agentlab.store._write import (
    DuplicateEvent,
    Heads,
    append_in,
    append_rows,
    prepare,
    prepare_all,
)

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "SqlStore", "open_store"]

DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class SqlStore(GovernanceTables, RunStore):
    """Runs in a SQL database. Use :func:`open_store` to make one."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        schema: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        create: bool = True,
    ) -> None:
        check_sqlite_path(url)
        if not create:
            require_existing_sqlite(url)
        self._db = SqlEngine(url, durability=durability, schema=schema,
                             read_only=read_only_reason(url))
        self.url = self._db.url
        self.dialect = self._db.dialect
        self._heads: Heads = {}  # where this process's appends left each run (a hint)
        self.max_payload_bytes = max_payload_bytes
        try:
            check_pragmas(self._db, self.url)
            if not create and not has_schema(self._db):
                raise StoreError(
                    f"{self._safe_url()} holds no agentlab store; record a run into it "
                    "first (or run `agentlab demo`), or check --store / AGENTLAB_STORE"
                )
            migrate(self._db, self.url)
        except OperationalError as exc:
            self._db.dispose()
            raise StoreError(
                f"cannot open the store at {self._safe_url()}: "
                f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
            ) from exc
        except BaseException:
            self._db.dispose()
            raise

    def _safe_url(self) -> str:
        return self._db.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"<SqlStore {self._db.engine.url.render_as_string(hide_password=True)}>"

    # -- schema -------------------------------------------------------------------------

    def applied_migrations(self) -> list[str]:
        with self._db.read() as conn:
            return list(conn.scalars(select(migrations.c.name).order_by(migrations.c.name)))

    def pragmas(self) -> dict[str, Any]:
        """SQLite pragmas as read back from the database (empty on PostgreSQL)."""
        return self._db.pragmas()

    # -- writes -------------------------------------------------------------------------

    def append(
        self, events: Sequence[PendingEvent | tuple[Any, ...]], *, trusted: bool = False,
        acks: bool = True, leases: Mapping[str, tuple[str, int]] | None = None,
    ) -> list[Appended]:
        """See RunStore.append. ``trusted`` is for agentlab's own recorder, whose bodies are
        canonical by construction: it skips re-parsing small bodies. ``acks=False`` returns
        nothing (the background writer does not need the acknowledgements)."""
        ready = prepare_all(events, self.max_payload_bytes, trusted=trusted)
        dialect, heads = self.dialect, self._heads
        try:
            return self._db.write_driver(
                lambda cur: append_rows(cur, dialect, ready, acks=acks, leases=leases,
                                        heads=heads),
                what="append")
        except (DBIntegrityError, DuplicateEvent, self._db.dbapi.IntegrityError):
            # An event id is already stored (a batch retried after an uncertain commit):
            # append again, skipping what is there.
            return self._db.write_driver(
                lambda cur: append_rows(cur, dialect, ready, dedupe=True, acks=acks,
                                        leases=leases),
                what="append")

    def atomic(self) -> AbstractContextManager[Connection]:
        return self._db.atomic()

    def in_transaction(self) -> bool:
        return self._db.in_transaction()

    # -- reads --------------------------------------------------------------------------

    def resolve(self, run_id: str) -> str:
        """The full id for ``run_id`` given exactly or as a unique prefix."""
        with self._db.read() as conn:
            return resolve_run_id(conn, run_id)

    def take_run(self, run_id: str, *, holder: str, until_us: int, was: str | None) -> bool:
        def write(conn: Connection) -> bool:
            owned = runs.c.holder.is_(None) if was is None else runs.c.holder == was
            done = conn.execute(update(runs).where(runs.c.run_id == run_id, owned)
                                .values(holder=holder, held_until_us=until_us))
            return bool(done.rowcount == 1)
        return self._db.write(write, what="take run")

    def renew_runs(self, leases: Sequence[tuple[str, str]], until_us: int) -> None:
        if not leases:
            return

        def write(conn: Connection) -> None:
            for run_id, holder in leases:
                conn.execute(update(runs).where(runs.c.run_id == run_id,
                                                runs.c.holder == holder)
                             .values(held_until_us=until_us))
        self._db.write(write, what="renew leases")

    def run(self, run_id: str, *, exact: bool = False) -> RunSummary:
        with self._db.read() as conn:
            rid = run_id if exact else resolve_run_id(conn, run_id)
            row = conn.execute(select(runs).where(runs.c.run_id == rid)).first()
            if row is None:
                raise RunNotFoundError(run_id)
            return summary_from_row(row)

    def short_ids(self, ids: Iterable[str], *, of: Literal["runs", "approvals"] = "runs"
                  ) -> dict[str, str]:
        """Each run id (or approval request id) with its shortest prefix, at least 8
        characters, that names it alone in this store: what listings print, so that every
        printed id can be typed back (a prefix is accepted wherever an id is)."""
        column = runs.c.run_id if of == "runs" else approvals.c.request_id
        with self._db.read() as conn:
            return unique_prefixes(conn, column, ids)

    def runs(self, where: RunFilter | None = None) -> list[RunSummary]:
        with self._db.read() as conn:
            return select_runs(conn, where or RunFilter())

    def tree_reader(self) -> TreeReader:
        """A reader of this store's value trees (it caches the nodes it has read)."""
        def fetch(hashes: list[str]) -> dict[str, bytes]:
            with self._db.read() as conn:
                return fetch_blobs(conn, hashes)

        return TreeReader(fetch)

    def events(self, run_id: str, *, kinds: Iterable[str] | None = None) -> list[Event]:
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            rows = [(r, loads(r[EV_BODY]))
                    for r in iter_event_rows(conn, rid, kinds)]
        reader = self.tree_reader()
        reader.prefetch(h for _, body in rows for h in (body.get("$refs") or {}).values())
        # Straight from the row to the typed event: one validation per event (the
        # portable line model is for exports).
        return [event_from_row(m, body, reader) for m, body in rows]

    # -- bounded reads for browsing (agentlab.store._pages) -----------------------------

    def run_page(self, where: RunFilter | None = None, *, search: str | None = None,
                 after: RunCursor | None = None, limit: int = 50) -> RunPage:
        """One page of run summaries, newest first (keyset-paged: pass the page's ``next``
        as ``after``); ``search`` matches run id, task id, workflow or agent name."""
        with self._db.read() as conn:
            return select_run_page(conn, where or RunFilter(), search=search, after=after,
                                   limit=limit)

    def run_facets(self, *, recent: int = 10_000, limit: int = 200) -> dict[str, list[str]]:
        """Distinct workflows, agent names, agent versions and statuses of the ``recent``
        newest runs (at most ``limit`` each), keyed by column name."""
        with self._db.read() as conn:
            return select_runs_facets(conn, recent=recent, limit=limit)

    def event_page(self, run_id: str, *, parent_id: str | None = None, top: bool = False,
                   after_seq: int = 0, limit: int = 50, kinds: Iterable[str] | None = None,
                   seqs: Iterable[int] | None = None) -> list[Event]:
        """Up to ``limit`` events of the run after ``after_seq``, in order, payloads
        resolved: the top-level ones (``top``), the children of ``parent_id``, those of
        ``kinds`` or numbered ``seqs``, or all."""
        reader = self.tree_reader()
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            return select_event_page(
                conn, rid, reader, parent_id=parent_id, top=top, after_seq=after_seq,
                limit=limit, kinds=list(kinds) if kinds is not None else None,
                seqs=list(seqs) if seqs is not None else None)

    def child_counts(self, run_id: str, parent_ids: Sequence[str]) -> dict[str, int]:
        """How many events each of ``parent_ids`` directly encloses (absent: none)."""
        with self._db.read() as conn:
            return count_children(conn, resolve_run_id(conn, run_id), parent_ids)

    def checkpoints_around(self, run_id: str, seq: int
                           ) -> tuple[CheckpointInfo | None, CheckpointInfo | None]:
        """The run's last checkpoint before ``seq`` and its first at or after ``seq``."""
        with self._db.read() as conn:
            return checkpoints_around(conn, resolve_run_id(conn, run_id), seq)

    def event_histogram(self, run_id: str, *, buckets: int = 200) -> Histogram:
        """The run's events counted per kind in ``buckets`` slices of its time span."""
        with self._db.read() as conn:
            return event_histogram(conn, self.dialect, resolve_run_id(conn, run_id),
                                   buckets=buckets)

    def raw_events(self, run_id: str) -> Iterator[EventLine]:
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            lines = [row_to_line(r) for r in iter_event_rows(conn, rid)]
        yield from lines

    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            rows = checkpoint_rows(conn, rid)
            bodies = {
                r.event_id: loads(r.body)
                for r in iter_event_rows(conn, rid, kinds=["checkpoint"])
            }
        return [
            CheckpointInfo(
                run_id=r.run_id, seq=r.seq, event_id=r.event_id, root=r.root, ts=us_to_dt(r.ts_us),
                writes=bodies[r.event_id].get("writes", []),
                deletes=bodies[r.event_id].get("deletes", []),
            )
            for r in rows
        ]

    def state_at(self, run_id: str, seq: int | None = None) -> dict[str, Any]:
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            rows = checkpoint_rows(conn, rid)
        chosen = [r for r in rows if seq is None or r.seq <= seq]
        if not chosen:
            return {}
        value = self.value(chosen[-1].root)
        return dict(value)

    def value(self, root: str) -> Any:
        return self.tree_reader().value(root)

    def actions(self, run_id: str) -> list[ActionStatus]:
        evs = self.events(run_id, kinds=["tool_intent", "tool_call"])
        results = {
            e.intent_id: e for e in evs if e.kind == "tool_call" and e.intent_id is not None
        }
        out: list[ActionStatus] = []
        for e in evs:
            if e.kind != "tool_intent":
                continue
            res = results.get(e.id)
            state = (
                "started-not-finished" if res is None
                else ("finished" if res.status == "ok" else "failed")
            )
            out.append(
                ActionStatus(
                    run_id=e.run_id, tool=e.tool, call_id=e.call_id,
                    idempotency_key=e.idempotency_key, intent_seq=e.seq, state=state,
                    result_seq=res.seq if res is not None else None, arguments=e.arguments,
                )
            )
        return out

    def verified_events(self, run_id: str) -> list[Event]:
        rows: list[tuple[Any, dict[str, Any]]] = []
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id)
            report = verify_run(conn, rid, keep=lambda m, body: rows.append((m, body)))
        if not report.ok:
            raise IntegrityError(f"run {rid} fails verification at seq "
                                 f"{report.first_bad_seq}: {report.reason}")
        reader = self.tree_reader()
        reader.prefetch(h for _, body in rows for h in (body.get("$refs") or {}).values())
        return [event_from_row(m, body, reader) for m, body in rows]

    def verify(self, run_id: str | None = None) -> list[VerifyReport]:
        with self._db.read() as conn:
            if run_id is not None:
                ids = [resolve_run_id(conn, run_id)]
            else:
                ids = list(conn.scalars(select(runs.c.run_id).order_by(runs.c.started_us)))
            return [verify_run(conn, rid) for rid in ids]

    # -- portable form ------------------------------------------------------------------

    def export_runs(self, run_ids: Sequence[str], out: IO[bytes]) -> int:
        n = 0
        with self._db.read() as conn:
            for run_id in run_ids:
                for line in export_lines(conn, resolve_run_id(conn, run_id)):
                    out.write(line + b"\n")
                    n += 1
        return n

    def import_runs(self, src: IO[bytes] | Path) -> ImportResult:
        if isinstance(src, Path):
            try:
                with src.open("rb") as fh:
                    if fh.read(2) == b"\x1f\x8b":  # gzip magic: read it as it was exported
                        fh.seek(0)
                        with gzip.open(fh, "rb") as unzipped:
                            return self.import_runs(cast(IO[bytes], unzipped))
                    fh.seek(0)
                    return self.import_runs(fh)
            except ImportFormatError as exc:  # say which file, as every importer does
                if exc.file is not None:
                    raise
                raise ImportFormatError(f"{src}: {exc}", file=str(src), run=exc.run,
                                        at=exc.at) from exc
        imported: list[str] = []
        skipped: list[str] = []
        for section in read_sections(src):
            with self._db.read() as conn:
                head = existing_head(conn, section.run_id)
                if head is not None:
                    if section.end is not None and head == section.end.head:
                        skipped.append(section.run_id)
                        continue
                    raise ImportFormatError(
                        f"run {section.run_id} already exists here with different contents; "
                        "delete it first or import into another store"
                    )
                pending = section.check(conn)

            def write(conn: Connection, pending: list[PendingEvent] = pending,
                      section: Any = section) -> None:
                done = append_in(conn, [prepare(ev, self.max_payload_bytes) for ev in pending])
                if [a.hash for a in done] != [e.hash for e in section.events]:
                    raise ImportFormatError(
                        f"run {section.run_id}: re-chaining gave different hashes; not imported"
                    )

            try:
                self._db.write(write, what=f"import of run {section.run_id}")
            except (DBIntegrityError, DuplicateEvent, RecordingError) as exc:
                raise ImportFormatError(
                    f"run {section.run_id} conflicts with data already stored (an event id "
                    f"used by another run?); nothing of it was imported: {exc}"
                ) from exc
            imported.append(section.run_id)
        return ImportResult(imported=imported, skipped=skipped)

    def close(self) -> None:
        try:
            self._run_close_hooks()
        finally:
            self._db.dispose()


def open_store(
    url: str | os.PathLike[str] | None = None,
    *,
    durability: Durability | None = None,
    schema: str | None = None,
    max_payload_bytes: int | None = None,
    create: bool = True,
) -> SqlStore:
    """Open (creating or migrating as needed) the store at ``url``.

    ``url`` is a file path or ``sqlite:///PATH`` for the embedded default, or
    ``postgresql://USER@HOST:PORT/DB`` for a shared store. Without it, ``AGENTLAB_STORE`` is
    used, else ``[tool.agentlab] store``, else ``./agentlab.db``. With ``create=False`` a
    missing store is a StoreError instead of a new empty one (what read-only tools want).

    >>> store = open_store("runs.db")                      # doctest: +SKIP
    """
    from agentlab.config import settings

    s = settings()
    if url is None and create:
        announce_new_store(s.store, s.store_from)
    return SqlStore(
        url if url is not None else s.store,
        durability=durability or s.durability,
        schema=schema,
        max_payload_bytes=max_payload_bytes or s.max_payload_bytes,
        create=create,
    )
