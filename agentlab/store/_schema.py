"""The store's tables (their migrations are in :mod:`agentlab.store._migrations`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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

__all__ = [
    "approvals",
    "approver_changes",
    "blobs",
    "checkpoints",
    "events",
    "grants",
    "investigations",
    "metadata",
    "migrations",
    "runs",
]

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
    Column("denied_count", Integer, nullable=False, default=0, server_default="0"),
    Column("approval_count", Integer, nullable=False, default=0, server_default="0"),
    Column("override_count", Integer, nullable=False, default=0, server_default="0"),
    Column("stale_count", Integer, nullable=False, default=0, server_default="0"),
    Column("unpriced_count", Integer, nullable=False, default=0, server_default="0"),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("head_hash", HASH, nullable=False),
    Column("parent_run_id", ID),
    Column("fork_seq", Integer),
    Column("run_kind", String(16)),
    Column("holder", String(200)),
    Column("held_until_us", BigInteger),
    Column("synthetic_times", Boolean),  # true: an import made its times up (no latency)
    Index("ix_agentlab_runs_workflow_started", "workflow", "started_us"),
    Index("ix_agentlab_runs_task_started", "task_id", "started_us"),
    Index("ix_agentlab_runs_status_started", "status", "started_us"),
    Index("ix_agentlab_runs_started", "started_us"),
    Index("ix_agentlab_runs_parent", "parent_run_id"),
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


grants = Table(
    "agentlab_grants",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("principal", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("workflow", String(200), nullable=False),
    Column("scopes", Text, nullable=False),  # canonical JSON list
    Column("issued_us", BigInteger, nullable=False),
    Column("issued_by", String(200)),
    Column("expires_us", BigInteger),
    Column("revoked_us", BigInteger),
    Column("revoked_by", String(200)),
    Column("revoke_reason", Text),
    Column("secret_ref", Text),
    Column("fingerprint", HASH),
)

approvals = Table(
    "agentlab_approvals",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("run_id", ID, nullable=False),
    Column("call_key", String(300), nullable=False),
    Column("tool", String(200), nullable=False),
    Column("arguments", Text, nullable=False),  # canonical JSON, redacted
    Column("grant_name", String(200)),
    Column("scope", Text),
    Column("rule", String(200)),
    Column("approvers", Text),  # JSON list of names, or NULL: anyone but the agent
    Column("phase", String(16)),
    Column("requested_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("binding", HASH, nullable=False),
    Column("request_mac", HASH, nullable=False),
    Column("status", String(16), nullable=False),
    Column("action", String(16)),
    Column("decided_by", String(200)),
    Column("decided_us", BigInteger),
    Column("channel", String(50)),
    Column("reason", Text),
    Column("edited_arguments", Text),
    Column("decision_mac", HASH),
    Column("signature", String(128)),  # the decider's Ed25519 signature (hex), if keyed
    Column("consumed_us", BigInteger),
    Column("consumed_by", String(200)),
    UniqueConstraint("run_id", "call_key", name="uq_agentlab_approvals_call"),
    Index("ix_agentlab_approvals_status", "status", "requested_us"),
)

# Who may approve: an append-only history (entries are never updated nor deleted); an
# approver's groups, key and standing are read from their entries in ``seq`` order.
approver_changes = Table(
    "agentlab_approver_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("approver", String(200), nullable=False),
    Column("action", String(16), nullable=False),  # add | revoke
    Column("group_name", String(200)),  # NULL: the approver as a whole
    Column("public_key", String(64)),  # hex Ed25519 public key of a newly issued key
    Column("at_us", BigInteger, nullable=False),
    Column("by", String(200)),
    Column("reason", Text),
    Column("mac", HASH, nullable=False),
    Index("ix_agentlab_approver_changes_approver", "approver", "seq"),
)


investigations = Table(
    "agentlab_investigations",
    metadata,
    Column("investigation_id", ID, primary_key=True),
    Column("run_id", ID, nullable=False),
    Column("opened_us", BigInteger, nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("concluded_us", BigInteger),
    Column("concluded_by", String(200)),
    Column("culprit_seq", Integer),
    Column("note", Text),
    Index("ix_agentlab_investigations_run", "run_id", "opened_us"),
)
