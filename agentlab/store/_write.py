"""The write path: blob splitting, sequence allocation, hash chain and summary upkeep."""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha256 as _sha256
from typing import Any, NamedTuple

from sqlalchemy import Connection

from agentlab.errors import PayloadTooLargeError, RecordingError
from agentlab.model import (
    PAYLOAD_FIELDS,
    EventStats,
    TreeEncoder,
    canonical_body,
    dumps_ordered,
    loads,
    new_id,
)
from agentlab.store._base import GENESIS, Appended, PendingEvent
from agentlab.store._body import body_facts
from agentlab.store._schema import blobs, checkpoints, events, runs

__all__ = [
    "BODY_INLINE_MAX", "Heads", "Prepared", "append_in", "append_rows", "insert_blobs", "prepare",
]

BODY_INLINE_MAX = 2048
"""Bodies larger than this have their large payload fields moved to blobs."""
FIELD_INLINE_MAX = 512
COMPRESS_MIN = 512
CODEC_RAW = 0
CODEC_ZLIB = 1
_CHUNK = 400


class Prepared(NamedTuple):
    """An event checked and ready to append, with its parsed body and summary increments."""

    ev: PendingEvent
    body: dict[str, Any]
    stats: EventStats
    event_id: str


_NOT_PARSED: dict[str, Any] = {}
_flat = itertools.chain.from_iterable  # rows → one parameter sequence, in C
_NUL_ESCAPED = b"\\u0000"


def prepare_all(
    events: Sequence[PendingEvent | tuple[Any, ...]], max_payload_bytes: int, *,
    trusted: bool = False,
) -> list[Prepared]:
    """:func:`prepare` for a batch.

    Small bodies of kinds the summary reads nothing from (most events: steps, calls) are
    checked and then kept as bytes only: holding a parsed dict per event until the batch
    commits cost more in garbage collection (≈ 3-4 µs an event in a 1,000-event batch)
    than parsing it. With ``trusted`` (the recorder's own events, built by
    ``canonical_body`` with counted stats) such bodies are not parsed at all.
    """
    limit = min(BODY_INLINE_MAX, max_payload_bytes)
    out: list[Prepared] = []
    for ev in events:
        if (type(ev) is PendingEvent and ev.event_id is not None
                and ev.kind not in _PARSED_KINDS and len(ev.body) <= limit
                and _NUL_ESCAPED not in ev.body):
            stats = ev.stats
            if not trusted or stats is None:
                stats = _checked(ev)[1]
            out.append(_new_tuple(Prepared, (ev, _NOT_PARSED, stats, ev.event_id)))
        else:
            out.append(prepare(ev, max_payload_bytes))
    return out


_new_tuple = tuple.__new__


def _checked(ev: PendingEvent) -> tuple[dict[str, Any], EventStats]:
    """The parsed body and summary increments of an event whose body must be canonical JSON
    that fits its kind, or RecordingError."""
    try:
        body = loads(ev.body)
        _, stats = body_facts(ev.kind, body, stats=ev.stats is None)
    except ValueError as exc:
        raise RecordingError(f"event {ev.event_id} of run {ev.run_id}: {exc}") from exc
    if dumps_ordered(body) != ev.body:
        raise RecordingError(
            f"event {ev.event_id} of run {ev.run_id}: body is not canonical JSON (no "
            "whitespace, each key once); build it with agentlab.model.canonical_body"
        )
    return body, stats if ev.stats is None else ev.stats


