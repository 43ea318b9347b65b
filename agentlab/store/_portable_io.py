"""Export to and import from the portable JSONL form (see agentlab.model._portable)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import Connection, select

from agentlab.errors import ImportFormatError
from agentlab.model import (
    FORMAT_VERSION,
    LINE_ADAPTER,
    BlobLine,
    EndLine,
    EventLine,
    HeaderLine,
    check_portable,
    dumps,
    dumps_ordered,
    loads,
    walk,
)
from agentlab.store._base import GENESIS, PendingEvent, chain_hash
from agentlab.store._body import BodyError, body_facts, validate_event_model
from agentlab.store._read import fetch_blobs, iter_event_rows, row_to_line, us_to_dt
from agentlab.store._schema import runs

__all__ = ["RunSection", "export_lines", "read_sections"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentlab")
    except PackageNotFoundError:
        return "0+unknown"


def export_lines(conn: Connection, run_id: str) -> Iterator[bytes]:
    """The lines of one run's section, each canonical JSON without the newline."""
    header = HeaderLine(
        run_id=run_id,
        exported_at=datetime.now(UTC).isoformat(),
        agentlab_version=_version(),
    )
    yield dumps(header.model_dump())
    lines = [row_to_line(r) for r in iter_event_rows(conn, run_id)]
    roots: list[str] = []
    for line in lines:
        roots.extend((line.body.get("$refs") or {}).values())
        if line.body.get("kind") == "checkpoint":
            roots.append(line.body["root"])
    for visit in walk(roots, lambda hs: fetch_blobs(conn, hs)):
        if visit.data is None or visit.node is None:
            raise ImportFormatError(
                f"run {run_id} refers to blob {visit.hash}, which is missing or damaged; "
                "run `agentlab verify`"
            )
        yield b'{"data":' + visit.data + b',"hash":"' + visit.hash.encode() + b'","type":"blob"}'
    for line in lines:
        # The line's fields sorted, the body as stored: its hash covers its own key order.
        yield dumps_ordered(dict(sorted(line.model_dump().items())))
    head = lines[-1].hash if lines else GENESIS
    yield dumps(EndLine(run_id=run_id, events=len(lines), head=head).model_dump())


class RunSection:
    """One run read from a portable file, checked and ready to insert."""

    def __init__(self, header: HeaderLine) -> None:
        self.header = header
        self.blobs: dict[str, bytes] = {}
        self.events: list[EventLine] = []
        self.end: EndLine | None = None

    @property
    def run_id(self) -> str:
        return self.header.run_id

    def check(self, conn: Connection) -> list[PendingEvent]:
        """Validate the section end to end and return it as pending events."""
        rid = self.run_id
        if self.end is None:
            raise ImportFormatError(f"run {rid}: the file ends before its 'end' line (truncated?)")
        if self.end.events != len(self.events):
            raise ImportFormatError(
                f"run {rid}: 'end' line announces {self.end.events} events, "
                f"the section has {len(self.events)}"
            )
        prev = GENESIS
        pending: list[PendingEvent] = []
        needed: set[str] = set()
        for i, ev in enumerate(self.events, start=1):
            where = f"run {rid} event seq {ev.seq}"
            if ev.run_id != rid:
                raise ImportFormatError(f"{where} belongs to run {ev.run_id}")
            if ev.seq != i:
                raise ImportFormatError(f"run {rid}: expected seq {i}, found {ev.seq}")
            kind = ev.body.get("kind")
            if not isinstance(kind, str):
                raise ImportFormatError(f"{where}: body has no 'kind'")
            if (kind == "run_started") != (ev.seq == 1):
                raise ImportFormatError(f"{where}: a run starts with one 'run_started' event")
            try:
                refs, _ = body_facts(kind, ev.body)
                validate_event_model(
                    {"id": ev.id, "run_id": ev.run_id, "seq": ev.seq, "parent_id": ev.parent_id,
                     "ts": us_to_dt(ev.ts_us), "hash": ev.hash}, ev.body)
            except BodyError as exc:
                raise ImportFormatError(f"{where}: {exc}") from exc
            check_portable(ev.body, where=where)
            body = dumps_ordered(ev.body)
            h = chain_hash(prev, rid, ev.seq, ev.id, ev.parent_id, ev.ts_us, kind, body)
            if h != ev.hash:
                raise ImportFormatError(
                    f"{where}: hash chain broken (the event or one before it was altered)"
                )
            prev = h
            needed.update(refs)
            pending.append(PendingEvent(rid, ev.id, ev.parent_id, ev.ts_us, kind, body))
        if self.end.head != prev:
            raise ImportFormatError(f"run {rid}: 'end' head does not match the last event's hash")
        self._check_blobs(conn, needed)
        if pending:
            pending[0] = pending[0]._replace(blobs=self.blobs)
        return pending

    def _check_blobs(self, conn: Connection, roots: set[str]) -> None:
        for h, blob in self.blobs.items():
            if hashlib.sha256(blob).hexdigest() != h:
                raise ImportFormatError(f"run {self.run_id}: blob {h} does not match its hash")
            check_portable(loads(blob), where=f"run {self.run_id} blob {h}")
        def fetch(hashes: list[str]) -> dict[str, bytes]:
            missing = [h for h in hashes if h not in self.blobs]
            found = fetch_blobs(conn, missing) if missing else {}
            found.update((h, self.blobs[h]) for h in hashes if h in self.blobs)
            return found

        for visit in walk(roots, fetch):
            if visit.data is None:
                raise ImportFormatError(
                    f"run {self.run_id}: blob {visit.hash} is referenced but not in the file"
                )
            if visit.node is None:
                raise ImportFormatError(
                    f"run {self.run_id}: blob {visit.hash} is not a valid tree node"
                )


def read_sections(src: IO[bytes]) -> Iterator[RunSection]:
    """Parse a portable file section by section, validating each line's shape."""
    section: RunSection | None = None
    for lineno, raw in enumerate(src, start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            obj: Any = loads(raw)
            line = LINE_ADAPTER.validate_python(obj)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0][:200]
            raise ImportFormatError(f"line {lineno}: not a valid agentlab line: {first}") from exc
        if isinstance(line, HeaderLine):
            if section is not None:
                raise ImportFormatError(f"line {lineno}: new header before the previous 'end'")
            if line.version > FORMAT_VERSION:
                raise ImportFormatError(
                    f"line {lineno}: format version {line.version} is newer than this "
                    f"agentlab reads ({FORMAT_VERSION}); upgrade agentlab"
                )
            section = RunSection(line)
            continue
        if section is None:
            raise ImportFormatError(f"line {lineno}: {line.type!r} line before any header")
        if isinstance(line, BlobLine):
            try:
                section.blobs[line.hash] = dumps_ordered(line.data)
            except (TypeError, ValueError) as exc:  # nested past what a tree node holds
                raise ImportFormatError(f"line {lineno}: blob {line.hash} cannot be stored "
                                        f"({exc})") from exc
        elif isinstance(line, EventLine):
            section.events.append(line)
        else:
            if line.run_id != section.run_id:
                raise ImportFormatError(f"line {lineno}: 'end' for a different run")
            section.end = line
            yield section
            section = None
    if section is not None:
        raise ImportFormatError(
            f"run {section.run_id}: the file ends before its 'end' line (truncated?)"
        )


def existing_head(conn: Connection, run_id: str) -> str | None:
    return conn.execute(select(runs.c.head_hash).where(runs.c.run_id == run_id)).scalar()
