"""Named migrations of the store's schema. Each runs once, recorded in its own table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import Connection, bindparam, func, inspect, or_, select

from agentlab.model import TreeReader, event_stats, loads
from agentlab.store._read import fetch_blobs
from agentlab.store._schema import (
    approvals,
    approver_changes,
    blobs,
    checkpoints,
    events,
    grants,
    investigations,
    metadata,
    runs,
)

__all__ = ["MIGRATIONS"]


def _initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[runs, events, blobs, checkpoints])


def _governance(conn: Connection) -> None:
    # A store made by 0001 before these counters existed gains them here; a new store
    # already has them (0001 creates the current table).
    have = {c["name"] for c in inspect(conn).get_columns(runs.name)}
    for col in ("denied_count", "approval_count", "override_count"):
        if col not in have:
            conn.exec_driver_sql(
                f"ALTER TABLE {runs.name} ADD COLUMN {col} INTEGER NOT NULL DEFAULT 0"
            )
    metadata.create_all(conn, tables=[grants, approvals])


def _investigations(conn: Connection) -> None:
    metadata.create_all(conn, tables=[investigations])


def _stale_incidents(conn: Connection) -> None:
    have = {c["name"] for c in inspect(conn).get_columns(runs.name)}
    if "stale_count" not in have:
        conn.exec_driver_sql(
            f"ALTER TABLE {runs.name} ADD COLUMN stale_count INTEGER NOT NULL DEFAULT 0")


def _recovery(conn: Connection) -> None:
    # Replays, forks and rollbacks are runs too, told apart by their kind (NULL: an
    # ordinary run), so listings show them and metrics leave them out.
    # A run's lease: the recorder that holds it (host:pid:token) and until when, so that
    # two processes never carry one run on at once (a resume takes a lease from a dead
    # holder only).
    have = {c["name"] for c in inspect(conn).get_columns(runs.name)}
    if "run_kind" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {runs.name} ADD COLUMN run_kind VARCHAR(16)")
    if "holder" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {runs.name} ADD COLUMN holder VARCHAR(200)")
    if "held_until_us" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {runs.name} ADD COLUMN held_until_us BIGINT")
    have_ix = {ix["name"] for ix in inspect(conn).get_indexes(runs.name)}
    if "ix_agentlab_runs_parent" not in have_ix:
        conn.exec_driver_sql(
            f"CREATE INDEX ix_agentlab_runs_parent ON {runs.name} (parent_run_id)")


def _approvers(conn: Connection) -> None:
    # Who may decide a request, as its policy rule named them.
    have = {c["name"] for c in inspect(conn).get_columns(approvals.name)}
    if "approvers" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {approvals.name} ADD COLUMN approvers TEXT")


def _approver_groups(conn: Connection) -> None:
    # Approver groups and keys (their history), and the signature a keyed decider puts on
    # a decision.
    metadata.create_all(conn, tables=[approver_changes])
    have = {c["name"] for c in inspect(conn).get_columns(approvals.name)}
    if "signature" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {approvals.name} ADD COLUMN signature VARCHAR(128)")


def _scale_indexes(conn: Connection) -> None:
    # The newest runs of a task (explain's siblings) and of a status (`runs --status`) are
    # read newest first along an index, so their cost follows the page asked for, not the
    # runs the task or the store has gathered. (task_id, started_us) serves every lookup
    # the task_id index did, which goes. A store made by 0001 after this already has them.
    for name, cols in (("ix_agentlab_runs_task_started", "task_id, started_us"),
                       ("ix_agentlab_runs_status_started", "status, started_us")):
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {runs.name} ({cols})")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_agentlab_runs_task")


def _synthetic_times(conn: Connection) -> None:
    # A run whose importer made its times up says so in its start's metadata; the column
    # lets metrics leave such runs out of latency without reading events. Runs imported
    # before it are marked from their stored starts (their metadata may be in a blob).
    have = {c["name"] for c in inspect(conn).get_columns(runs.name)}
    if "synthetic_times" not in have:
        conn.exec_driver_sql(f"ALTER TABLE {runs.name} ADD COLUMN synthetic_times BOOLEAN")
    reader = TreeReader(lambda hashes: fetch_blobs(conn, list(hashes)))
    marked = []
    starts = select(events.c.run_id, events.c.body).where(
        events.c.kind == "run_started",
        or_(events.c.body.contains("synthetic_times"), events.c.body.contains("$refs")))
    for run_id, text in conn.execute(starts):
        body = loads(text)
        ref = body.get("$refs", {}).get("metadata")
        meta = reader.value(ref) if ref is not None else body.get("metadata")
        if isinstance(meta, dict) and meta.get("synthetic_times") is True:
            marked.append({"rid": run_id})
    if marked:
        conn.execute(runs.update().where(runs.c.run_id == bindparam("rid"))
                     .values(synthetic_times=True), marked)


def _unpriced_calls(conn: Connection) -> None:
    # Model calls recorded without a cost: counted, so a run whose calls carry no price
    # shows an unknown cost rather than $0. Runs stored before are counted from their
    # events by the rule the store applies (``event_stats``): a call whose body names
    # neither "cost_usd" nor "replayed" is unpriced without parsing it; one that names
    # either (perhaps nested, perhaps null) is parsed and asked.
    have = {c["name"] for c in inspect(conn).get_columns(runs.name)}
    if "unpriced_count" not in have:
        conn.exec_driver_sql(
            f"ALTER TABLE {runs.name} ADD COLUMN unpriced_count INTEGER NOT NULL DEFAULT 0")
    calls = events.c.kind == "llm_call"
    named = or_(events.c.body.contains('"cost_usd":', autoescape=True),
                events.c.body.contains('"replayed":', autoescape=True))
    counts: Counter[str] = Counter()
    for run_id, n in conn.execute(select(events.c.run_id, func.count())
                                  .where(calls, ~named).group_by(events.c.run_id)):
        counts[run_id] += n
    for run_id, text in conn.execute(select(events.c.run_id, events.c.body).where(calls, named)):
        counts[run_id] += event_stats("llm_call", loads(text)).unpriced
    if counts:
        conn.execute(runs.update().where(runs.c.run_id == bindparam("rid"))
                     .values(unpriced_count=bindparam("n")),
                     [{"rid": r, "n": n} for r, n in counts.items()])


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _initial),
    ("0002_governance", _governance),
    ("0003_investigations", _investigations),
    ("0004_stale_incidents", _stale_incidents),
    ("0005_recovery", _recovery),
    ("0006_approvers", _approvers),
    ("0007_approver_groups", _approver_groups),
    ("0008_scale_indexes", _scale_indexes),
    ("0009_synthetic_times", _synthetic_times),
    ("0010_unpriced_calls", _unpriced_calls),
]
"""Applied in order; names are permanent once released. Append, never edit."""
