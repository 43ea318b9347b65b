"""Integrity checks: hash chain, sequence numbers, the summary row and every blob."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, select

from agentlab.model import EventStats, VerifyReport, loads, walk
from agentlab.store._base import GENESIS, chain_hash
from agentlab.store._body import body_facts
from agentlab.store._read import (
    EV_BODY,
    EV_HASH,
    EV_ID,
    EV_KIND,
    EV_PARENT,
    EV_SEQ,
    EV_TS,
    fetch_blobs,
    iter_event_rows,
)
from agentlab.store._schema import runs

__all__ = ["verify_run"]

_SUMMARY_COUNTERS = (
    ("step_count", "steps"), ("llm_calls", "llm_calls"), ("tool_calls", "tool_calls"),
    ("error_count", "errors"), ("retry_count", "retries"),
    ("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
    ("denied_count", "denials"), ("approval_count", "approvals"),
    ("override_count", "overrides"), ("stale_count", "stale"),
    ("unpriced_count", "unpriced"),
)


def _bad(run_id: str, n: int, seq: int | None, reason: str) -> VerifyReport:
    return VerifyReport(run_id=run_id, ok=False, events=n, first_bad_seq=seq, reason=reason)


def verify_run(conn: Connection, run_id: str,
               keep: Callable[[Any, dict[str, Any]], None] | None = None) -> VerifyReport:
    """Recompute a run's chain and check everything it refers to; stop at the first fault.
    ``keep(row, body)`` is given each row checked, with its parsed body (one read of the
    rows serves both the check and whoever wants the events)."""
    head = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
    if head is None:
        return _bad(run_id, 0, None, "no summary row for this run")
    prev = GENESIS
    expected = 0
    counted: list[EventStats] = []
    roots: dict[str, int] = {}
    for row in iter_event_rows(conn, run_id):
        expected += 1
        seq = row[EV_SEQ]
        if seq != expected:
            return _bad(run_id, expected - 1, expected,
                        f"event seq {expected} is missing (next stored is {seq})")
        body_bytes = row[EV_BODY].encode("utf-8")
        h = chain_hash(prev, run_id, seq, row[EV_ID], row[EV_PARENT], row[EV_TS],
                       row[EV_KIND], body_bytes)
        if h != row[EV_HASH]:
            return _bad(run_id, seq, seq, "hash does not match the event's contents or position")
        try:
            body = loads(body_bytes)
            refs, stats = body_facts(row[EV_KIND], body)
        except ValueError as exc:  # BodyError, or JSON that does not parse
            return _bad(run_id, seq, seq, f"body is not a valid event: {exc}")
        if keep is not None:
            keep(row, body)
        for ref in refs:
            roots.setdefault(ref, seq)
        counted.append(stats)
        prev = h
    total = EventStats(*(sum(column) for column in zip(*counted, strict=True))) if counted \
        else EventStats()
    hm = head._mapping
    if expected != hm["last_seq"]:
        return _bad(run_id, expected, expected + 1 if expected < hm["last_seq"] else expected,
                    f"summary says {hm['last_seq']} events, {expected} are stored")
    if prev != hm["head_hash"]:
        return _bad(run_id, expected, expected, "last event's hash differs from the run's head")
    for col, field in _SUMMARY_COUNTERS:
        if hm[col] != getattr(total, field):
            return _bad(run_id, expected, None,
                        f"summary {col}={hm[col]} but the events add up to {getattr(total, field)}")
    if abs(hm["cost_usd"] - total.cost_usd) > 1e-9 * max(1.0, abs(total.cost_usd)):
        return _bad(run_id, expected, None, "summary cost differs from the events' total")
    bad = _check_blobs(conn, roots.keys())
    if bad is not None:
        h, why = bad
        owner = roots.get(h)
        return _bad(run_id, expected, owner, f"blob {h[:12]}… {why}")
    return VerifyReport(run_id=run_id, ok=True, events=expected)


def _check_blobs(conn: Connection, roots: Iterable[str]) -> tuple[str, str] | None:
    """The first (root, problem) among the trees under ``roots``, or None."""
    for visit in walk(roots, lambda hs: fetch_blobs(conn, hs, lenient=True)):
        if visit.data is None:
            return visit.root, "is missing"
        if hashlib.sha256(visit.data).hexdigest() != visit.hash:
            return visit.root, "content does not match its hash"
        if visit.node is None:
            return visit.root, "is not a valid tree node"
    return None
