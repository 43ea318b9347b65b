"""Bulk reads for frames and metrics: rows as columns (``dict[str, list]``) through the driver.

The frame builders in :mod:`agentlab.query` and the metrics in :mod:`agentlab.analysis` read
many rows at once; SQLAlchemy's per-row work would cost more than the query, so these
functions send plain SQL to the driver's cursor inside one read snapshot
(``SqlEngine.read``) and hand back one list per column. Times stay integer microseconds
(``*_us``); the caller turns them into datetimes in bulk.

Every function selects runs with a :class:`RunFilter` (``limit`` aside) and, optionally, a
list of run ids, sent as one parameter: a JSON array read by ``json_each`` on SQLite, an
array on PostgreSQL, so any number of ids costs one statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from agentlab.model import PAUSED_HOLDER, dumps, loads, now_ns
from agentlab.store._base import RunFilter
from agentlab.store._schema import approvals, checkpoints, events, investigations, runs

if TYPE_CHECKING:
    from agentlab.store._sql import SqlStore

__all__ = [
    "APPROVAL_COLUMNS",
    "BUCKETS",
    "COUNTER_COLUMNS",
    "GROUP_COLUMNS",
    "RUN_COLUMNS",
    "Bucket",
    "approval_columns",
    "checkpoint_columns",
    "event_columns",
    "rollup_runs",
    "run_columns",
]

RUN_COLUMNS: tuple[str, ...] = (
    "run_id", "workflow", "agent_name", "agent_version", "task_id", "owner", "team", "phase",
    "status", "success", "score", "started_us", "ended_us", "cost_usd", "input_tokens",
    "output_tokens", "step_count", "llm_calls", "tool_calls", "error_count", "retry_count",
    "denied_count", "approval_count", "override_count", "stale_count", "unpriced_count",
    "last_seq",
    "parent_run_id", "fork_seq", "run_kind", "synthetic_times",
)
"""The summary columns :func:`run_columns` can return (all but the chain head)."""

COUNTER_COLUMNS: tuple[str, ...] = (
    "cost_usd", "input_tokens", "output_tokens", "step_count", "llm_calls", "tool_calls",
    "error_count", "retry_count", "denied_count", "approval_count", "override_count",
    "stale_count", "unpriced_count",
)
"""Summary counters :func:`rollup_runs` can total."""

GROUP_COLUMNS: tuple[str, ...] = (
    "workflow", "agent_name", "agent_version", "task_id", "owner", "team", "phase",
)
"""Summary columns :func:`rollup_runs` can group by."""

APPROVAL_COLUMNS: tuple[str, ...] = (
    "request_id", "run_id", "call_key", "tool", "grant_name", "scope", "rule", "phase",
    "status", "action", "decided_by", "channel", "reason", "requested_us", "decided_us",
    "expires_us", "consumed_us", "consumed_by", "arguments", "edited_arguments",
)
"""What :func:`approval_columns` returns: the request without its MACs and binding."""

Bucket = Literal["hour", "day", "week"]
_HOUR = 3_600_000_000
_DAY = 24 * _HOUR
BUCKETS: dict[str, int] = {"hour": _HOUR, "day": _DAY, "week": 7 * _DAY}
"""Width of each time bucket in microseconds. Buckets start at whole hours and days (UTC);
weeks start on Monday 00:00 UTC."""

# 1970-01-01 was a Thursday: shifting by three days makes week boundaries fall on Mondays.
_WEEK_SHIFT = 3 * _DAY
_EQUAL = ("workflow", "agent_name", "agent_version", "phase", "task_id",
          "parent_run_id")


def _mark(store: SqlStore) -> str:
    return "?" if store.dialect == "sqlite" else "%s"


def _run_where(store: SqlStore, where: RunFilter | None, run_ids: Sequence[str] | None,
               alias: str = "r", ids_alias: str | None = None) -> tuple[list[str], list[Any]]:
    """SQL conditions on the runs table (as ``alias``) and their parameters; the run ids
    are matched on ``ids_alias.run_id`` (default: the runs table itself)."""
    mark = _mark(store)
    conds: list[str] = []
    params: list[Any] = []
    w = where or RunFilter()
    for col in _EQUAL:
        value = getattr(w, col)
        if value is not None:
            conds.append(f"{alias}.{col} = {mark}")
            params.append(value)
    if w.status is not None:  # as people see it: "running" is live, "abandoned" lapsed
        conds.append(f"{status_sql(alias)} = {mark}")
        params.append(w.status)
    if w.run_kind == "run":
        conds.append(f"{alias}.run_kind IS NULL")
    elif w.run_kind is not None:
        conds.append(f"{alias}.run_kind = {mark}")
        params.append(w.run_kind)
    if w.since_us is not None:
        conds.append(f"{alias}.started_us >= {mark}")
        params.append(w.since_us)
    if w.until_us is not None:
        conds.append(f"{alias}.started_us < {mark}")
        params.append(w.until_us)
    if run_ids is not None:
        ids = list(dict.fromkeys(run_ids))
        col = f"{ids_alias or alias}.run_id"
        if store.dialect == "sqlite":
            conds.append(f"{col} IN (SELECT value FROM json_each({mark}))")
            params.append(dumps(ids).decode())
        else:
            conds.append(f"{col} = ANY({mark})")
            params.append(ids)
    return conds, params


def status_sql(alias: str) -> str:
    """A run's status as shown to people, in SQL: ``paused`` for a run its recorder left
    open, ``abandoned`` for one marked running whose lease has lapsed otherwise (as
    :attr:`~agentlab.model.RunSummary.shown_status`)."""
    return (f"CASE WHEN {alias}.status = 'running' AND {alias}.holder = '{PAUSED_HOLDER}' "
            f"THEN 'paused' WHEN {alias}.status = 'running' AND {alias}.held_until_us < "
            f"{now_ns() // 1000:d} THEN 'abandoned' ELSE {alias}.status END")


def _where_sql(conds: Sequence[str]) -> str:
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def _join_runs(where: RunFilter | None, on: str) -> str:
    """The join to the runs table that run conditions other than ids need."""
    w = where or RunFilter()
    needed = any(getattr(w, c) is not None
                 for c in (*_EQUAL, "since_us", "until_us", "run_kind"))
    return f" JOIN {runs.name} r ON r.run_id = {on}.run_id" if needed else ""


def _fetch(store: SqlStore, statements: Sequence[tuple[str, Sequence[Any]]]
           ) -> list[list[tuple[Any, ...]]]:
    """The rows of each statement, all read in one snapshot through the driver's cursor."""
    with store._db.read() as conn:
        if not conn.in_transaction():
            conn.begin()  # on SQLite the engine's hook issues BEGIN: one snapshot for all
        cur: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            out: list[list[tuple[Any, ...]]] = []
            for sql, params in statements:
                cur.execute(sql, tuple(params))
                out.append(cur.fetchall())
            return out
        finally:
            cur.close()


