"""Builders of ``PendingEvent`` objects for store tests, without the recorder.

Bodies are canonical JSON made with :func:`agentlab.model.dumps`, shaped like the event
models in ``agentlab.model._events`` so that ``store.events()`` can validate them.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sqlalchemy import func, select

from agentlab.model import TreeEncoder, dumps
from agentlab.store import PendingEvent
from agentlab.store._schema import blobs as blobs_table

try:  # ``tests`` is a package only when run with the repository root on sys.path
    from tests.conftest import PG_SKIP, PG_URL, drop_pg_schema
except ModuleNotFoundError:  # pytest's default rootdir-less import: conftest is top-level
    from conftest import PG_SKIP, PG_URL, drop_pg_schema  # type: ignore[no-redef]

__all__ = ["PG_SKIP", "PG_URL", "RunBuilder", "blob_bytes", "blob_count", "drop_pg_schema", "new_run_id"]

T0_US = 1_700_000_000_000_000


def new_run_id(prefix: str = "") -> str:
    """A 36-character run id (the column width), optionally starting with ``prefix``."""
    u = str(uuid.uuid4())
    return (prefix + u[len(prefix):]) if prefix else u


class RunBuilder:
    """Makes the events of one run; ``ts_us`` grows by 1 ms per event."""

    def __init__(self, run_id: str | None = None, *, t0_us: int = T0_US,
                 workflow: str = "wf", agent_name: str = "agent") -> None:
        self.run_id = run_id or new_run_id()
        self.workflow = workflow
        self.agent_name = agent_name
        self._ts = itertools.count(t0_us, 1000)
        self.t0_us = t0_us

    # -- generic ----------------------------------------------------------------------

    def event(self, kind: str, fields: dict[str, Any] | None = None, *,
              event_id: str | None = None, parent_id: str | None = None,
              blobs: dict[str, bytes] | None = None, ts_us: int | None = None) -> PendingEvent:
        body = dict(fields or {})
        if "parent_id" in body:  # the kind helpers pass the envelope's parent through here
            parent_id = body.pop("parent_id")
        body["kind"] = kind
        return PendingEvent(
            run_id=self.run_id,
            event_id=event_id or str(uuid.uuid4()),
            parent_id=parent_id,
            ts_us=ts_us if ts_us is not None else next(self._ts),
            kind=kind,
            body=dumps(body),
            blobs=dict(blobs or {}),
        )

    # -- kinds ------------------------------------------------------------------------

    def started(self, **fields: Any) -> PendingEvent:
        ts_us = fields.pop("ts_us", None)
        body = {"workflow": self.workflow, "agent_name": self.agent_name, **fields}
        return self.event("run_started", body, ts_us=ts_us)

    def llm(self, *, model: str = "m-1", response: Any = "ok", messages: list[Any] | None = None,
            input_tokens: int = 10, output_tokens: int = 5, cost_usd: float = 0.01,
            status: str = "ok", **fields: Any) -> PendingEvent:
        body = {
            "model": model, "messages": messages if messages is not None else [],
            "response": response, "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cost_usd": cost_usd, "status": status, **fields,
        }
        if status == "error":
            body.setdefault("error", {"type": "RuntimeError", "message": "boom"})
        return self.event("llm_call", body)

    def tool(self, *, tool: str = "search", call_id: str = "c1",
             arguments: dict[str, Any] | None = None, result: Any = "done",
             status: str = "ok", cost_usd: float | None = None, **fields: Any) -> PendingEvent:
        body: dict[str, Any] = {
            "tool": tool, "call_id": call_id, "arguments": arguments or {}, "result": result,
            "status": status, **fields,
        }
        if cost_usd is not None:
            body["cost_usd"] = cost_usd
        if status == "error":
            body.setdefault("error", {"type": "ToolError", "message": "tool failed"})
        return self.event("tool_call", body)

    def intent(self, *, tool: str = "send_email", call_id: str = "c1",
               arguments: dict[str, Any] | None = None, idempotency_key: str = "k1",
               **fields: Any) -> PendingEvent:
        body = {"tool": tool, "call_id": call_id, "arguments": arguments or {},
                "idempotency_key": idempotency_key, **fields}
        return self.event("tool_intent", body)

    def step(self, name: str = "plan", **fields: Any) -> PendingEvent:
        return self.event("step", {"name": name, **fields})

    def error(self, message: str = "bad thing", **fields: Any) -> PendingEvent:
        return self.event("error", {"error": {"type": "ValueError", "message": message},
                                    **fields})

    def retry(self, target: str = "llm", attempt: int = 1, **fields: Any) -> PendingEvent:
        return self.event("retry", {"target": target, "attempt": attempt,
                                    "error": {"type": "Timeout", "message": "slow"}, **fields})

    def checkpoint(self, state: dict[str, Any], writes: list[str] | None = None,
                   **fields: Any) -> PendingEvent:
        enc = TreeEncoder()
        root = enc.node(state)
        body = {"root": root, "writes": sorted(writes if writes is not None else state),
                **fields}
        return self.event("checkpoint", body, blobs=enc.blobs)

    def ended(self, status: str = "succeeded", *, success: bool | None = True,
              score: float | None = None, **fields: Any) -> PendingEvent:
        body: dict[str, Any] = {"status": status, "success": success, "score": score, **fields}
        return self.event("run_ended", body)


def blob_count(store: Any) -> int:
    with store._db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(blobs_table)))


def blob_bytes(store: Any) -> int:
    """Bytes of blob data as stored (after compression)."""
    with store._db.read() as conn:
        total = conn.scalar(select(func.sum(func.length(blobs_table.c.data))))
        return int(total or 0)