def prepare(ev: PendingEvent | tuple[Any, ...], max_payload_bytes: int) -> Prepared:
    """Check an event the way verification will, and move large payloads into blobs.

    Refuses (RecordingError) a body that is not canonical JSON or does not fit its kind, so
    the store never holds an event that its own verification or import would reject. (The
    recorder's small trusted events skip this: see :func:`prepare_all`.)
    """
    if not isinstance(ev, PendingEvent):
        ev = PendingEvent._make(ev)
    event_id = ev.event_id
    if event_id is None:
        event_id = new_id()
        ev = ev._replace(event_id=event_id)
    if _NUL_ESCAPED in ev.body:  # the portability rule: NUL becomes U+FFFD, listed
        ev = ev._replace(body=canonical_body(loads(ev.body)))
    body, stats = _checked(ev)
    if (len(ev.body) <= BODY_INLINE_MAX and len(ev.body) <= max_payload_bytes) or "$refs" in body:
        return Prepared(ev, body, stats, event_id)
    enc = TreeEncoder(ordered=True)
    refs: dict[str, str] = {}
    for name in sorted(PAYLOAD_FIELDS.intersection(body)):
        data = dumps_ordered(body[name])
        if len(data) > max_payload_bytes:
            raise PayloadTooLargeError(f"{ev.kind} {name}", len(data), max_payload_bytes)
        if len(data) > FIELD_INLINE_MAX and len(ev.body) > BODY_INLINE_MAX:
            refs[name] = enc.node(body.pop(name), data)
    if not refs:
        if len(ev.body) > max_payload_bytes:
            raise PayloadTooLargeError(f"{ev.kind} event", len(ev.body), max_payload_bytes)
        return Prepared(ev, body, stats, event_id)
    body["$refs"] = refs
    new_body = dumps_ordered(body)
    if len(new_body) > max_payload_bytes:
        raise PayloadTooLargeError(
            f"{ev.kind} event (its fields other than payloads)", len(new_body), max_payload_bytes
        )
    merged = dict(ev.blobs or {})
    merged.update(enc.blobs)
    return Prepared(ev._replace(body=new_body, blobs=merged), body, stats, event_id)


def _encode_blob(data: bytes) -> tuple[int, bytes]:
    if len(data) >= COMPRESS_MIN:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data) * 0.9:
            return CODEC_ZLIB, packed
    return CODEC_RAW, data


def decode_blob(codec: int, data: bytes) -> bytes:
    if codec == CODEC_ZLIB:
        return zlib.decompress(data)
    if codec == CODEC_RAW:
        return bytes(data)
    raise ValueError(f"unknown blob codec {codec}")


def insert_blobs(cur: Any, mark: str, items: Mapping[str, bytes]) -> None:
    """Insert blobs that are not stored yet (content addressing makes this idempotent),
    with driver SQL on ``cur`` inside its write transaction."""
    if not items:
        return
    rows = []
    for h, data in items.items():
        codec, stored = _encode_blob(data)
        rows.append((h, len(data), codec, stored))
    # One multi-row statement per chunk (see _insert_events on why not executemany, and
    # why not SQLAlchemy's per-row parameter processing).
    for i in range(0, len(rows), _CHUNK):
        chunk = rows[i : i + _CHUNK]
        cur.execute(_multi_row(f"INSERT INTO {blobs.name} (hash, size, codec, data)", mark, 4,
                               len(chunk)) + " ON CONFLICT (hash) DO NOTHING",
                    tuple(_flat(chunk)))


@functools.cache
def _multi_row(head: str, mark: str, columns: int, rows: int) -> str:
    """``head VALUES (...), (...)``: ``rows`` rows of ``columns`` parameters."""
    one = "(" + ", ".join([mark] * columns) + ")"
    return f"{head} VALUES " + ", ".join([one] * rows)


def _existing_ids(cur: Any, mark: str, batch: Sequence[Prepared]) -> set[str]:
    """Ids of the batch already stored with identical contents; an id stored with other
    contents (two writers minting the same id) is an error, never silently skipped."""
    wanted = {p.event_id: p.ev for p in batch}
    ids = list(wanted)
    found: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        cur.execute(f"SELECT event_id, run_id, body FROM {events.name} WHERE event_id IN "
                    f"({', '.join([mark] * len(chunk))})", tuple(chunk))
        for event_id, run_id, body in cur.fetchall():
            ev = wanted[event_id]
            if run_id != ev.run_id or body.encode("utf-8") != ev.body:
                raise RecordingError(
                    f"event id {event_id} is already stored with different contents (run "
                    f"{run_id}); ids must be unique: is an id factory reused across processes?"
                )
            found.add(event_id)
    return found


