"""What every stored event body must satisfy: one check for append, verify and import."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from agentlab.model import EventStats, event_stats

__all__ = ["BodyError", "body_facts", "check_pending", "validate_event_model"]

_HASH = re.compile(r"^[0-9a-f]{64}$")
_ZERO = EventStats()


class BodyError(ValueError):
    """A body that does not fit its kind; the message says how."""


def body_facts(kind: str, body: Any, *, stats: bool = True) -> tuple[list[str], EventStats]:
    """The blob roots a body refers to and the summary increments it carries (zero when
    ``stats`` is false: the caller already has them).

    Raises BodyError when the body is not an object, disagrees with ``kind``, or has
    references or counters of the wrong shape — everything verification relies on.
    """
    if not isinstance(body, dict):
        raise BodyError("body is not a JSON object")
    if body.get("kind") != kind:
        raise BodyError(f"body kind {body.get('kind')!r} disagrees with the event kind {kind!r}")
    roots: list[str] = []
    refs = body.get("$refs")
    if refs is not None:
        if not isinstance(refs, dict) or not all(
            isinstance(v, str) and _HASH.match(v) for v in refs.values()
        ):
            raise BodyError("'$refs' must map field names to blob hashes")
        roots.extend(refs.values())
    if kind == "checkpoint":
        root = body.get("root")
        if not isinstance(root, str) or not _HASH.match(root):
            raise BodyError("checkpoint has no valid 'root' hash")
        roots.append(root)
    if kind == "phase" and body.get("phase") not in ("read", "draft", "act"):
        raise BodyError("phase event has no valid 'phase' (read, draft or act)")
    if not stats:
        return roots, _ZERO
    try:
        return roots, event_stats(kind, body)
    except (TypeError, ValueError) as exc:
        raise BodyError(f"counters of the wrong type ({exc})") from exc


def validate_event_model(envelope: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Check a body against its event model (payload fields in blobs are left out)."""
    from agentlab.store._read import EVENT_ADAPTER

    fields = {k: v for k, v in body.items() if k != "$refs"}
    try:
        EVENT_ADAPTER.validate_python({**fields, **envelope})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BodyError(f"does not fit its kind: {where}: {first.get('msg')}") from exc


def check_pending(events: Sequence[Any]) -> None:
    """Check a run's events (``PendingEvent`` s, in order, before any is written) the way
    the store reads them back: each body fits its kind and its event model. For importers,
    which check a whole file before writing any of it; raises BodyError naming the seq."""
    from datetime import UTC, datetime

    from agentlab.model import loads

    for seq, ev in enumerate(events, start=1):
        try:
            body = loads(ev.body)
            body_facts(ev.kind, body)
            ts = datetime.fromtimestamp(ev.ts_us / 1e6, UTC)
            validate_event_model({"id": ev.event_id or "-", "run_id": ev.run_id, "seq": seq,
                                  "parent_id": ev.parent_id, "ts": ts, "hash": "0" * 64},
                                 body)
        except (ValueError, OverflowError, OSError) as exc:
            raise BodyError(f"event seq {seq} ({ev.kind}): {exc}") from exc
