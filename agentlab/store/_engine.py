"""Engines for SQLite and PostgreSQL, pragmas, write transactions and bounded retry.

SQLite: WAL journal; ``synchronous=FULL`` by default (``durability="normal"`` opts into
NORMAL, see docs/store.md for its loss bound); ``busy_timeout`` of at least 5 s;
``secure_delete`` on. Write transactions start with ``BEGIN IMMEDIATE`` so the write lock
is taken before anything is read: reading a sequence number in a deferred transaction and
upgrading later is how duplicate numbers and unretryable "database is locked" errors arise.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.pool import NullPool

from agentlab.errors import ConfigError, StoreBusyError, StoreReadOnlyError

__all__ = ["Durability", "SqlEngine", "normalise_url"]

Durability = Literal["full", "normal"]
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
WRITE_ATTEMPTS = 8
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RETRYABLE_PG = {"40001", "40P01", "55P03"}


def normalise_url(url: str | os.PathLike[str]) -> str:
    """Accept a SQLAlchemy URL, a ``postgresql://`` URL or a plain file path."""
    s = os.fspath(url)
    if "://" not in s:
        return f"sqlite:///{Path(s).expanduser().resolve()}"
    if s.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + s.split("://", 1)[1]
    if s.startswith(("sqlite://", "postgresql+")):
        return s
    raise ConfigError(
        f"unsupported store URL {s!r}: use a file path, sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


class SqlEngine:
    """An engine plus the transaction discipline every store operation goes through."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        schema: str | None = None,
        read_only: str | None = None,
    ) -> None:
        """``read_only`` (SQLite) says why this user cannot write the file: it is then
        opened for reading only, and every write is refused with that reason."""
        if durability not in ("full", "normal"):
            raise ConfigError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.url = normalise_url(url)
        self.durability: Durability = durability
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._write_conn: Connection | None = None
        self._write_cursor: Any = None  # a driver cursor on _write_conn (SQLite)
        self._quick: list[Any] = []
        self.read_only = read_only
        self._ro_uri: str | None = None
        _engines.add(self)
        if self.dialect == "sqlite":
            if schema is not None:
                raise ConfigError("schema= applies to PostgreSQL stores only")
            db = parsed.database
            if not db or db == ":memory:":
                raise ConfigError(
                    "an in-memory SQLite store cannot be shared by the background writer; "
                    "give a file path (a temporary directory is fine)"
                )
            if read_only is None:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            else:
                self._ro_uri = _read_only_uri(Path(db))
            self.engine = create_engine(
                self.url if self._ro_uri is None else "sqlite:///" + self._ro_uri + "&uri=true",
                connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                pool_size=8,
                max_overflow=16,
            )
            self._install_sqlite_hooks()
        elif self.dialect == "postgresql":
            connect_args: dict[str, Any] = {}
            if schema is not None:
                if not _SCHEMA_NAME.match(schema):
                    raise ConfigError(f"invalid PostgreSQL schema name {schema!r}")
                connect_args["options"] = f"-csearch_path={schema}"
                boot = create_engine(self.url, poolclass=NullPool)
                try:
                    with boot.begin() as conn:
                        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                except DBIntegrityError:
                    pass  # another session created it concurrently: it exists now
                except OperationalError as exc:
                    raise ConfigError(_pg_unreachable(self.url, exc)) from exc
                finally:
                    boot.dispose()
            self.engine = create_engine(
                self.url, connect_args=connect_args, pool_size=4, max_overflow=8,
                pool_pre_ping=True,
            )
        else:
            raise ConfigError(f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL")
        self.schema = schema
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None  # both dialects load their driver module
        self._dbapi: Any = dbapi

    @property
    def dbapi(self) -> Any:
        """The driver module (``sqlite3``, ``psycopg``): its errors reach callers of
        :meth:`write_driver` as they are."""
        return self._dbapi

    # -- SQLite specifics -------------------------------------------------------------

    def _install_sqlite_hooks(self) -> None:
        sync = "FULL" if self.durability == "full" else "NORMAL"

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" hook issue BEGIN, not the sqlite3 module.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if self.read_only is None:  # a read-only file keeps the journal mode it has
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("agentlab_write", False)
            # Straight to the driver: this runs for every transaction.
            raw: Any = conn.connection.driver_connection
            raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def pragmas(self) -> dict[str, Any]:
        """The SQLite pragmas as the database reports them (empty for PostgreSQL)."""
        if self.dialect != "sqlite":
            return {}
        out: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for name in ("journal_mode", "synchronous", "busy_timeout", "secure_delete"):
                out[name] = conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            conn.rollback()
        return out

    # -- transactions -------------------------------------------------------------------

    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads: one snapshot for all its statements (SQLite's read
        transaction; REPEATABLE READ on PostgreSQL, so a summary and the events read after it
        agree even while other workers append), rolled back at the end."""
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                yield conn
            finally:
                conn.rollback()

    def quick_read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows of one small driver-level SELECT, as cheaply as the database allows.

        For the per-call checks of governed tool calls: on SQLite each thread keeps its own
        read-only connection outside the pool (a pooled read costs ~100 µs of SQLAlchemy
        work around a ~5 µs query); it sees every committed write. Inside this thread's
        transaction the transaction's connection is used, so the read agrees with it.
        """
        current: Connection | None = getattr(self._local, "conn", None)
        if self.dialect != "sqlite" or current is not None:
            with self.read() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql, params)]
        held = getattr(self._local, "quick", None)
        if held is None or held[0] != os.getpid():  # none yet, or inherited across a fork
            import sqlite3

            # Used by this thread only; closable by whichever thread closes the store.
            raw = sqlite3.connect(self._ro_uri or self.engine.url.database or ":memory:",
                                  timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                  check_same_thread=False, uri=self._ro_uri is not None)
            raw.execute("PRAGMA query_only = 1")
            held = self._local.quick = (os.getpid(), raw)
            with self._write_lock:
                self._quick.append(raw)  # closed with the store, whichever thread made it
        rows: list[tuple[Any, ...]] = held[1].execute(sql, params).fetchall()
        return rows

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Connection]:
        """A write transaction; nested calls become savepoints of the outer one.

        The outermost block commits on success and rolls back on error; an inner block that
        raises rolls back to its savepoint only, so the caller may catch and go on.
        """
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            with current.begin_nested():
                yield current
            return
        self._refuse_if_read_only()
        if self.dialect == "sqlite":  # one kept connection, its transactions serialised
            with self._write_lock, self._transaction(self._kept_write_conn()) as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            with self._transaction(conn.execution_options(agentlab_write=True)) as conn:
                yield conn

    def _kept_write_conn(self) -> Connection:
        """The process's SQLite write connection (under the write lock): SQLite admits one
        writer at a time anyway, and keeping it spares a pool checkout and reset per
        durable record."""
        conn = self._write_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect().execution_options(agentlab_write=True)
            self._write_conn = conn
            self._write_cursor = None
        return conn

    @contextlib.contextmanager
    def _transaction(self, conn: Connection) -> Iterator[Connection]:
        """Begin on ``conn`` and make it this thread's current transaction until the end."""
        with conn.begin():
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def _refuse_if_read_only(self) -> None:
        if self.read_only is not None:
            raise StoreReadOnlyError(
                f"the store {make_url(self.url).database} can be read but not written: "
                f"{self.read_only}. This writes to it: ask for write access to the file and "
                "its folder, or work on a copy (cp it, then --store COPY)")

    def write(self, fn: Callable[[Connection], T], *, what: str = "write") -> T:
        """Run ``fn`` in a write transaction, retrying a bounded number of times when busy.

        ``fn`` must be safe to run again: its transaction was rolled back before a retry.
        """
        if getattr(self._local, "conn", None) is not None:
            with self.atomic() as conn:
                return fn(conn)
        return self._retrying(lambda: self._in_atomic(fn), what)

    def _in_atomic(self, fn: Callable[[Connection], T]) -> T:
        with self.atomic() as conn:
            return fn(conn)

    def write_driver(self, fn: Callable[[Any], T], *, what: str = "write") -> T:
        """:meth:`write` for work done with driver SQL alone: ``fn`` gets a DB-API cursor
        inside the write transaction (and the same retries).

        On SQLite, when this thread has no transaction open, the transaction is begun and
        committed on the write connection's driver directly (``BEGIN IMMEDIATE`` ...
        ``COMMIT``): SQLAlchemy's begin, commit and their event dispatch cost about 15 µs,
        a tenth of a durable record at ``synchronous=NORMAL``. Elsewhere it runs inside
        :meth:`atomic`, a savepoint of this thread's transaction if one is open.
        """
        if self.dialect != "sqlite" or getattr(self._local, "conn", None) is not None:
            return self.write(lambda conn: _with_cursor(conn, fn), what=what)
        return self._retrying(lambda: self._sqlite_driver_transaction(fn), what)

    def _sqlite_driver_transaction(self, fn: Callable[[Any], T]) -> T:
        if self.read_only is not None:
            self._refuse_if_read_only()
        with self._write_lock:
            cur = self._write_cursor
            conn = self._write_conn
            raw: Any
            if cur is None or conn is None or conn.invalidated:  # none yet, or replaced
                raw = self._kept_write_conn().connection.driver_connection
                cur = self._write_cursor = raw.cursor()
            else:
                raw = cur.connection
            if raw.in_transaction:  # left open by a failure: never build on it
                raw.rollback()
            cur.execute("BEGIN IMMEDIATE")
            try:
                out = fn(cur)
                cur.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
            return out

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        """``attempt()`` again, after a growing pause, while the database is busy."""
        delay = 0.005
        last: Exception | None = None
        driver_error = self._dbapi.Error  # raised by statements run on the raw cursor
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                return attempt()
            except (DBAPIError, driver_error) as exc:
                if not self._retryable(exc):
                    raise
                last = exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise StoreBusyError(
            f"{what} failed: the database stayed locked by other writers through "
            f"{WRITE_ATTEMPTS} attempts (busy_timeout {BUSY_TIMEOUT_MS} ms each): {last}; "
            "fewer concurrent writers, or PostgreSQL, will help"
        ) from last

    def _retryable(self, exc: Exception) -> bool:
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if self.dialect == "sqlite":
            msg = str(orig).lower()
            return isinstance(orig, self._dbapi.OperationalError) and (
                "locked" in msg or "busy" in msg
            )
        return getattr(orig, "sqlstate", None) in _RETRYABLE_PG

    def dispose(self) -> None:
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
                self._write_cursor = None
            for raw in self._quick:  # every thread's quick-read connection, so no file stays open
                with contextlib.suppress(Exception):
                    raw.close()
            self._quick.clear()
        self.engine.dispose()


def _with_cursor(conn: Connection, fn: Callable[[Any], T]) -> T:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return fn(cur)
    finally:
        cur.close()


_engines: weakref.WeakSet[SqlEngine] = weakref.WeakSet()


def _read_only_uri(path: Path) -> str:
    """A SQLite URI that opens ``path`` for reading only. With its ``-shm`` file present
    (a writer has it open, or left it) SQLite reads through it and sees commits as they
    come; without one, and no folder to make it in, the file is read as it stands
    (``immutable``): nobody is writing it then, as a writer would have made that file."""
    from urllib.parse import quote

    shm = path.with_name(path.name + "-shm")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return uri if os.access(shm, os.R_OK) else uri + "&immutable=1"


def _after_fork_in_child() -> None:
    # Connections and locks copied from the parent belong to it: start over in the child.
    for eng in list(_engines):
        eng._write_conn = None
        eng._write_cursor = None
        eng._write_lock = threading.Lock()
        eng._local = threading.local()
        eng.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _pg_unreachable(url: str, exc: Exception) -> str:
    safe = make_url(url).render_as_string(hide_password=True)
    return f"cannot connect to PostgreSQL at {safe}: {exc.__class__.__name__}; is the server running?"