def _run_row(body: Mapping[str, Any], ev: PendingEvent,
             lease: tuple[str, int] | None = None) -> dict[str, Any]:
    return {
        "run_id": ev.run_id,
        "workflow": body["workflow"],
        "agent_name": body["agent_name"],
        "agent_version": body.get("agent_version"),
        "task_id": body.get("task_id"),
        "owner": body.get("owner"),
        "team": body.get("team"),
        "phase": body.get("phase"),
        "status": "running",
        "started_us": ev.ts_us,
        "cost_usd": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "step_count": 0,
        "llm_calls": 0,
        "tool_calls": 0,
        "error_count": 0,
        "retry_count": 0,
        "denied_count": 0,
        "approval_count": 0,
        "override_count": 0,
        "stale_count": 0,
        "unpriced_count": 0,
        "last_seq": 0,
        "head_hash": GENESIS,
        "parent_run_id": body.get("parent_run_id"),
        "fork_seq": body.get("fork_seq"),
        "run_kind": body.get("run_kind"),
        "synthetic_times": True if (body.get("metadata") or {}).get("synthetic_times") is True
        else None,
        "holder": lease[0] if lease is not None else None,
        "held_until_us": lease[1] if lease is not None else None,
    }


class DuplicateEvent(Exception):
    """Internal: the batch may repeat stored events; append again with ``dedupe``."""


_EVENT_COLS = "event_id, run_id, seq, parent_id, kind, ts_us, body, hash"


_ROWS_PER_STATEMENT = 500


def _insert_events(cur: Any, mark: str, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert through the driver as multi-row INSERT statements.

    SQLAlchemy's per-row parameter processing would cost more than the insert itself, and
    ``executemany`` releases and re-takes the GIL for every row: in a process whose agent
    thread is busy, each re-take waits out the interpreter's switch interval, which starves
    a background writer. A few large statements per batch avoid both.
    """
    head = f"INSERT INTO {events.name} ({_EVENT_COLS})"
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[i : i + _ROWS_PER_STATEMENT]
        cur.execute(_multi_row(head, mark, 8, len(chunk)),
                    tuple(_flat(chunk)) if len(chunk) > 1 else chunk[0])


def append_in(
    conn: Connection, batch: Iterable[Prepared], *, dedupe: bool = False, acks: bool = True,
    leases: Mapping[str, tuple[str, int]] | None = None,
) -> list[Appended]:
    """:func:`append_rows` inside the caller's SQLAlchemy write transaction; a stored id
    or (run, seq) raises :class:`DuplicateEvent`."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return append_rows(cur, conn.dialect.name, list(batch), dedupe=dedupe, acks=acks,
                           leases=leases)
    except conn.dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        raise DuplicateEvent(str(exc)) from exc
    finally:
        cur.close()


Heads = dict[str, tuple[int, str]]
"""Run id → (last seq, head hash) as this process last appended them: a hint only."""

_HEADS_KEPT = 4096


