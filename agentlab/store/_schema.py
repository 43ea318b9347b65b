"""Tables and named migrations. Each migration runs once, recorded in its own table."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["MIGRATIONS", "blobs", "checkpoints", "events", "metadata", "migrations", "runs"]

metadata = MetaData()

ID = String(36)
HASH = String(64)

migrations = Table(
    "agentlab_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_us", BigInteger, nullable=False),
)

runs = Table(
    "agentlab_runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("workflow", String(200), nullable=False),
    Column("agent_name", String(200), nullable=False),
    Column("agent_version", String(100)),
    Column("task_id", String(200)),
    Column("owner", String(200)),
    Column("team", String(200)),
    Column("phase", String(16)),
    Column("status", String(16), nullable=False),
    Column("success", Boolean),
    Column("score", Float),
    Column("started_us", BigInteger, nullable=False),
    Column("ended_us", BigInteger),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("step_count", Integer, nullable=False, default=0),
    Column("llm_calls", Integer, nullable=False, default=0),
    Column("tool_calls", Integer, nullable=False, default=0),
    Column("error_count", Integer, nullable=False, default=0),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("head_hash", HASH, nullable=False),
    Column("parent_run_id", ID),
    Column("fork_seq", Integer),
    Index("ix_agentlab_runs_workflow_started", "workflow", "started_us"),
    Index("ix_agentlab_runs_task", "task_id"),
    Index("ix_agentlab_runs_started", "started_us"),
)

events = Table(
    "agentlab_events",
    metadata,
    Column("event_id", ID, primary_key=True),
    Column("run_id", ID, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("parent_id", ID),
    Column("kind", String(32), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("hash", HASH, nullable=False),
    UniqueConstraint("run_id", "seq", name="uq_agentlab_events_run_seq"),
)

blobs = Table(
    "agentlab_blobs",
    metadata,
    Column("hash", HASH, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("codec", SmallInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

checkpoints = Table(
    "agentlab_checkpoints",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("event_id", ID, nullable=False),
    Column("root", HASH, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
)


def _initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[runs, events, blobs, checkpoints])


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _initial),
]
"""Applied in order; names are permanent once released. Append, never edit."""
