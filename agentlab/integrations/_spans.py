"""OpenTelemetry spans as agentlab runs: one mapping for the in-process exporter and for OTLP
JSON files.

Both paths reduce spans to :class:`SpanRecord` (hex ids, unix-nanosecond times, plain
attribute values) and hand a trace's records to :func:`trace_events`, so a trace recorded
by :class:`~agentlab.integrations.AgentlabSpanExporter` and the same trace imported from an
OTel Collector's ``file`` exporter output become the same run, event for event.

The mapping (OTel GenAI semantic conventions and OpenInference):

- a trace is a run; its root span (no parent) gives ``run_started`` and ``run_ended``:
  ``gen_ai.agent.name``/``agent.name``, ``gen_ai.workflow.name``, its status;
- an inference span (``gen_ai.operation.name`` chat, text_completion, generate_content, or
  ``openinference.span.kind`` LLM) is an ``llm_call``: model, provider, tokens, cost
  (``llm.cost.total``, else the price table), messages only when the span carries them
  (``gen_ai.input.messages``/``gen_ai.output.messages`` or OpenInference's flattened
  ``llm.input_messages.N.message.*``);
- an ``execute_tool`` or TOOL span is a ``tool_call``: name, call id (``gen_ai.tool.call.id``
  or ``tool.id``), arguments and result (``gen_ai.tool.call.arguments``/``result`` or
  ``input.value``/``output.value``), an error from the span status or ``error.type``;
- any other span is a ``step``; a span event named ``agentlab.<kind>`` (an approval, a
  checkpoint...) is that agentlab event;
- agentlab's own facts travel as ``agentlab.*`` attributes (grant, credential fingerprint,
  approval, denial, side effect, cost...).

Ids are derived from the trace and span ids, so exporting or importing a trace twice adds
nothing; an event's ``source`` names its span.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlab.errors import ImportFormatError, RunNotFoundError
from agentlab.identity import Redactor, default_redactor
from agentlab.integrations._otel_messages import json_value, span_messages
from agentlab.integrations._synthetic import content_id
from agentlab.model import Event, TreeEncoder, canonical, canonical_body, event_stats
from agentlab.record._prices import price_call
from agentlab.record._writer import redact_events
from agentlab.store import PendingEvent, RunStore

__all__ = ["ENVELOPE", "ENVELOPE_LISTS", "LLM_JSON", "SPAN_KINDS", "TOOL_JSON", "TOOL_OWN",
           "SpanEventRecord", "SpanRecord", "append_new", "group_traces", "otel_run_id",
           "span_kind", "trace_events"]

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
SPAN_KINDS = ("llm_call", "tool_call", "step")
_RUN_KINDS = ("run_started", "run_ended")
ENVELOPE = ("id", "run_id", "seq", "parent_id", "ts", "hash", "kind")
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass(frozen=True, slots=True)
class SpanEventRecord:
    """An event on a span (an exception, an ``agentlab.<kind>`` fact)."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One finished span in the form both paths share: hex ids, unix nanoseconds, plain
    attribute values (lists, dicts, str, int, float, bool). ``origin`` says where it came
    from (a JSON path in a file, or the span id), for error messages."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    status: str = "unset"  # unset | ok | error
    status_message: str | None = None
    events: tuple[SpanEventRecord, ...] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)
    remote_parent: bool = False
    origin: str = ""


def otel_run_id(trace_id: str, root_span_id: str | None = None) -> str:
    """The run id of a trace (of a process's part of it, rooted at a span whose parent is
    remote, when ``root_span_id`` is given)."""
    if root_span_id is None:
        return content_id("otel", trace_id.lower())
    return content_id("otel", trace_id.lower(), root_span_id.lower())


# -- spans -> events ------------------------------------------------------------------------


def _arguments(value: Any) -> dict[str, Any]:
    parsed = json_value(value)
    if parsed is None:
        return {}
    return parsed if isinstance(parsed, dict) else {"_raw": parsed}


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def span_kind(attrs: Mapping[str, Any]) -> str:
    """``llm_call``, ``tool_call`` or ``step``: what a span records."""
    own = attrs.get("agentlab.event.kind")
    if own in SPAN_KINDS:
        return str(own)
    op = attrs.get("gen_ai.operation.name")
    oi = attrs.get("openinference.span.kind")
    if op in LLM_OPERATIONS or oi == "LLM":
        return "llm_call"
    if op == "execute_tool" or oi == "TOOL":
        return "tool_call"
    return "step"


def _agent_name(span: SpanRecord) -> str | None:
    a = span.attributes
    if (a.get("gen_ai.operation.name") in AGENT_OPERATIONS
            or a.get("openinference.span.kind") == "AGENT"):
        name = _first(a, "gen_ai.agent.name", "agent.name")
        return str(name) if name is not None else None
    return None