def append_rows(
    cur: Any, dialect: str, batch: Sequence[Prepared], *, dedupe: bool = False,
    acks: bool = True, leases: Mapping[str, tuple[str, int]] | None = None,
    heads: Heads | None = None,
) -> list[Appended]:
    """Append prepared events with driver SQL on ``cur``, inside its write transaction.

    The statements go straight to the driver: SQLAlchemy's per-statement machinery costs
    ~60 µs each, a third of a durable record on a fast disk. With ``dedupe`` events whose
    ids are already stored are skipped first (the retry after a primary-key conflict, so
    appends are idempotent without a lookup per batch). ``leases`` gives the holder and
    lease expiry of runs the batch starts. A stored id or (run, seq) raises the driver's
    IntegrityError, or :class:`DuplicateEvent`.

    ``heads`` remembers where each run's chain ended after this process's last append to
    it, which spares reading the run's head first: the summary update then applies only if
    the stored head hash is still the one remembered, and when it is not (another writer
    appended, or that transaction rolled back) the head is read and the chain built again.
    A stale hint therefore costs a statement, never a broken chain.
    """
    if not batch:
        return []
    sql = _STATEMENTS[dialect]
    by_run: dict[str, list[Prepared]]
    if len(batch) == 1 and not dedupe:  # a durable record: one event
        if heads is not None and (done := _append_one(cur, sql, batch[0], heads)) is not None:
            return done if acks else []
        by_run = {batch[0].ev.run_id: list(batch)}
    else:
        by_run = {}
        seen: set[str] = _existing_ids(cur, sql.mark, batch) if dedupe else set()
        for p in batch:
            if p.event_id in seen:
                continue
            seen.add(p.event_id)
            by_run.setdefault(p.ev.run_id, []).append(p)
    if heads is None or dedupe:
        heads = {}
    elif len(heads) > _HEADS_KEPT:
        heads.clear()
    out: list[Appended] = []
    event_rows: list[tuple[Any, ...]] = []
    checkpoint_rows: list[tuple[Any, ...]] = []
    blob_rows: dict[str, bytes] = {}
    for run_id, evs in by_run.items():
        known = heads.get(run_id)
        if known is not None:
            c = _chain(run_id, evs, *known, dedupe)
            cur.execute(sql.counters_if, (*c.counters, run_id, known[1]))
            if cur.rowcount != 1:
                known = None
        if known is None:
            cur.execute(sql.head, (run_id,))
            head = cur.fetchone()
            if head is not None:
                c = _chain(run_id, evs, int(head[0]), str(head[1]), dedupe)
            else:
                first = evs[0].ev
                if first.kind != "run_started":
                    raise RecordingError(
                        f"run {run_id} does not exist and its first event is {first.kind!r}, "
                        "not 'run_started'; start runs with record_run(...)"
                    )
                cur.execute(sql.insert_run, tuple(_run_row(evs[0].body, first,
                                                           leases.get(run_id) if leases else None
                                                           ).values()))
                c = _chain(run_id, evs, 0, GENESIS, dedupe)
            cur.execute(sql.counters, (*c.counters, run_id))
        if c.columns:
            cur.execute(sql.set_columns(tuple(c.columns)), (*c.columns.values(), run_id))
        heads[run_id] = (c.counters[0], c.counters[1])
        event_rows.extend(c.rows)
        checkpoint_rows.extend(c.checkpoints)
        blob_rows.update(c.blobs)
        if acks:
            out.extend(Appended(r[0], run_id, r[2], r[7]) for r in c.rows)
    insert_blobs(cur, sql.mark, blob_rows)
    _insert_events(cur, sql.mark, event_rows)
    if checkpoint_rows:
        cur.execute(_multi_row(f"INSERT INTO {checkpoints.name} (run_id, seq, event_id, root, "
                               "ts_us)", sql.mark, 5, len(checkpoint_rows)),
                    tuple(_flat(checkpoint_rows)))
    return out


def _append_one(cur: Any, sql: _Statements, p: Prepared, heads: Heads) -> list[Appended] | None:
    """One event of a run whose head this process remembers, of a kind that sets no run
    column (a side effect's intent or result): the summary update and the insert, nothing
    else. None when it does not apply or the hint is stale (nothing was written then)."""
    ev, _, stats, event_id = p
    run_id = ev.run_id
    known = heads.get(run_id)
    if known is None or ev.kind in _PARSED_KINDS or ev.blobs:
        return None
    seq = known[0] + 1
    head = _link(known[1], run_id, seq, event_id, ev)
    cur.execute(sql.counters_if, (seq, head, *stats, run_id, known[1]))
    if cur.rowcount != 1:
        del heads[run_id]  # stale: the general path reads the head
        return None
    cur.execute(sql.insert_event, (event_id, run_id, seq, ev.parent_id, ev.kind, ev.ts_us,
                                   ev.body.decode("utf-8"), head))
    heads[run_id] = (seq, head)
    return [Appended(event_id, run_id, seq, head)]


def _link(prev: str, run_id: str, seq: int, event_id: str, ev: PendingEvent) -> str:
    """The chain hash of ``ev`` at ``seq`` after ``prev``: ``chain_hash`` written out, as
    this runs for every event stored."""
    return _sha256(
        f"{prev}|{run_id}|{seq}|{event_id}|{ev.parent_id or ''}|{ev.ts_us}|{ev.kind}|"
        .encode("ascii") + ev.body
    ).hexdigest()


class _Chained(NamedTuple):
    """One run's part of a batch, chained onto its head."""

    rows: list[tuple[Any, ...]]
    """Event rows: event_id, run_id, seq, parent_id, kind, ts_us, body, hash."""
    counters: tuple[Any, ...]
    """The summary update's parameters before the run id: last seq, head hash, counters."""
    columns: dict[str, Any]
    """Run columns the batch sets (its end, a resume, a phase)."""
    checkpoints: list[tuple[Any, ...]]
    blobs: dict[str, bytes]


