"""Bounded reads for browsing a large store: one page of runs, one page of a run's steps,
one step, the checkpoints around a step, and a run's events counted in time buckets.

Each read costs in proportion to the page it returns, not to the store or the run: run
pages are keyset-paged on the newest-first order (``started_us``, ``run_id``), so the
thousandth page costs what the first does; event pages are keyset-paged on ``seq``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, literal_column, or_, select, tuple_

from agentlab.model import CheckpointInfo, Event, RunSummary, TreeReader, loads
from agentlab.store._base import RunFilter
from agentlab.store._read import (
    EV_BODY,
    event_from_row,
    filter_runs,
    summary_from_row,
    us_to_dt,
)
from agentlab.store._schema import checkpoints, events, runs

__all__ = [
    "Histogram",
    "RunCursor",
    "RunPage",
    "checkpoints_around",
    "count_children",
    "event_histogram",
    "select_event_page",
    "select_run_page",
    "select_runs_facets",
]

RunCursor = tuple[int, str]
"""Where a run page ends: the last run's ``(started_us, run_id)``."""



@dataclass(frozen=True, slots=True)
class RunPage:
    """Run summaries, newest first, and the cursor of the next page (None: no more)."""

    runs: list[RunSummary]
    next: RunCursor | None


@dataclass(frozen=True, slots=True)
class Histogram:
    """A run's events counted per time bucket and kind, and how many of them failed or
    were refused (``problems``)."""

    start_us: int
    bucket_us: int
    buckets: int
    counts: list[tuple[int, str, int, int]]
    """(bucket, kind, events, problems), by bucket then kind."""


def _filtered(q: Any, where: RunFilter, search: str | None, dialect: str) -> Any:
    q = filter_runs(q, where)
    if search:
        # Case-insensitive on both backends (SQLite's LIKE already ignores ASCII case, and
        # is 2-3x faster than comparing lower() of each column); % and _ in the text are
        # matched literally.
        cols = [runs.c[c] for c in ("run_id", "task_id", "workflow", "agent_name")]
        if dialect == "sqlite":
            q = q.where(or_(*(c.contains(search, autoescape=True) for c in cols)))
        else:
            q = q.where(or_(*(c.icontains(search, autoescape=True) for c in cols)))
    return q


def select_run_page(conn: Connection, where: RunFilter, *, search: str | None = None,
                    after: RunCursor | None = None, limit: int = 50) -> RunPage:
    """One page of run summaries matching ``where`` (its ``limit`` is ignored) and, when
    given, containing ``search`` in the run id, task id, workflow or agent name."""
    q = _filtered(select(runs), where, search, conn.dialect.name)
    if after is not None:
        q = q.where(tuple_(runs.c.started_us, runs.c.run_id) < tuple_(*after))
    q = q.order_by(runs.c.started_us.desc(), runs.c.run_id.desc()).limit(limit + 1)
    rows = list(conn.execute(q))
    page = rows[:limit]
    more = len(rows) > limit
    cursor = (int(page[-1].started_us), str(page[-1].run_id)) if more else None
    return RunPage([summary_from_row(r) for r in page], cursor)


def select_runs_facets(conn: Connection, *, recent: int = 10_000,
                       limit: int = 200) -> dict[str, list[str]]:
    """The distinct workflows, agents, agent versions and statuses of the ``recent``
    newest runs (at most ``limit`` of each, sorted): what a run list suggests as filter
    values. Bounded by ``recent``, so it costs the same on any size of store."""
    names = ("workflow", "agent_name", "agent_version", "status")
    newest = (select(*(runs.c[n] for n in names))
              .order_by(runs.c.started_us.desc()).limit(recent).subquery())
    cols = [newest.c[n] for n in names]
    seen: dict[str, set[str]] = {n: set() for n in names}
    for row in conn.execute(select(*cols).group_by(*cols)):
        for name, value in zip(names, row, strict=True):
            if value is not None:
                seen[name].add(str(value))
    return {n: sorted(v)[:limit] for n, v in seen.items()}


