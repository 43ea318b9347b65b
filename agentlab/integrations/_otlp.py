"""OpenTelemetry traces as agentlab runs, and back: one mapping for the in-process exporter
and for OTLP JSON files.

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

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import TypeAdapter, ValidationError

from agentlab.errors import ImportFormatError, RunNotFoundError
from agentlab.identity import Redactor, default_redactor
from agentlab.integrations._files import read_source
from agentlab.integrations._synthetic import content_id
from agentlab.model import Event, TreeEncoder, canonical, canonical_body, event_stats
from agentlab.record._prices import price_call
from agentlab.record._writer import redact_events
from agentlab.store import PendingEvent, RunStore

__all__ = ["SpanEventRecord", "SpanRecord", "export_otlp", "import_otlp", "otel_run_id",
           "trace_events"]

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_SPAN_KINDS = ("llm_call", "tool_call", "step")
_RUN_KINDS = ("run_started", "run_ended")
_ENVELOPE = ("id", "run_id", "seq", "parent_id", "ts", "hash", "kind")
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_OI_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_OI_TOOL_CALL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")
_OI_CONTENT = re.compile(r"^contents\.(\d+)\.message_content\.(.+)$")
_STATUS = {0: "unset", 1: "ok", 2: "error", "STATUS_CODE_UNSET": "unset",
           "STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error"}


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

def _json(value: Any) -> Any:
    """An attribute that may hold JSON text: parsed when it is JSON, as given otherwise."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _arguments(value: Any) -> dict[str, Any]:
    parsed = _json(value)
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
    if own in _SPAN_KINDS:
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
    own = _json(a.get("agentlab.error"))
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


def _parts_text(parts: list[Any]) -> str | None:
    if len(parts) == 1 and isinstance(parts[0], dict) and parts[0].get("type") == "text":
        content = parts[0].get("content")
        return content if isinstance(content, str) else None
    return None


def _from_genai_message(m: Any) -> Any:
    """A GenAI ``{role, parts}`` message in the chat shape agentlab records (role, content,
    tool_calls, tool_call_id) when it maps exactly; as given otherwise."""
    if not isinstance(m, dict) or not isinstance(m.get("parts"), list):
        return m
    role, parts = m.get("role"), m["parts"]
    text = _parts_text(parts)
    extra = {k: v for k, v in m.items() if k not in ("role", "parts", "finish_reason")}
    if text is not None:
        return {"role": role, "content": text, **extra}
    if parts and all(isinstance(p, dict) and p.get("type") == "tool_call" for p in parts):
        return {"role": role, "content": None, **extra, "tool_calls": [
            {"id": p.get("id"), "type": "function",
             "function": {"name": p.get("name"), "arguments": json.dumps(p.get("arguments"))}}
            for p in parts]}
    if (len(parts) == 1 and isinstance(parts[0], dict)
            and parts[0].get("type") == "tool_call_response"):
        response = parts[0].get("response")
        return {"role": role, "tool_call_id": parts[0].get("id"), **extra,
                "content": response if isinstance(response, str) else json.dumps(response)}
    return m


