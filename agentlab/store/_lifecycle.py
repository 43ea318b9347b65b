"""Opening a store's database: its settings read back, its schema brought up to date.

SQLite's pragmas are read back after they are set (a file system without WAL support would
otherwise silently weaken durability). The named migrations (``_migrations.MIGRATIONS``) are
applied in order under a lock; a database with a migration this agentlab does not know was
written by a newer one and is refused, as is one holding agentlab-like tables with no
migration record. A store this user cannot write is read as it is: its schema must already
be current.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Connection, inspect, select, text

from agentlab.errors import ConfigError, SchemaError, StoreReadOnlyError
from agentlab.store._engine import SqlEngine
from agentlab.store._migrations import MIGRATIONS
from agentlab.store._schema import migrations

__all__ = ["check_pragmas", "has_schema", "migrate"]


def check_pragmas(db: SqlEngine, url: str) -> None:
    """Refuse a SQLite database that did not take agentlab's settings."""
    if db.dialect != "sqlite":
        return
    got = db.pragmas()
    want = {"journal_mode": "wal", "synchronous": 2 if db.durability == "full" else 1,
            "secure_delete": 1}
    if db.read_only is not None:
        del want["journal_mode"]  # read as it is: nothing is written through it
    for name, value in want.items():
        if got.get(name) != value:
            raise ConfigError(
                f"SQLite refused PRAGMA {name}={value} (it reports {got.get(name)!r}) for "
                f"{url}; is the file on a network file system? use a local disk"
            )
    if int(got.get("busy_timeout") or 0) < 5000:
        raise ConfigError(f"SQLite busy_timeout is {got.get('busy_timeout')} ms, need >= 5000")


def has_schema(db: SqlEngine) -> bool:
    with db.read() as conn:
        return migrations.name in set(inspect(conn).get_table_names())


def _pending(done: Iterable[str]) -> list[str]:
    """The migrations not applied yet, in order; SchemaError if ``done`` holds one this
    agentlab does not know."""
    known = [name for name, _ in MIGRATIONS]
    done = set(done)
    unknown = sorted(done - set(known))
    if unknown:
        raise SchemaError(
            f"this database has migrations {unknown} that this agentlab does not know: it "
            "was written by a newer agentlab; upgrade agentlab"
        )
    return [name for name in known if name not in done]


def migrate(db: SqlEngine, url: str) -> None:
    """Bring the schema up to this agentlab's (see the module docstring)."""
    with db.read() as conn:
        tables = set(inspect(conn).get_table_names())
        done = set(conn.scalars(select(migrations.c.name))) \
            if migrations.name in tables else set()
    if db.read_only is not None:
        pending = _pending(done)
        if pending:
            raise StoreReadOnlyError(
                f"the store {url} needs its schema brought up to this agentlab's "
                f"({', '.join(pending)}), which writes to it, but {db.read_only}: "
                "open it once with write access, or work on a copy")
        return
    if "agentlab_runs" in tables and migrations.name not in tables:
        raise SchemaError(
            f"{url} holds tables named like agentlab's but no migration record; "
            "point agentlab at an empty database or an agentlab store"
        )

    def apply(conn: Connection) -> None:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7224091)"))
        migrations.metadata.create_all(conn, tables=[migrations])
        steps = dict(MIGRATIONS)
        # read again under the lock: another process may have migrated meanwhile
        for name in _pending(conn.scalars(select(migrations.c.name))):
            steps[name](conn)
            conn.execute(migrations.insert().values(name=name, applied_us=time.time_ns() // 1000))

    db.write(apply, what="schema migration")
