"""The read path: summaries, events with payloads resolved, checkpoints and state."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, String, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from agentlab.errors import AmbiguousIdError, IntegrityError, RunNotFoundError
from agentlab.model import (
    PAUSED_HOLDER,
    Event,
    EventLine,
    RunSummary,
    TreeReader,
    loads,
    now_ns,
)
from agentlab.store._base import RunFilter
from agentlab.store._schema import blobs, checkpoints, events, runs
from agentlab.store._write import decode_blob

__all__ = [
    "EVENT_ADAPTER",
    "EV_BODY",
    "EV_HASH",
    "EV_ID",
    "EV_KIND",
    "EV_PARENT",
    "EV_SEQ",
    "EV_TS",
    "SHORT_ID_MIN",
    "event_from_row",
    "fetch_blobs",
    "iter_event_rows",
    "resolve_run_id",
    "row_to_line",
    "runs_query",
    "select_runs",
    "summary_from_row",
    "unique_prefixes",
    "us_to_dt",
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_CHUNK = 400


def us_to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def fetch_blobs(conn: Connection, hashes: list[str], *, lenient: bool = False) -> dict[str, bytes]:
    """The canonical bytes of each stored blob among ``hashes``.

    A blob that cannot be decoded raises IntegrityError, or with ``lenient`` (verification)
    comes back empty, which then fails its hash check and is reported with its run.
    """
    out: dict[str, bytes] = {}
    for i in range(0, len(hashes), _CHUNK):
        q = select(blobs.c.hash, blobs.c.codec, blobs.c.data).where(
            blobs.c.hash.in_(hashes[i : i + _CHUNK])
        )
        for h, codec, data in conn.execute(q):
            try:
                out[h] = decode_blob(codec, data)
            except (zlib.error, ValueError) as exc:
                if not lenient:
                    raise IntegrityError(
                        f"blob {h} cannot be decoded ({exc}); run `agentlab verify`"
                    ) from exc
                out[h] = b""
    return out


SHORT_ID_MIN = 8
"""Printed ids are at least this long (as git prints commits), longer where needed."""
_HEX = frozenset("0123456789abcdef")


def _shared(a: str, b: str | None) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    return 0 if b is None else len(os.path.commonprefix([a, b]))  # noqa: RUF071 (characters, not paths)


def unique_prefixes(conn: Connection, column: Any, ids: Iterable[str],
                    min_len: int = SHORT_ID_MIN) -> dict[str, str]:
    """For each id, its shortest prefix (at least ``min_len``) that no other value of
    ``column`` starts with: what a listing prints so that every printed id opens its own row.

    Each id costs two index lookups, its neighbours in the column's order (ids sharing a
    prefix sort next to each other). An id that is not lowercase hex (an imported one) may
    sort apart from its prefix-sharers under a database collation, so its prefix is checked
    by counting the rows that start with it.
    """
    out: dict[str, str] = {}
    wanted = list(dict.fromkeys(ids))
    neighbours = _neighbours(conn, column, wanted)
    for i in wanted:
        before, after = neighbours[i]
        n = max(min_len, max(_shared(i, before), _shared(i, after)) + 1)
        if not _HEX.issuperset(i):
            while n < len(i) and (conn.scalar(select(func.count()).where(
                    func.substr(column, 1, n) == i[:n])) or 0) > 1:
                n += 1
        out[i] = i[:n]
    return out


def _neighbours(conn: Connection, column: Any, ids: list[str]
                ) -> dict[str, tuple[str | None, str | None]]:
    """Each id's neighbours in the column's order (the greatest value below it, the least
    above it): two index seeks an id, sent as one statement for a page of ids (a statement
    each would cost more in round trips than the seeks)."""
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    table, name = column.table.name, column.name
    out: dict[str, tuple[str | None, str | None]] = {}
    for k in range(0, len(ids), 100):
        chunk = ids[k: k + 100]
        parts = ", ".join(
            f"(SELECT max({name}) FROM {table} WHERE {name} < {mark}), "
            f"(SELECT min({name}) FROM {table} WHERE {name} > {mark})" for _ in chunk)
        row = conn.exec_driver_sql(f"SELECT {parts}",
                                   tuple(v for i in chunk for v in (i, i))).one()
        for j, i in enumerate(chunk):
            out[i] = (row[2 * j], row[2 * j + 1])
    return out


def resolve_run_id(conn: Connection, run_id: str) -> str:
    """The full id of the run ``run_id`` names exactly or as a unique prefix."""
    if conn.execute(select(runs.c.run_id).where(runs.c.run_id == run_id)).first():
        return run_id
    if len(run_id) < 4:
        raise RunNotFoundError(run_id)
    # substr, not LIKE: SQLite's LIKE ignores case, and ids are case-sensitive.
    prefix = func.substr(runs.c.run_id, 1, len(run_id))
    found = list(conn.scalars(select(runs.c.run_id).where(prefix == run_id).limit(6)))
    if not found:
        raise RunNotFoundError(run_id)
    if len(found) > 1:
        more = " and more" if len(found) > 5 else ""
        raise AmbiguousIdError(f"run id prefix {run_id!r} names more than one run: "
                               f"{', '.join(found[:5])}{more}; give more characters",
                               [str(f) for f in found[:5]])
    return str(found[0])


def summary_from_row(row: Row[Any] | Mapping[str, Any]) -> RunSummary:
    m = row._mapping if isinstance(row, Row) else row
    return RunSummary(
        run_id=m["run_id"],
        workflow=m["workflow"],
        agent_name=m["agent_name"],
        agent_version=m["agent_version"],
        task_id=m["task_id"],
        owner=m["owner"],
        team=m["team"],
        phase=m["phase"],
        status=m["status"],
        success=m["success"],
        score=m["score"],
        started_at=us_to_dt(m["started_us"]),
        ended_at=us_to_dt(m["ended_us"]) if m["ended_us"] is not None else None,
        cost_usd=m["cost_usd"],
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        step_count=m["step_count"],
        llm_calls=m["llm_calls"],
        tool_calls=m["tool_calls"],
        error_count=m["error_count"],
        retry_count=m["retry_count"],
        denied_count=m["denied_count"],
        approval_count=m["approval_count"],
        override_count=m["override_count"],
        stale_count=m["stale_count"],
        unpriced_count=m["unpriced_count"],
        last_seq=m["last_seq"],
        head_hash=m["head_hash"],
        parent_run_id=m["parent_run_id"],
        fork_seq=m["fork_seq"],
        run_kind=m["run_kind"],
        holder=m["holder"],
        held_until=us_to_dt(m["held_until_us"]) if m["held_until_us"] is not None else None,
    )


_EQUAL = ("workflow", "agent_name", "agent_version", "phase", "task_id", "parent_run_id")


class _Unindexed(FunctionElement[str]):
    """A column compared as itself, but on SQLite as ``+column``: an expression, which
    no index serves (SQLite's documented way to keep the planner off an index)."""

    inherit_cache = True
    type = String()


@compiles(_Unindexed)
def _unindexed(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def filter_runs(q: Any, where: RunFilter) -> Any:
    """``q`` (a select over the runs table) narrowed to the runs ``where`` selects."""
    for col in _EQUAL:
        value = getattr(where, col)
        if value is not None:
            q = q.where(runs.c[col] == value)
    # A task's or a parent run's few runs are read along their own index; SQLite, which
    # keeps no statistics, would as soon walk the (status, started_us) index through every
    # run of that status, so there the status is compared without its index (PostgreSQL
    # weighs both on its statistics, and needs the status's to stop early).
    status: Any = (_Unindexed(runs.c.status)
                   if where.task_id is not None or where.parent_run_id is not None
                   else runs.c.status)
    if where.status == "paused":
        q = q.where(status == "running", runs.c.holder == PAUSED_HOLDER)
    elif where.status in ("running", "abandoned"):
        lapsed = runs.c.held_until_us < now_ns() // 1000
        live = or_(runs.c.held_until_us.is_(None), ~lapsed)
        not_paused = or_(runs.c.holder.is_(None), runs.c.holder != PAUSED_HOLDER)
        q = q.where(status == "running",
                    and_(lapsed, not_paused) if where.status == "abandoned" else live)
    elif where.status is not None:
        q = q.where(status == where.status)
    if where.run_kind == "run":
        q = q.where(runs.c.run_kind.is_(None))
    elif where.run_kind is not None:
        q = q.where(runs.c.run_kind == where.run_kind)
    if where.since_us is not None:
        q = q.where(runs.c.started_us >= where.since_us)
    if where.until_us is not None:
        q = q.where(runs.c.started_us < where.until_us)
    return q


def runs_query(where: RunFilter) -> Any:
    """The select of the runs ``where`` picks, newest first."""
    q = filter_runs(select(runs), where).order_by(runs.c.started_us.desc(), runs.c.run_id.desc())
    return q.limit(where.limit) if where.limit is not None else q


def select_runs(conn: Connection, where: RunFilter) -> list[RunSummary]:
    return [summary_from_row(r) for r in conn.execute(runs_query(where))]


# An event row, read by position (``select(events)``: the table's column order). Reading
# by name builds a mapping per row, which costs as much as the rest of the row's decoding.
EV_ID, EV_RUN, EV_SEQ, EV_PARENT, EV_KIND, EV_TS, EV_BODY, EV_HASH = range(8)
assert [c.name for c in events.columns] == ["event_id", "run_id", "seq", "parent_id", "kind",
                                            "ts_us", "body", "hash"]


def iter_event_rows(
    conn: Connection, run_id: str, kinds: Iterable[str] | None = None
) -> Iterator[Row[Any]]:
    """The run's event rows in order; read their columns by position (``EV_*``)."""
    q = select(events).where(events.c.run_id == run_id)
    if kinds is not None:
        q = q.where(events.c.kind.in_(list(kinds)))
    yield from conn.execute(q.order_by(events.c.seq))


def row_to_line(row: Row[Any]) -> EventLine:
    return EventLine(
        id=row[EV_ID], run_id=row[EV_RUN], seq=row[EV_SEQ], parent_id=row[EV_PARENT],
        ts_us=row[EV_TS], body=loads(row[EV_BODY]), hash=row[EV_HASH],
    )


def event_from_row(row: Row[Any], body: dict[str, Any], reader: TreeReader) -> Event:
    """A typed event from a stored row and its parsed body, payloads resolved."""
    refs: dict[str, str] = body.pop("$refs", {})
    for name, h in refs.items():
        body[name] = reader.value(h)
    body.update(id=row[EV_ID], run_id=row[EV_RUN], seq=row[EV_SEQ], parent_id=row[EV_PARENT],
                ts=us_to_dt(row[EV_TS]), hash=row[EV_HASH])
    return EVENT_ADAPTER.validate_python(body)


def checkpoint_rows(conn: Connection, run_id: str) -> list[Row[Any]]:
    q = select(checkpoints).where(checkpoints.c.run_id == run_id).order_by(checkpoints.c.seq)
    return list(conn.execute(q))