def select_event_page(
    conn: Connection, run_id: str, reader: TreeReader, *, parent_id: str | None = None,
    top: bool = False, after_seq: int = 0, limit: int = 50, kinds: Sequence[str] | None = None,
    seqs: Sequence[int] | None = None,
) -> list[Event]:
    """Up to ``limit`` of the run's events after ``after_seq``, in order, payloads
    resolved: all of them, the top-level ones (``top``), the children of ``parent_id``,
    those of ``kinds``, or exactly those numbered ``seqs``."""
    q = select(events).where(events.c.run_id == run_id, events.c.seq > after_seq)
    if top:
        q = q.where(events.c.parent_id.is_(None))
    elif parent_id is not None:
        q = q.where(events.c.parent_id == parent_id)
    if kinds is not None:
        q = q.where(events.c.kind.in_(list(kinds)))
    if seqs is not None:
        q = q.where(events.c.seq.in_(list(seqs)))
    rows = [(r, loads(r[EV_BODY]))
            for r in conn.execute(q.order_by(events.c.seq).limit(limit))]
    reader.prefetch(h for _, body in rows for h in (body.get("$refs") or {}).values())
    return [event_from_row(m, body, reader) for m, body in rows]


def count_children(conn: Connection, run_id: str, parent_ids: Sequence[str]) -> dict[str, int]:
    """How many events each of ``parent_ids`` encloses directly."""
    if not parent_ids:
        return {}
    q = (select(events.c.parent_id, func.count())
         .where(events.c.run_id == run_id, events.c.parent_id.in_(list(parent_ids)))
         .group_by(events.c.parent_id))
    return {str(p): int(n) for p, n in conn.execute(q)}


def checkpoints_around(conn: Connection, run_id: str, seq: int
                       ) -> tuple[CheckpointInfo | None, CheckpointInfo | None]:
    """The run's last checkpoint before ``seq`` and its first at or after it."""
    def info(row: Any) -> CheckpointInfo | None:
        if row is None:
            return None
        body = conn.execute(select(events.c.body)
                            .where(events.c.event_id == row.event_id)).scalar_one()
        parsed = loads(body)
        return CheckpointInfo(run_id=row.run_id, seq=row.seq, event_id=row.event_id,
                              root=row.root, ts=us_to_dt(row.ts_us),
                              writes=parsed.get("writes", []), deletes=parsed.get("deletes", []))

    before = conn.execute(select(checkpoints).where(checkpoints.c.run_id == run_id,
                                                    checkpoints.c.seq < seq)
                          .order_by(checkpoints.c.seq.desc()).limit(1)).first()
    after = conn.execute(select(checkpoints).where(checkpoints.c.run_id == run_id,
                                                   checkpoints.c.seq >= seq)
                         .order_by(checkpoints.c.seq).limit(1)).first()
    return info(before), info(after)


_PROBLEM_SQL = {
    "sqlite": "json_extract(body, '$.status') IN ('error', 'denied')"
              " OR kind = 'error'"
              " OR (kind = 'approval' AND json_extract(body, '$.action') = 'reject')",
    "postgresql": "(body::json->>'status') IN ('error', 'denied')"
                  " OR kind = 'error'"
                  " OR (kind = 'approval' AND (body::json->>'action') = 'reject')",
}


def event_histogram(conn: Connection, dialect: str, run_id: str, *, buckets: int = 200
                    ) -> Histogram:
    """The run's events counted per kind in ``buckets`` equal slices of its time span,
    in one aggregate query (bodies are read by the database, never parsed here)."""
    lo, hi = conn.execute(select(func.min(events.c.ts_us), func.max(events.c.ts_us))
                          .where(events.c.run_id == run_id)).one()
    if lo is None:
        return Histogram(0, 1, buckets, [])
    width = max(1, -(-(int(hi) - int(lo) + 1) // buckets))
    # integer division on both backends: BIGINT / INTEGER
    bucket: Any = literal_column(f"(ts_us - {int(lo)}) / {width}")
    problem: Any = literal_column(f"CASE WHEN {_PROBLEM_SQL[dialect]} THEN 1 ELSE 0 END")
    q = (select(bucket, events.c.kind, func.count(), func.sum(problem))
         .where(and_(events.c.run_id == run_id))
         .group_by(literal_column("1"), events.c.kind).order_by(literal_column("1"),
                                                                events.c.kind))
    counts = [(int(b), str(k), int(n), int(p or 0)) for b, k, n, p in conn.execute(q)]
    return Histogram(int(lo), width, buckets, counts)
