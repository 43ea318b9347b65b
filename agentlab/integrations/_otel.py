"""An OpenTelemetry SDK span exporter that records traces into an agentlab store.

Spans end child first and reach an exporter in batches, so the exporter keeps each trace's
spans until its root span (no parent, or a parent in another process) ends, then writes the
whole run in one append: a crash loses the trace in flight, never half of one. A trace whose
root has not ended by ``force_flush()`` or ``shutdown()`` is written as an unfinished run
(no ``run_ended``); the rest of it, if it comes later, completes that run (the ids are
derived from the trace and span ids, so what is written twice is stored once).

The mapping is :mod:`agentlab.integrations._otlp`'s: a trace recorded here and the same
trace imported from OTLP JSON become the same run.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from agentlab.errors import AgentlabError
from agentlab.identity import Redactor, default_redactor
from agentlab.integrations._spans import (
    SpanEventRecord,
    SpanRecord,
    append_new,
    otel_run_id,
    trace_events,
)
from agentlab.store import PendingEvent, RunStore

__all__ = ["AgentlabSpanExporter", "span_record"]

log = logging.getLogger("agentlab.otel")

_STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}
_FINISHED_MEMORY = 10_000


def _plain(value: object) -> object:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def span_record(span: ReadableSpan) -> SpanRecord:
    """An SDK span in the form the OTLP importer makes of a file's span."""
    ctx = span.get_span_context()
    assert ctx is not None  # a recorded SDK span always has its context
    parent = span.parent
    span_id = format(ctx.span_id, "016x")
    start = span.start_time or 0
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"), span_id=span_id,
        parent_id=format(parent.span_id, "016x") if parent is not None else None,
        remote_parent=bool(parent is not None and parent.is_remote),
        name=span.name, start_ns=start, end_ns=max(span.end_time or start, start),
        attributes={k: _plain(v) for k, v in (span.attributes or {}).items()},
        status=_STATUS[span.status.status_code], status_message=span.status.description,
        events=tuple(SpanEventRecord(e.name, e.timestamp,
                                     {k: _plain(v) for k, v in (e.attributes or {}).items()})
                     for e in span.events),
        resource=dict(span.resource.attributes), origin=f"span {span_id} ({span.name})")


class AgentlabSpanExporter(SpanExporter):
    """Records finished spans into ``store`` as runs, one per trace.

    >>> provider.add_span_processor(SimpleSpanProcessor(AgentlabSpanExporter(store)))  # doctest: +SKIP

    Works under ``SimpleSpanProcessor`` and ``BatchSpanProcessor``. Secrets in attributes
    are scrubbed as every recorded event's are (``redactor``). A span that arrives after its
    trace's run was written is dropped and counted in ``late_spans``. A trace whose spans
    make no valid event is logged and dropped (``dropped_traces``), the others are kept.
    Past ``max_pending_spans`` spans kept for traces whose root has not ended, those traces
    are written as unfinished runs (as by ``force_flush``), so memory stays bounded.
    """

    def __init__(self, store: RunStore, *, redactor: Redactor | None = None,
                 max_pending_spans: int = 100_000) -> None:
        self.store = store
        self.max_pending_spans = max_pending_spans
        self._pending_spans = 0
        self.redactor = redactor or default_redactor()
        self.late_spans = 0
        self.dropped_traces = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[SpanRecord]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    def _events(self, trace_id: str, spans: list[SpanRecord],
                root: SpanRecord | None) -> list[PendingEvent]:
        run_id = (otel_run_id(trace_id, root.span_id) if root is not None and root.remote_parent
                  else otel_run_id(trace_id))
        try:
            return trace_events(spans, run_id=run_id, root=root)
        except AgentlabError as exc:
            self.dropped_traces += 1
            log.error("trace %s not recorded: %s", trace_id, exc)
            return []

    def _write(self, events: list[PendingEvent]) -> bool:
        if not events:
            return True
        try:
            append_new(self.store, events, self.redactor)
        except AgentlabError as exc:
            log.error("could not record %d events: %s", len(events), exc)
            return False
        return True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        records = [span_record(s) for s in spans]
        events: list[PendingEvent] = []
        with self._lock:
            for r in records:
                if r.trace_id in self._finished:
                    self.late_spans += 1
                    continue
                self._pending.setdefault(r.trace_id, []).append(r)
                self._pending_spans += 1
                if r.parent_id is None or r.remote_parent:
                    trace = self._pending.pop(r.trace_id)
                    self._pending_spans -= len(trace)
                    self._finished[r.trace_id] = None
                    while len(self._finished) > _FINISHED_MEMORY:
                        self._finished.popitem(last=False)
                    events.extend(self._events(r.trace_id, trace, r))
            if self._pending_spans > self.max_pending_spans:
                events.extend(self._unfinished())
            ok = self._write(events)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _unfinished(self) -> list[PendingEvent]:
        """The events of every trace kept (its root not ended), as unfinished runs."""
        pending, self._pending, self._pending_spans = self._pending, {}, 0
        return [e for trace_id, spans in pending.items()
                for e in self._events(trace_id, spans, None)]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write every trace whose root has not ended as an unfinished run."""
        with self._lock:
            return self._write(self._unfinished())

    def shutdown(self) -> None:
        self.force_flush()
        self._closed = True
