"""Where runs are kept: append-only hash-chained events, blobs, checkpoints, summaries.

One implementation on SQLAlchemy Core serves SQLite (a file, WAL) and PostgreSQL (by URL).
"""

from agentlab.store._base import (
    GENESIS,
    Appended,
    ImportResult,
    PendingEvent,
    RunFilter,
    RunStore,
    chain_bytes,
    chain_hash,
)
from agentlab.store._body import BodyError, check_pending
from agentlab.store._columns import (
    BUCKETS,
    COUNTER_COLUMNS,
    GROUP_COLUMNS,
    RUN_COLUMNS,
    Bucket,
    approval_columns,
    checkpoint_columns,
    event_columns,
    rollup_runs,
    run_columns,
)
from agentlab.store._engine import Durability, normalise_url
from agentlab.store._location import announce_new_store
from agentlab.store._sql import DEFAULT_MAX_PAYLOAD_BYTES, SqlStore, open_store

__all__ = [
    "BUCKETS",
    "COUNTER_COLUMNS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "GENESIS",
    "GROUP_COLUMNS",
    "RUN_COLUMNS",
    "Appended",
    "BodyError",
    "Bucket",
    "Durability",
    "ImportResult",
    "PendingEvent",
    "RunFilter",
    "RunStore",
    "SqlStore",
    "announce_new_store",
    "approval_columns",
    "chain_bytes",
    "chain_hash",
    "check_pending",
    "checkpoint_columns",
    "event_columns",
    "normalise_url",
    "open_store",
    "rollup_runs",
    "run_columns",
]