def _columns(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {n: [] for n in names}
    return {n: list(col) for n, col in zip(names, zip(*rows, strict=True), strict=True)}


def run_columns(store: SqlStore, where: RunFilter | None = None, *,
                run_ids: Sequence[str] | None = None,
                columns: Sequence[str] = RUN_COLUMNS) -> dict[str, list[Any]]:
    """Summary rows of the selected runs, oldest first (by start, then id)."""
    unknown = [c for c in columns if c not in RUN_COLUMNS]
    if unknown:
        raise ValueError(f"unknown run columns {unknown}; choose from {list(RUN_COLUMNS)}")
    conds, params = _run_where(store, where, run_ids)
    shown = (status_sql("r") if c == "status" else "r." + c for c in columns)
    sql = (f"SELECT {', '.join(shown)} FROM {runs.name} r"
           f"{_where_sql(conds)} ORDER BY r.started_us, r.run_id")
    [rows] = _fetch(store, [(sql, params)])
    out = _columns(columns, rows)
    if "success" in out and store.dialect == "sqlite":
        out["success"] = [None if v is None else bool(v) for v in out["success"]]
    return out


def event_columns(store: SqlStore, where: RunFilter | None = None, *,
                  run_ids: Sequence[str] | None = None,
                  kinds: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Events of the selected runs, by run id then seq, with each body as stored (JSON
    text; payloads moved to blobs appear as ``$refs``): run_id, seq, event_id, parent_id,
    kind, ts_us, body."""
    conds, params = _run_where(store, where, run_ids, ids_alias="e")
    mark = _mark(store)
    ev_conds: list[str] = []
    ev_params: list[Any] = []
    if kinds is not None:
        ev_conds.append(f"e.kind IN ({', '.join([mark] * len(kinds))})" if kinds else "1 = 0")
        ev_params.extend(kinds)
    names = ("run_id", "seq", "event_id", "parent_id", "kind", "ts_us", "body")
    sql = (f"SELECT {', '.join('e.' + n for n in names)} FROM {events.name} e"
           f"{_join_runs(where, 'e')}{_where_sql(conds + ev_conds)} ORDER BY e.run_id, e.seq")
    [rows] = _fetch(store, [(sql, params + ev_params)])
    return _columns(names, rows)


def checkpoint_columns(store: SqlStore, where: RunFilter | None = None, *,
                       run_ids: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Checkpoints of the selected runs, by run id then seq, with the body of each
    checkpoint event (it names the keys written and deleted): run_id, seq, event_id, root,
    ts_us, body."""
    conds, params = _run_where(store, where, run_ids, ids_alias="c")
    names = ("run_id", "seq", "event_id", "root", "ts_us", "body")
    sql = (f"SELECT c.run_id, c.seq, c.event_id, c.root, c.ts_us, e.body "
           f"FROM {checkpoints.name} c JOIN {events.name} e ON e.event_id = c.event_id"
           f"{_join_runs(where, 'c')}{_where_sql(conds)} ORDER BY c.run_id, c.seq")
    [rows] = _fetch(store, [(sql, params)])
    return _columns(names, rows)


def approval_columns(store: SqlStore, where: RunFilter | None = None, *,
                     run_ids: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Approval requests of the selected runs, oldest first (:data:`APPROVAL_COLUMNS`;
    arguments as canonical JSON text)."""
    conds, params = _run_where(store, where, run_ids, ids_alias="a")
    sql = (f"SELECT {', '.join('a.' + c for c in APPROVAL_COLUMNS)} FROM {approvals.name} a"
           f"{_join_runs(where, 'a')}{_where_sql(conds)} ORDER BY a.requested_us, a.request_id")
    [rows] = _fetch(store, [(sql, params)])
    return _columns(APPROVAL_COLUMNS, rows)


def _bucket_sql(bucket: str | None) -> list[str]:
    if bucket is None:
        return []
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}; use one of {sorted(BUCKETS)}")
    width = BUCKETS[bucket]
    if bucket == "week":
        return [f"((r.started_us + {_WEEK_SHIFT}) / {width}) * {width} - {_WEEK_SHIFT}"]
    return [f"(r.started_us / {width}) * {width}"]


def rollup_runs(store: SqlStore, where: RunFilter | None = None, *,
                by: Sequence[str] = (), bucket: Bucket | None = None,
                sums: Sequence[str] = COUNTER_COLUMNS,
                any_of: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[Any]]:
    """Run summaries grouped by status, start-time ``bucket`` and the columns ``by``, in one
    aggregate query (the events are never read).

    One row per group, columns: ``bucket_us`` (with a bucket: its start), ``status``, the
    ``by`` columns, ``runs``; the total of each counter in ``sums``; for each name in
    ``any_of``, how many runs have any of those counters above zero; ``durations_us``, the
    durations of the group's ended runs (in no particular order); ``investigations`` and
    ``explain_us``, the number of concluded investigations of the group's runs and their
    total time from opening to conclusion.
    """
    any_of = dict(any_of or {})
    bad_by = [c for c in by if c not in GROUP_COLUMNS]
    bad_sums = [c for c in [*sums, *(c for cs in any_of.values() for c in cs)]
                if c not in COUNTER_COLUMNS]
    if bad_by:
        raise ValueError(f"cannot group by {bad_by}; choose from {list(GROUP_COLUMNS)}")
    if bad_sums:
        raise ValueError(f"not summary counters: {bad_sums}; choose from {list(COUNTER_COLUMNS)}")
    clash = set(any_of) & {"status", "bucket_us", "runs", "durations_us", "investigations",
                           "explain_us", *by, *sums}
    if clash:
        raise ValueError(f"any_of names {sorted(clash)} clash with result columns")
    # The bucket (an integer, cheap to compare) and the status come first: then no index
    # on the runs table matches the GROUP BY, so SQLite scans the table once and sorts,
    # instead of walking the (workflow, started_us) index and fetching each row from the
    # table at random (1.5-2x slower on 100,000 runs); filters still use the indexes.
    keys = [*_bucket_sql(bucket), status_sql("r"), *(f"r.{c}" for c in by)]
    key_names = [*(["bucket_us"] if bucket else []), "status", *by]
    n_keys = len(keys)
    group_by = ", ".join(str(i) for i in range(1, n_keys + 1))
    aggs = ["count(*)", *(f"sum(r.{c})" for c in sums)]
    aggs += [f"sum(CASE WHEN {' OR '.join(f'r.{c} > 0' for c in cs)} THEN 1 ELSE 0 END)"
             if cs else "0" for cs in any_of.values()]
    # The durations come as one JSON array per group from SQLite (parsed in C by orjson),
    # as an array from PostgreSQL.
    listing = "json_group_array" if store.dialect == "sqlite" else "array_agg"
    # A run whose times an importer made up has no latency to count.
    aggs.append(f"{listing}(r.ended_us - r.started_us) FILTER (WHERE r.ended_us IS NOT NULL "
                "AND r.synthetic_times IS NULL)")
    conds, params = _run_where(store, where, None)
    runs_sql = (f"SELECT {', '.join(keys + aggs)} FROM {runs.name} r{_where_sql(conds)} "
                f"GROUP BY {group_by}")
    # The join starts from the runs when they are bounded in time (a dashboard's last
    # hour or day: that window's runs, each looking up its investigations by run id), else
    # from the investigations (far fewer than the runs). SQLite follows CROSS JOIN's order
    # as written; PostgreSQL plans either way on its statistics.
    if (where or RunFilter()).since_us is not None:
        source = f"{runs.name} r CROSS JOIN {investigations.name} i"
    else:
        source = f"{investigations.name} i CROSS JOIN {runs.name} r"
    inv_conds = [*conds, "r.run_id = i.run_id", "i.concluded_us IS NOT NULL"]
    inv_sql = (f"SELECT {', '.join(keys)}, count(*), sum(i.concluded_us - i.opened_us) "
               f"FROM {source}{_where_sql(inv_conds)} GROUP BY {group_by}")
    run_rows, inv_rows = _fetch(store, [(runs_sql, params), (inv_sql, params)])

    explained = {tuple(r[:n_keys]): (int(r[n_keys]), int(r[n_keys + 1])) for r in inv_rows}
    names = [*key_names, "runs", *sums, *any_of, "durations_us", "investigations", "explain_us"]
    out: dict[str, list[Any]] = {n: [] for n in names}
    for row in run_rows:
        key = tuple(row[:n_keys])
        values: list[Any] = [*key, int(row[n_keys])]
        at = n_keys + 1
        for c in sums:
            total = row[at]
            values.append(float(total or 0.0) if c == "cost_usd" else int(total or 0))
            at += 1
        values.extend(int(v or 0) for v in row[at : at + len(any_of)])
        raw = row[-1]
        durations: list[int] = (loads(raw) if isinstance(raw, str) else list(raw or ()))
        n_inv, t_inv = explained.get(key, (0, 0))
        values.extend([durations, n_inv, t_inv])
        for n, v in zip(names, values, strict=True):
            out[n].append(v)
    return out