def _chain(run_id: str, evs: list[Prepared], seq: int, prev: str, dedupe: bool) -> _Chained:
    rows: list[tuple[Any, ...]] = []
    stats: list[EventStats] = []
    ended: dict[str, Any] = {}
    phase: str | None = None
    checkpoint_rows: list[tuple[Any, ...]] = []
    blob_rows: dict[str, bytes] = {}
    for ev, body, ev_stats, event_id in evs:
        seq += 1
        kind = ev.kind
        prev = _link(prev, run_id, seq, event_id, ev)
        if kind in _PARSED_KINDS:
            if kind == "run_started" and seq != 1:
                if not dedupe:
                    raise DuplicateEvent(event_id)
                raise RecordingError(f"run {run_id} already started; a run has one run_started")
            if kind == "run_ended":
                ended = {
                    "status": body["status"],
                    "success": body.get("success"),
                    "score": body.get("score"),
                    "ended_us": ev.ts_us,
                    "holder": None,  # an ended run is held by nobody
                    "held_until_us": None,
                }
            elif kind == "phase":
                phase = body["phase"]
            elif kind == "run_resumed":
                # A resumed run is running again, even one that had ended in an error.
                ended = {"status": "running", "success": None, "score": None, "ended_us": None}
            elif kind == "checkpoint":
                checkpoint_rows.append((run_id, seq, event_id, body["root"], ev.ts_us))
        stats.append(ev_stats)
        if ev.blobs:
            blob_rows.update(ev.blobs)
        rows.append((event_id, run_id, seq, ev.parent_id, kind, ev.ts_us,
                     ev.body.decode("utf-8"), prev))
    t = stats[0] if len(stats) == 1 else EventStats(*map(sum, zip(*stats, strict=True)))
    columns = ended if phase is None else {**ended, "phase": phase}
    return _Chained(rows, (seq, prev, *t), columns, checkpoint_rows, blob_rows)


_PARSED_KINDS = frozenset({"run_started", "run_ended", "checkpoint", "phase", "run_resumed"})


_RUN_COLUMNS = tuple(_run_row({"workflow": "", "agent_name": ""},
                               PendingEvent("", None, None, 0, "run_started", b"")))


class _Statements(NamedTuple):
    """The per-run statements of every append, as driver SQL: building them as SQLAlchemy
    expressions cost more than executing them (≈ 0.5 ms of a 1.3 ms durable record, and
    two thirds of a bulk load of short runs)."""

    mark: str
    head: str
    counters: str
    counters_if: str
    """``counters`` applied only while the run's head hash is the one given last."""
    insert_run: str
    insert_event: str

    def set_columns(self, names: tuple[str, ...]) -> str:
        """``UPDATE`` of the run's ``names`` columns (parameters: their values, run id)."""
        return _set_columns(self.mark, names)


@functools.cache
def _set_columns(mark: str, names: tuple[str, ...]) -> str:
    return (f"UPDATE {runs.name} SET {', '.join(f'{n} = {mark}' for n in names)} "
            f"WHERE run_id = {mark}")


def _statements(mark: str, lock: str) -> _Statements:
    counters = (
        f"UPDATE {runs.name} SET last_seq = {mark}, head_hash = {mark}, "
        + ", ".join(f"{c} = {c} + {mark}" for c in (
            "step_count", "llm_calls", "tool_calls", "error_count", "retry_count",
            "cost_usd", "input_tokens", "output_tokens", "denied_count",
            "approval_count", "override_count", "stale_count", "unpriced_count"))
        + f" WHERE run_id = {mark}"
    )
    return _Statements(
        mark=mark,
        head=f"SELECT last_seq, head_hash FROM {runs.name} WHERE run_id = {mark}{lock}",
        insert_run=(f"INSERT INTO {runs.name} ({', '.join(_RUN_COLUMNS)}) "
                    f"VALUES ({', '.join([mark] * len(_RUN_COLUMNS))})"),
        counters=counters,
        counters_if=f"{counters} AND head_hash = {mark}",
        insert_event=_multi_row(f"INSERT INTO {events.name} ({_EVENT_COLS})", mark, 8, 1),
    )


_STATEMENTS = {
    "sqlite": _statements("?", ""),
    # The row lock serialises appends to one run across sessions (seq allocation).
    "postgresql": _statements("%s", " FOR UPDATE"),
}