def _oi_messages(attrs: Mapping[str, Any], direction: str) -> list[dict[str, Any]]:
    """OpenInference's flattened ``llm.<direction>_messages.N.message.*`` as chat messages."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _OI_MESSAGE.match(key)
        if m is None or m.group(1) != direction:
            continue
        msg = found.setdefault(int(m.group(2)), {})
        rest = m.group(3)
        call = _OI_TOOL_CALL.match(rest)
        content = _OI_CONTENT.match(rest)
        if call is not None:
            calls = msg.setdefault("_calls", {})
            c = calls.setdefault(int(call.group(1)), {"type": "function", "function": {}})
            sub = call.group(2)
            if sub.startswith("function."):
                c["function"][sub.removeprefix("function.")] = value
            else:
                c[sub] = value
        elif content is not None:
            parts = msg.setdefault("_contents", {})
            parts.setdefault(int(content.group(1)), {})[content.group(2)] = value
        else:
            msg[rest] = value
    out: list[dict[str, Any]] = []
    for i in sorted(found):
        msg = found[i]
        calls = msg.pop("_calls", None)
        contents = msg.pop("_contents", None)
        if contents is not None and "content" not in msg:
            msg["content"] = [contents[j] for j in sorted(contents)]
        if calls is not None:
            msg["tool_calls"] = [calls[j] for j in sorted(calls)]
        out.append(msg)
    return out


def _messages(a: Mapping[str, Any]) -> tuple[list[Any] | None, Any]:
    """The call's input messages and response, when the span carries content."""
    messages: list[Any] | None = None
    response: Any = None
    raw_in = a.get("gen_ai.input.messages")
    if raw_in is not None:
        parsed = _json(raw_in)
        messages = [_from_genai_message(m) for m in
                    (parsed if isinstance(parsed, list) else [parsed])]
    elif (oi := _oi_messages(a, "input")):
        messages = oi
    raw_out = a.get("gen_ai.output.messages")
    if raw_out is not None:
        parsed = _json(raw_out)
        outs = [_from_genai_message(m) for m in (parsed if isinstance(parsed, list) else [parsed])]
        response = outs[0] if len(outs) == 1 else outs
    elif (oi := _oi_messages(a, "output")):
        response = oi[0] if len(oi) == 1 else oi
    if (isinstance(response, dict) and response.get("role") == "assistant"
            and set(response) == {"role", "content"} and isinstance(response["content"], str)):
        response = response["content"]
    return messages, response


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
    messages, response = _messages(a)
    if "agentlab.messages" in a:  # what the GenAI shape could not hold exactly
        messages = _json(a["agentlab.messages"])
    if "agentlab.response" in a:
        response = _json(a["agentlab.response"])
    body["messages"] = messages or []
    body["response"] = response
    params = _json(a.get("agentlab.parameters")) or _json(a.get("llm.invocation_parameters"))
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
    for key in _LLM_JSON:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = _json(a[f"agentlab.{key}"])
    error = _error(span)
    if error is not None:
        body.update(status="error", error=error)
    return body


_TOOL_JSON = ("stale", "replayed", "compensates", "reconciled")
_LLM_JSON = ("replayed", "reported")
_LISTS = ("reads", "normalized", "redacted")
_TOOL_OWN = ("grant", "credential", "approval", "scope", "phase", "policy_rule",
             "idempotency_key", "intent_id")


