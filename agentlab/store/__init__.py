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
from agentlab.store._engine import Durability, normalise_url
from agentlab.store._sql import DEFAULT_MAX_PAYLOAD_BYTES, SqlStore, open_store

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "GENESIS",
    "Appended",
    "Durability",
    "ImportResult",
    "PendingEvent",
    "RunFilter",
    "RunStore",
    "SqlStore",
    "chain_bytes",
    "chain_hash",
    "normalise_url",
    "open_store",
]
