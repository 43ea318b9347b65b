"""OTLP JSON (the OTLP/HTTP JSON encoding) in and out of the store.

``import_otlp`` reads ``{"resourceSpans": [...]}`` documents (one, or one per line as the
OTel Collector's ``file`` exporter writes them; plain or gzipped) and makes a run of each
trace through the mapping of :mod:`agentlab.integrations._spans`, the one the in-process
exporter uses. ``export_otlp`` writes runs as spans following the GenAI conventions, with
``agentlab.*`` attributes for what they do not name, so an exported run imports back with
the same events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import orjson

from agentlab.errors import ImportFormatError
from agentlab.identity import Redactor
from agentlab.integrations._files import read_source
from agentlab.integrations._otel_messages import span_messages, to_genai_message
from agentlab.integrations._spans import (
    ENVELOPE,
    ENVELOPE_LISTS,
    LLM_JSON,
    SPAN_KINDS,
    TOOL_JSON,
    TOOL_OWN,
    SpanEventRecord,
    SpanRecord,
    append_new,
    group_traces,
    otel_run_id,
    trace_events,
)
from agentlab.integrations._synthetic import content_id
from agentlab.store import PendingEvent, RunStore

__all__ = ["export_otlp", "import_otlp", "read_otlp"]

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_STATUS = {0: "unset", 1: "ok", 2: "error", "STATUS_CODE_UNSET": "unset",
           "STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error"}


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
            a["gen_ai.input.messages"] = _dumps([to_genai_message(m) for m in ev["messages"]])
        response = ev.get("response")
        if response is not None:
            outs = response if isinstance(response, list) else [response]
            a["gen_ai.output.messages"] = _dumps([to_genai_message(m, output=True)
                                                  for m in outs])
        for key in LLM_JSON:
            a[f"agentlab.{key}"] = _dumps(ev.get(key) or None)
        # Where the GenAI shape does not give the recorded value back, the value itself too.
        messages, back = span_messages(a)
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
        for key in TOOL_OWN:
            a[f"agentlab.{key}"] = ev.get(key)
        for key in TOOL_JSON:
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
        *ENVELOPE, "workflow", "agent_name", "agent_version", "task_id", "task_input", "tags",
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
        if ev["kind"] in SPAN_KINDS:
            by_event[ev["id"]] = {}  # placeholders first: parents are emitted after children
    for ev in events[1:]:
        kind = ev["kind"]
        if kind == "run_ended":
            continue
        parent = by_event.get(ev.get("parent_id") or "")
        if parent is None:
            parent = root
        start = ns(ev["ts"])
        if kind not in SPAN_KINDS:
            body = {k: v for k, v in ev.items() if k not in ENVELOPE and v not in (None, [])
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
        for key in ENVELOPE_LISTS:
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