def _tool_body(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    name = _first(a, "gen_ai.tool.name", "tool.name") or span.name.removeprefix("execute_tool ")
    if "gen_ai.tool.call.arguments" in a:
        arguments = _arguments(a["gen_ai.tool.call.arguments"])
    else:
        arguments = _arguments(a.get("input.value"))
    if "gen_ai.tool.call.result" in a:
        result = _json(a["gen_ai.tool.call.result"])
    elif a.get("output.value") is not None:
        value = a["output.value"]
        result = value if a.get("output.mime_type") == "text/plain" else _json(value)
    else:
        result = None
    call_id = _first(a, "gen_ai.tool.call.id", "tool.id", "tool_call.id")
    body: dict[str, Any] = {"tool": str(name), "arguments": arguments, "result": result,
                            "call_id": None if call_id is None else str(call_id)}
    for key in _TOOL_OWN:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = a[f"agentlab.{key}"]
    for key, conv in (("side_effect", bool), ("attempt", _int), ("cost_usd", _float)):
        if a.get(f"agentlab.{key}") is not None:
            body[key] = conv(a[f"agentlab.{key}"])
    for key in _TOOL_JSON:
        if a.get(f"agentlab.{key}") is not None:
            body[key] = _json(a[f"agentlab.{key}"])
    if a.get("agentlab.status") == "denied":
        body.update(status="denied", denial=_json(a.get("agentlab.denial")))
    else:
        error = _error(span)
        if error is not None:
            body.update(status="error", error=error)
    return body


def _step_body(span: SpanRecord) -> dict[str, Any]:
    a = span.attributes
    body: dict[str, Any] = {"name": span.name, "output": _json(a.get("agentlab.output"))}
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
    own = _json(a.get("agentlab.run"))
    metadata = _json(a.get("agentlab.metadata"))
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
        "task_input": _json(_first(a, "agentlab.task_input", "input.value")),
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
    state = _json(state)
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
            given = _json(ev.attributes.get("agentlab.body"))
            if not isinstance(given, dict):
                raise ImportFormatError(f"{where}: span event {ev.name!r} has no "
                                        "'agentlab.body' object; export it with agentlab")
            body = {k: v for k, v in given.items() if k not in _ENVELOPE}
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
        for key in _LISTS:
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
    """Spans by trace id, in the order given."""
    out: dict[str, list[SpanRecord]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


# -- OTLP JSON -> spans ---------------------------------------------------------------------

class _Bad(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, f"expected an object, found {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(where, f"expected an array, found {type(value).__name__}")
    return value


def _any_value(v: Any, where: str) -> Any:
    v = _obj(v, where)
    if not v:
        return None
    if "stringValue" in v:
        if not isinstance(v["stringValue"], str):
            raise _Bad(f"{where}.stringValue", "expected a string")
        return v["stringValue"]
    if "boolValue" in v:
        if not isinstance(v["boolValue"], bool):
            raise _Bad(f"{where}.boolValue", "expected true or false")
        return v["boolValue"]
    if "intValue" in v:
        n = v["intValue"]
        if isinstance(n, bool) or not isinstance(n, int | str):
            raise _Bad(f"{where}.intValue", "expected an integer (or its decimal string)")
        try:
            return int(n)
        except ValueError:
            raise _Bad(f"{where}.intValue", f"{n!r} is not an integer") from None
    if "doubleValue" in v:
        d = v["doubleValue"]
        if isinstance(d, bool) or not isinstance(d, int | float | str):
            raise _Bad(f"{where}.doubleValue", "expected a number")
        try:
            return float(d)
        except ValueError:
            raise _Bad(f"{where}.doubleValue", f"{d!r} is not a number") from None
    if "arrayValue" in v:
        arr = _obj(v["arrayValue"], f"{where}.arrayValue")
        return [_any_value(x, f"{where}.arrayValue.values[{i}]")
                for i, x in enumerate(_list(arr.get("values"), f"{where}.arrayValue.values"))]
    if "kvlistValue" in v:
        kv = _obj(v["kvlistValue"], f"{where}.kvlistValue")
        return _attributes(kv.get("values"), f"{where}.kvlistValue.values")
    if "bytesValue" in v:
        return v["bytesValue"]
    raise _Bad(where, f"unknown value type {sorted(v)}; expected stringValue, intValue, "
               "doubleValue, boolValue, arrayValue or kvlistValue")


def _attributes(items: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, item in enumerate(_list(items, where)):
        item = _obj(item, f"{where}[{i}]")
        key = item.get("key")
        if not isinstance(key, str):
            raise _Bad(f"{where}[{i}].key", "expected a string")
        out[key] = _any_value(item.get("value", {}), f"{where}[{i}].value")
    return out


def _hex_id(value: Any, size: int, where: str, *, required: bool = True) -> str | None:
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or len(value) != size or not _HEX.match(value):
        raise _Bad(where, f"expected {size} hex digits, found {value!r}")
    if int(value, 16) == 0:
        if not required:
            return None
        raise _Bad(where, "an all-zero id is invalid")
    return value.lower()


def _nanos(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Bad(where, f"expected unix nanoseconds as a decimal string, found {value!r}")
    try:
        n = int(value)
    except ValueError:
        raise _Bad(where, f"{value!r} is not an integer") from None
    if n < 0:
        raise _Bad(where, "negative time")
    return n


def _span(raw: Any, where: str, resource: Mapping[str, Any]) -> SpanRecord:
    s = _obj(raw, where)
    name = s.get("name", "")
    if not isinstance(name, str):
        raise _Bad(f"{where}.name", "expected a string")
    status = _obj(s.get("status") or {}, f"{where}.status")
    code = status.get("code", 0)
    if code not in _STATUS:
        raise _Bad(f"{where}.status.code", f"expected 0, 1 or 2, found {code!r}")
    message = status.get("message")
    if message is not None and not isinstance(message, str):
        raise _Bad(f"{where}.status.message", "expected a string")
    start = _nanos(s.get("startTimeUnixNano"), f"{where}.startTimeUnixNano")
    end = _nanos(s.get("endTimeUnixNano", start), f"{where}.endTimeUnixNano")
    events = []
    for i, e in enumerate(_list(s.get("events"), f"{where}.events")):
        e = _obj(e, f"{where}.events[{i}]")
        ename = e.get("name", "")
        if not isinstance(ename, str):
            raise _Bad(f"{where}.events[{i}].name", "expected a string")
        events.append(SpanEventRecord(
            ename, _nanos(e.get("timeUnixNano", start), f"{where}.events[{i}].timeUnixNano"),
            _attributes(e.get("attributes"), f"{where}.events[{i}].attributes")))
    return SpanRecord(
        trace_id=str(_hex_id(s.get("traceId"), 32, f"{where}.traceId")),
        span_id=str(_hex_id(s.get("spanId"), 16, f"{where}.spanId")),
        parent_id=_hex_id(s.get("parentSpanId"), 16, f"{where}.parentSpanId", required=False),
        name=name, start_ns=start, end_ns=max(end, start),
        attributes=_attributes(s.get("attributes"), f"{where}.attributes"),
        status=_STATUS[code], status_message=message or None, events=tuple(events),
        resource=resource, origin=where)


def _request_spans(doc: Any, where: str) -> Iterator[SpanRecord]:
    doc = _obj(doc, where or "$")
    if "resourceSpans" not in doc:
        raise _Bad(where or "$", "no 'resourceSpans': not an OTLP JSON trace export")
    prefix = f"{where}: " if where else ""
    for i, rs in enumerate(_list(doc["resourceSpans"], f"{prefix}resourceSpans")):
        at = f"{prefix}resourceSpans[{i}]"
        rs = _obj(rs, at)
        res = _obj(rs.get("resource") or {}, f"{at}.resource")
        resource = _attributes(res.get("attributes"), f"{at}.resource.attributes")
        for j, ss in enumerate(_list(rs.get("scopeSpans"), f"{at}.scopeSpans")):
            sat = f"{at}.scopeSpans[{j}]"
            ss = _obj(ss, sat)
            for k, span in enumerate(_list(ss.get("spans"), f"{sat}.spans")):
                yield _span(span, f"{sat}.spans[{k}]", resource)


def read_otlp(path: str | Path) -> list[SpanRecord]:
    """The spans of an OTLP JSON file: one ``{"resourceSpans": [...]}`` document, or one per
    line as the OTel Collector's ``file`` exporter writes them (plain or gzipped)."""
    raw = read_source(path)
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    docs: list[tuple[Any, str]] = []
    try:
        if len(lines) > 1 and _parses(lines[0]):
            for n, line in enumerate(raw.splitlines(), 1):
                if line.strip():
                    try:
                        docs.append((orjson.loads(line), f"line {n}"))
                    except orjson.JSONDecodeError as exc:
                        raise ImportFormatError(
                            f"{path}: line {n}: not JSON ({exc}); the file may be truncated: "
                            "export it again") from None
        else:
            try:
                docs.append((orjson.loads(raw), ""))
            except orjson.JSONDecodeError as exc:
                raise ImportFormatError(
                    f"{path}: not JSON ({exc}); the file may be truncated: export it "
                    "again") from None
        spans: list[SpanRecord] = []
        for doc, where in docs:
            spans.extend(_request_spans(doc, where))
    except _Bad as exc:
        raise ImportFormatError(f"{path}: {exc}; expected OTLP/HTTP JSON (resourceSpans → "
                                "scopeSpans → spans)") from None
    except RecursionError:
        raise ImportFormatError(f"{path}: JSON nested too deeply to be OTLP") from None
    return spans


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def import_otlp(path: str | Path, store: RunStore, *,
                redactor: Redactor | None = None) -> list[str]:
    """Import every trace of an OTLP JSON file as a run; returns the run ids (new or present),
    in the file's order. All or nothing: a malformed file writes no run. A trace whose root
    span is not in the file becomes an unfinished run (a later file with the rest of the
    trace completes it: ids come from the trace and span ids)."""
    spans = read_otlp(path)
    pending: list[PendingEvent] = []
    ids: list[str] = []
    try:
        for trace_id, trace in group_traces(spans).items():
            events = trace_events(trace, run_id=otel_run_id(trace_id))
            pending.extend(events)
            ids.append(events[0].run_id)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{path}: {exc}") from None
    try:
        append_new(store, pending, redactor)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{path}: {exc}") from exc
    return ids


# -- runs -> OTLP JSON ----------------------------------------------------------------------

def _trace_id(run_id: str) -> str:
    plain = run_id.replace("-", "").lower()
    if len(plain) == 32 and _HEX.match(plain) and int(plain, 16):
        return plain
    return content_id("trace", run_id)


def _span_id(event_id: str) -> str:
    return content_id("span", event_id)[:16]


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, list) and all(isinstance(x, str | int | float | bool) for x in v):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": json.dumps(v, ensure_ascii=False, sort_keys=True)}


def _attrs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _to_genai_message(m: Any, *, output: bool = False) -> dict[str, Any]:
    if not isinstance(m, dict):
        out: dict[str, Any] = {"role": "assistant" if output else "user",
                               "parts": [{"type": "text", "content": m if isinstance(m, str)
                                          else json.dumps(m, sort_keys=True)}]}
    elif isinstance(m.get("parts"), list):
        out = dict(m)
    else:
        role = m.get("role") or ("assistant" if output else "user")
        parts: list[dict[str, Any]] = []
        content = m.get("content")
        if role == "tool" and "tool_call_id" in m:
            parts.append({"type": "tool_call_response", "id": m["tool_call_id"],
                          "response": content})
        elif isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            for c in content:
                if isinstance(c, dict) and c.get("type") == "text":
                    parts.append({"type": "text", "content": c.get("text")})
                else:
                    parts.append(c if isinstance(c, dict) and "type" in c
                                 else {"type": "agentlab.value", "content": c})
        elif content is not None:
            parts.append({"type": "text", "content": json.dumps(content, sort_keys=True)})
        for call in m.get("tool_calls") or []:
            fn = (call or {}).get("function") or call or {}
            args = fn.get("arguments")
            parts.append({"type": "tool_call", "id": (call or {}).get("id"),
                          "name": fn.get("name"), "arguments": _json(args)})
        out = {"role": role, "parts": parts}
        if m.get("name") is not None:
            out["name"] = m["name"]
    if output:
        out.setdefault("finish_reason", "tool_call" if any(
            p.get("type") == "tool_call" for p in out["parts"] if isinstance(p, dict))
            else "stop")
    return out


def _error_attrs(ev: Mapping[str, Any]) -> dict[str, Any]:
    err = ev.get("error")
    if not err:
        return {}
    return {"error.type": err.get("type"), "agentlab.error": _dumps(err)}


def _event_span(ev: Mapping[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """The span name and attributes of a recorded llm_call, tool_call or step."""
    a: dict[str, Any] = {"agentlab.event.kind": kind}
    if kind == "llm_call":
        a.update({"gen_ai.operation.name": "chat", "gen_ai.request.model": ev["model"],
                  "gen_ai.provider.name": ev.get("provider"),
                  "gen_ai.usage.input_tokens": ev.get("input_tokens"),
                  "gen_ai.usage.output_tokens": ev.get("output_tokens"),
                  "agentlab.cost_usd": ev.get("cost_usd"),
                  "agentlab.cost_source": ev.get("cost_source"),
                  "agentlab.parameters": _dumps(ev.get("parameters"))})
        if ev.get("messages"):
            a["gen_ai.input.messages"] = _dumps([_to_genai_message(m) for m in ev["messages"]])
        response = ev.get("response")
        if response is not None:
            outs = response if isinstance(response, list) else [response]
            a["gen_ai.output.messages"] = _dumps([_to_genai_message(m, output=True)
                                                  for m in outs])
        for key in _LLM_JSON:
            a[f"agentlab.{key}"] = _dumps(ev.get(key) or None)
        # Where the GenAI shape does not give the recorded value back, the value itself too.
        messages, back = _messages(a)
        if (messages or []) != (ev.get("messages") or []):
            a["agentlab.messages"] = _dumps(ev.get("messages"))
        if back != response:
            a["agentlab.response"] = _dumps(response)
        return f"chat {ev['model']}", a
    if kind == "tool_call":
        a.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": ev["tool"],
                  "gen_ai.tool.type": "function", "gen_ai.tool.call.id": ev.get("call_id"),
                  "gen_ai.tool.call.arguments": _dumps(ev.get("arguments") or {}),
                  "gen_ai.tool.call.result": _dumps(ev.get("result")),
                  "agentlab.side_effect": ev.get("side_effect"),
                  "agentlab.attempt": ev.get("attempt"),
                  "agentlab.cost_usd": ev.get("cost_usd")})
        for key in _TOOL_OWN:
            a[f"agentlab.{key}"] = ev.get(key)
        for key in _TOOL_JSON:
            a[f"agentlab.{key}"] = _dumps(ev.get(key))
        if ev.get("status") == "denied":
            a.update({"agentlab.status": "denied", "agentlab.denial": _dumps(ev.get("denial"))})
        return f"execute_tool {ev['tool']}", a
    a["agentlab.output"] = _dumps(ev.get("output"))
    return str(ev["name"]), a


def _run_spans(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    events = [e.model_dump(mode="json") for e in store.events(run_id)]
    if not events or events[0]["kind"] != "run_started":
        raise ImportFormatError(f"run {run_id}: no run_started event; it cannot be exported")
    trace = _trace_id(run_id)
    started = events[0]
    ended = next((e for e in events if e["kind"] == "run_ended"), None)

    def ns(ts: str) -> int:
        d = datetime.fromisoformat(ts)
        return (int(d.timestamp()) * 1_000_000 + d.microsecond) * 1000

    root_id = _span_id(started["id"])
    last_ns = max(ns(e["ts"]) + int((e.get("duration_ms") or 0) * 1e6) for e in events)
    agent = started["agent_name"]
    extra = {k: v for k, v in started.items() if k not in (
        *_ENVELOPE, "workflow", "agent_name", "agent_version", "task_id", "task_input", "tags",
        "metadata", "source", "agent", "duration_ms", "reads", "normalized", "redacted",
        "in_tool") and v is not None}
    root_attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
        "gen_ai.agent.version": started.get("agent_version"),
        "agentlab.run_id": run_id, "agentlab.workflow": started["workflow"],
        "agentlab.task_id": started.get("task_id"),
        "agentlab.task_input": _dumps(started.get("task_input")),
        "agentlab.tags": started.get("tags") or [],
        "agentlab.metadata": _dumps(started.get("metadata") or None),
        "agentlab.run": _dumps(extra or None),
        "agentlab.run.status": ended["status"] if ended else "running",
    }
    root_status: dict[str, Any] = {"code": 1 if ended and ended["status"] != "errored" else 0}
    if ended is not None:
        root_attrs.update({"agentlab.success": ended.get("success"),
                           "agentlab.score": ended.get("score")})
        if ended["status"] == "errored":
            root_attrs.update(_error_attrs(ended))
            root_status = {"code": 2, "message": (ended.get("error") or {}).get("message", "")}
    root: dict[str, Any] = {
        "traceId": trace, "spanId": root_id, "name": f"invoke_agent {agent}", "kind": 1,
        "startTimeUnixNano": str(ns(started["ts"])),
        "endTimeUnixNano": str(ns(ended["ts"]) if ended else last_ns),
        "attributes": _attrs(root_attrs), "events": [], "status": root_status}
    spans = [root]
    by_event: dict[str, dict[str, Any]] = {started["id"]: root}
    for ev in events:
        if ev["kind"] in _SPAN_KINDS:
            by_event[ev["id"]] = {}  # placeholders first: parents are emitted after children
    for ev in events[1:]:
        kind = ev["kind"]
        if kind == "run_ended":
            continue
        parent = by_event.get(ev.get("parent_id") or "")
        if parent is None:
            parent = root
        start = ns(ev["ts"])
        if kind not in _SPAN_KINDS:
            body = {k: v for k, v in ev.items() if k not in _ENVELOPE and v not in (None, [])
                    and k not in ("source",) and not (k == "in_tool" and v is False)}
            attrs = {"agentlab.seq": ev["seq"], "agentlab.body": _dumps(body)}
            if kind == "checkpoint":
                attrs["agentlab.state"] = _dumps(store.state_at(run_id, ev["seq"]))
            parent.setdefault("events", []).append({
                "timeUnixNano": str(start), "name": f"agentlab.{kind}",
                "attributes": _attrs(attrs)})
            continue
        name, attrs = _event_span(ev, kind)
        attrs.update({"agentlab.seq": ev["seq"], "agentlab.agent": ev.get("agent"),
                      "agentlab.in_tool": True if ev.get("in_tool") else None})
        for key in _LISTS:
            if ev.get(key):
                attrs[f"agentlab.{key}"] = list(ev[key])
        if ev.get("status") == "error":
            attrs.update(_error_attrs(ev))
        span = by_event[ev["id"]]
        span.update({
            "traceId": trace, "spanId": _span_id(ev["id"]),
            "parentSpanId": _span_id(ev["parent_id"]) if ev.get("parent_id") in by_event
            else root_id,
            "name": name, "kind": 3 if kind == "llm_call" else 1,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + int((ev.get("duration_ms") or 0) * 1e6)),
            "attributes": _attrs(attrs),
            "status": {"code": 2, "message": (ev.get("error") or {}).get("message", "")}
            if ev.get("status") == "error" else {"code": 0}})
        span.setdefault("events", [])
        spans.append(span)
    return spans


def export_otlp(store: RunStore, run_ids: Sequence[str], out: IO[bytes]) -> int:
    """Write the runs as OTLP JSON, one ``{"resourceSpans": [...]}`` document per line (the
    OTel Collector ``file`` exporter's layout): a root ``invoke_agent`` span per run, a
    ``chat``/``execute_tool``/step span per call, GenAI attributes plus ``agentlab.*`` ones
    for what the conventions do not name; other events (approvals, checkpoints...) as span
    events ``agentlab.<kind>``. Message content is included. Returns the spans written."""
    resource = {"attributes": _attrs({"service.name": "agentlab",
                                      "telemetry.sdk.name": "agentlab"})}
    try:
        version = metadata.version("agentlab")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    scope = {"name": "agentlab", "version": version}
    written = 0
    for run_id in run_ids:
        spans = _run_spans(store, store.run(run_id).run_id)
        doc = {"resourceSpans": [{"resource": resource,
                                  "scopeSpans": [{"scope": scope, "spans": spans}]}]}
        out.write(orjson.dumps(doc) + b"\n")
        written += len(spans)
    return written
