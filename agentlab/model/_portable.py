"""The versioned portable form of runs: JSON Lines, one record per line.

A file holds one or more runs. Each run is a section::

    {"type": "header", "format": "agentlab.run", "version": 1, "run_id": ...}
    {"type": "blob", "hash": ..., "data": <node>}          every blob the run refers to
    {"type": "event", "id": ..., "seq": 1, ..., "body": {...}, "hash": ...}
    {"type": "end", "run_id": ..., "events": N, "head": <last hash>}

Event bodies are exactly the bytes the hash chain covers (canonical JSON), so a file can be
verified without the database it came from. The JSON Schema is generated from these models
(``agentlab schema``) and shipped as ``agentlab/model/portable.schema.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentlab.model._events import Event

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "BlobLine",
    "EndLine",
    "EventLine",
    "HeaderLine",
    "PortableLine",
    "portable_json_schema",
]

FORMAT = "agentlab.run"
FORMAT_VERSION = 1


class _Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeaderLine(_Line):
    """Opens a run's section."""

    type: Literal["header"] = "header"
    format: Literal["agentlab.run"] = "agentlab.run"
    version: int = FORMAT_VERSION
    run_id: str
    exported_at: str
    agentlab_version: str


class BlobLine(_Line):
    """A content-addressed node: ``hash`` is the SHA-256 of ``data``'s canonical bytes."""

    type: Literal["blob"] = "blob"
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    data: Any


class EventLine(_Line):
    """An event as stored: envelope, canonical body (see the event models) and chain hash."""

    type: Literal["event"] = "event"
    id: str
    run_id: str
    seq: int = Field(ge=1)
    parent_id: str | None
    ts_us: int = Field(description="Start time, microseconds since the Unix epoch (UTC).")
    body: dict[str, Any] = Field(
        description="The kind's fields; large payload fields are replaced by "
        "'$refs': {field: blob hash}."
    )
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class EndLine(_Line):
    """Closes a run's section; lets a reader detect a truncated file."""

    type: Literal["end"] = "end"
    run_id: str
    events: int
    head: str


PortableLine = Annotated[HeaderLine | BlobLine | EventLine | EndLine, Field(discriminator="type")]
LINE_ADAPTER: TypeAdapter[HeaderLine | BlobLine | EventLine | EndLine] = TypeAdapter(PortableLine)


def portable_json_schema() -> dict[str, Any]:
    """JSON Schema of one line of the portable form, with the event kinds under ``$defs``."""
    schema = LINE_ADAPTER.json_schema()
    events = TypeAdapter(Event).json_schema()
    defs = schema.setdefault("$defs", {})
    defs.update(events.pop("$defs", {}))
    defs["Event"] = events
    schema["title"] = f"{FORMAT} v{FORMAT_VERSION} line"
    return schema