def _error(span: SpanRecord) -> dict[str, Any] | None:
    a = span.attributes
    own = json_value(a.get("agentlab.error"))
    if isinstance(own, dict) and "type" in own:
        return own
    exc = next((e.attributes for e in span.events if e.name == "exception"), {})
    etype = _first(a, "error.type") or exc.get("exception.type")
    if span.status != "error" and etype is None:
        return None
    info: dict[str, Any] = {
        "type": str(etype or "Error"),
        "message": str(span.status_message or exc.get("exception.message") or etype or ""),
    }
    if exc.get("exception.stacktrace"):
        info["traceback"] = str(exc["exception.stacktrace"])
    return info




_PARAMETERS = ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop_sequences",
               "frequency_penalty", "presence_penalty", "choice.count")


def _llm_body(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    model = _first(a, "gen_ai.response.model", "gen_ai.request.model", "llm.response.model_name",
                   "llm.model_name", "llm.request.model_name")
    body: dict[str, Any] = {
        "model": str(model) if model is not None else "unknown",
        "provider": _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider",
                           "llm.system"),
        "input_tokens": _int(_first(a, "gen_ai.usage.input_tokens",
                                    "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")),
        "output_tokens": _int(_first(a, "gen_ai.usage.output_tokens",
                                     "gen_ai.usage.completion_tokens",
                                     "llm.token_count.completion")),
    }
    messages, response = span_messages(a)
    if "agentlab.messages" in a:  # what the GenAI shape could not hold exactly
        messages = json_value(a["agentlab.messages"])
    if "agentlab.response" in a:
        response = json_value(a["agentlab.response"])
    body["messages"] = messages or []
    body["response"] = response
    params = json_value(a.get("agentlab.parameters")) or json_value(a.get("llm.invocation_parameters"))
    if not isinstance(params, dict):
        params = {p: a[f"gen_ai.request.{p}"] for p in _PARAMETERS
                  if a.get(f"gen_ai.request.{p}") is not None} or None
    body["parameters"] = params
    own_cost = _float(a.get("agentlab.cost_usd"))
    if own_cost is not None or a.get("agentlab.cost_source") == "unknown":
        body["cost_usd"], body["cost_source"] = own_cost, a.get("agentlab.cost_source",
                                                                "provider")
    else:
        body["cost_usd"], body["cost_source"] = price_call(
            body["model"], body["input_tokens"], body["output_tokens"],
            _float(a.get("llm.cost.total")))
    for key in LLM_JSON:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = json_value(a[f"agentlab.{key}"])
    error = _error(span)
    if error is not None:
        body.update(status="error", error=error)
    return body


TOOL_JSON = ("stale", "replayed", "compensates", "reconciled")
LLM_JSON = ("replayed", "reported")
ENVELOPE_LISTS = ("reads", "normalized", "redacted")
TOOL_OWN = ("grant", "credential", "approval", "scope", "phase", "policy_rule",
             "idempotency_key", "intent_id")


def _tool_body(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    name = _first(a, "gen_ai.tool.name", "tool.name") or span.name.removeprefix("execute_tool ")
    if "gen_ai.tool.call.arguments" in a:
        arguments = _arguments(a["gen_ai.tool.call.arguments"])
    else:
        arguments = _arguments(a.get("input.value"))
    if "gen_ai.tool.call.result" in a:
        result = json_value(a["gen_ai.tool.call.result"])
    elif a.get("output.value") is not None:
        value = a["output.value"]
        result = value if a.get("output.mime_type") == "text/plain" else json_value(value)
    else:
        result = None
    call_id = _first(a, "gen_ai.tool.call.id", "tool.id", "tool_call.id")
    body: dict[str, Any] = {"tool": str(name), "arguments": arguments, "result": result,
                            "call_id": None if call_id is None else str(call_id)}
    for key in TOOL_OWN:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = a[f"agentlab.{key}"]
    for key, conv in (("side_effect", bool), ("attempt", _int), ("cost_usd", _float)):
        if a.get(f"agentlab.{key}") is not None:
            body[key] = conv(a[f"agentlab.{key}"])
    for key in TOOL_JSON:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = json_value(a[f"agentlab.{key}"])
    if a.get("agentlab.status") == "denied" or a.get("agentlab.denial") is not None:
        body.update(status="denied", denial=json_value(a.get("agentlab.denial")))
    else:
        error = _error(span)
        if error is not None:
            body.update(status="error", error=error)
    return body


def _step_body(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    body: dict[str, Any] = {"name": span.name, "output": json_value(a.get("agentlab.output"))}
    error = _error(span)
    if error is not None:
        body.update(status="error", error=error)
    return body


def _run_started(root: SpanRecord | None, spans: Sequence[SpanRecord]) -> dict[str, Any]:
    top = root or min(spans, key=lambda s: (s.start_ns, s.span_id))
    a = top.attributes
    agent = (_first(a, "gen_ai.agent.name", "agent.name")
             or next((n for s in spans if (n := _agent_name(s))), None)
             or top.resource.get("service.name") or "otel-agent")
    own = json_value(a.get("agentlab.run"))
    metadata = json_value(a.get("agentlab.metadata"))
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata.setdefault("otel.trace_id", top.trace_id)
    conversation = _first(a, "gen_ai.conversation.id", "session.id")
    if conversation is not None:
        metadata.setdefault("otel.conversation_id", conversation)
    tags = a.get("agentlab.tags")
    body: dict[str, Any] = {
        "workflow": str(_first(a, "agentlab.workflow", "gen_ai.workflow.name") or agent),
        "agent_name": str(agent),
        "agent_version": _first(a, "gen_ai.agent.version"),
        "task_id": _first(a, "agentlab.task_id"),
        "task_input": json_value(_first(a, "agentlab.task_input", "input.value")),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else ["otel"],
        "metadata": metadata,
    }
    if isinstance(own, dict):
        body.update({k: v for k, v in own.items() if k not in body})
    return body


def _run_ended(root: SpanRecord) -> dict[str, Any] | None:
    a = root.attributes
    status = a.get("agentlab.run.status")
    if status == "running":
        return None
    error = _error(root)
    if status not in ("succeeded", "failed", "errored"):
        status = "errored" if error is not None else "succeeded"
    return {"status": status, "success": a.get("agentlab.success"),
            "score": _float(a.get("agentlab.score")),
            "error": error if status == "errored" else None}


def _validated(kind: str, body: dict[str, Any], run_id: str, where: str) -> dict[str, Any]:
    """The body without empty fields, checked against the event model of its kind."""
    body = {k: v for k, v in body.items() if v is not None}
    body["kind"] = kind
    try:
        _EVENT.validate_python({**body, "id": "0", "run_id": run_id, "seq": 1,
                                "ts": datetime.fromtimestamp(0, UTC), "hash": ""})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}"
                             for e in exc.errors()[:3])
        raise ImportFormatError(
            f"{where}: the span does not make a valid {kind} event ({problems}); fix or drop "
            "the span's attributes named there") from None
    return body


def _state_blobs(state: Any, root: str, where: str) -> dict[str, bytes]:
    """The nodes of a checkpoint's state, rebuilt from the ``agentlab.state`` attribute;
    they must hash to the checkpoint's root, as the recorder made them."""
    state = json_value(state)
    if not isinstance(state, dict):
        raise ImportFormatError(f"{where}: a checkpoint needs its state as an 'agentlab.state' "
                                "JSON object; export the run with agentlab")
    enc = TreeEncoder()
    refs = {}
    for key, value in state.items():
        data = canonical(value)[0]
        ref = enc.encode(value, data)
        refs[str(key)] = ref if ref[0] is not None else (None, value)
    if enc.map_from_refs(refs) != root:
        raise ImportFormatError(f"{where}: the checkpoint's state does not hash to its root "
                                f"{root[:12]}…; the attribute was changed or cut short")
    return enc.blobs


def trace_events(spans: Sequence[SpanRecord], *, run_id: str | None = None,
                 root: SpanRecord | None = None) -> list[PendingEvent]:
    """The events of the run one trace's spans make, in order (not yet redacted). ``root``:
    the root span when it is among ``spans`` (found when not given: the earliest span
    without a parent); without one, the run is written unfinished (no ``run_ended``).
    Raises ImportFormatError, naming the span, when a span makes no valid event."""
    if not spans:
        return []
    if root is None:
        parentless = [s for s in spans if s.parent_id is None]
        root = min(parentless, key=lambda s: (s.start_ns, s.span_id)) if parentless else None
    if run_id is None:
        run_id = otel_run_id(spans[0].trace_id)
    rid: str = run_id
    present = {s.span_id: s for s in spans}
    root_id = root.span_id if root is not None else None

    def event_id(*parts: object) -> str:
        return content_id(rid, *parts)

    def parent_of(span: SpanRecord) -> str | None:
        p = span.parent_id
        if p is None or p == root_id or p not in present:
            return None
        return event_id(p)

    run_agent = None
    if root is not None:
        run_agent = _first(root.attributes, "gen_ai.agent.name", "agent.name")
    agents: dict[str, str | None] = {}

    def agent_of(span: SpanRecord) -> str | None:
        if span.span_id in agents:
            return agents[span.span_id]
        own = span.attributes.get("agentlab.agent") or _agent_name(span)
        if own is None and span.parent_id in present and span.parent_id != root_id:
            own = agent_of(present[span.parent_id])
        agents[span.span_id] = None if own == run_agent else own
        return agents[span.span_id]

    items: list[tuple[tuple[float, int, int], PendingEvent]] = []
    position = 0
    for span in spans:
        for i, ev in enumerate(span.events):
            kind = ev.name.removeprefix("agentlab.")
            if not ev.name.startswith("agentlab.") or kind in _RUN_KINDS:
                continue
            where = f"{span.origin}.events[{i}]"
            given = json_value(ev.attributes.get("agentlab.body"))
            if not isinstance(given, dict):
                raise ImportFormatError(f"{where}: span event {ev.name!r} has no "
                                        "'agentlab.body' object; export it with agentlab")
            body = {k: v for k, v in given.items() if k not in ENVELOPE}
            body["source"] = f"span {span.span_id} event {i}"
            body = _validated(kind, body, rid, where)
            blobs = (_state_blobs(ev.attributes.get("agentlab.state"), body["root"], where)
                     if kind == "checkpoint" else None)
            seq = _int(ev.attributes.get("agentlab.seq"))
            parent = None if span.span_id == root_id else event_id(span.span_id)
            items.append(((seq if seq is not None else math.inf, ev.time_ns, position),
                          PendingEvent(rid, event_id(span.span_id, "event", i), parent,
                                       ev.time_ns // 1000, kind, canonical_body(body), blobs,
                                       event_stats(kind, body))))
            position += 1
        if span is root:
            continue
        kind = span_kind(span.attributes)
        build = {"llm_call": _llm_body, "tool_call": _tool_body, "step": _step_body}[kind]
        body = build(span)
        # a zero-length span has no duration to tell (a call reported after the fact)
        body["duration_ms"] = (span.end_ns - span.start_ns) / 1e6 if span.end_ns > span.start_ns \
            else None
        body["agent"] = agent_of(span)
        body["source"] = f"span {span.span_id}"
        if span.attributes.get("agentlab.in_tool") is True:
            body["in_tool"] = True
        for key in ENVELOPE_LISTS:
            value = span.attributes.get(f"agentlab.{key}")
            if isinstance(value, list) and value:
                body[key] = [str(v) for v in value]
        body = _validated(kind, body, rid, span.origin or f"span {span.span_id}")
        seq = _int(span.attributes.get("agentlab.seq"))
        items.append(((seq if seq is not None else math.inf, span.end_ns, position),
                      PendingEvent(rid, event_id(span.span_id), parent_of(span),
                                   span.start_ns // 1000, kind, canonical_body(body), None,
                                   event_stats(kind, body))))
        position += 1
    if any(k[0] == math.inf for k, _ in items):  # not all from agentlab: by end time
        items.sort(key=lambda kv: (kv[0][1], kv[0][2]))
    else:
        items.sort(key=lambda kv: kv[0])
    start = root or min(spans, key=lambda s: (s.start_ns, s.span_id))
    started = _validated("run_started", _run_started(root, spans), rid,
                         start.origin or f"span {start.span_id}")
    out = [PendingEvent(rid, event_id("run_started"), None, start.start_ns // 1000,
                        "run_started", canonical_body(started), None,
                        event_stats("run_started", started))]
    out.extend(ev for _, ev in items)
    ended = _run_ended(root) if root is not None else None
    if root is not None and ended is not None:
        body = _validated("run_ended", ended, rid, root.origin or f"span {root.span_id}")
        end_us = max([root.end_ns // 1000, *(e.ts_us for e in out)])
        out.append(PendingEvent(rid, event_id("run_ended"), None, end_us, "run_ended",
                                canonical_body(body), None, event_stats("run_ended", body)))
    return out


def append_new(store: RunStore, events: Sequence[PendingEvent],
               redactor: Redactor | None = None) -> None:
    """Append the events the store does not hold yet, in one all-or-nothing write. An event
    already stored under its id is kept as it is: a trace's spans can come in parts (a
    flush before its root ended, a collector file per batch), and the part written first
    may have named the run from less than the whole trace."""
    known: set[str] = set()
    for run_id in dict.fromkeys(e.run_id for e in events):
        try:
            store.run(run_id, exact=True)
        except RunNotFoundError:
            continue
        known.update(line.id for line in store.raw_events(run_id))
    fresh = [e for e in events if e.event_id not in known]
    if fresh:
        store.append(redact_events(fresh, redactor or default_redactor()))


def group_traces(spans: Iterable[SpanRecord]) -> dict[str, list[SpanRecord]]:
    """Spans by trace id, in the order given; a span given twice (a batch delivered again)
    counts once."""
    out: dict[str, list[SpanRecord]] = {}
    seen: set[tuple[str, str]] = set()
    for s in spans:
        if (s.trace_id, s.span_id) not in seen:
            seen.add((s.trace_id, s.span_id))
            out.setdefault(s.trace_id, []).append(s)
    return out


