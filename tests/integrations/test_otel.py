"""OpenTelemetry traces recorded into the store (the SDK exporter), OTLP JSON imported and
exported, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, Tracer

import agentlab as al
from agentlab.errors import ImportFormatError
from agentlab.integrations import AgentlabSpanExporter, export_otlp, import_otlp
from agentlab.integrations._spans import otel_run_id
from agentlab.model import LLMCallEvent, StepEvent, ToolCallEvent
from agentlab.store import SqlStore

KEY = "sk-proj-" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"


@pytest.fixture
def traced(store: SqlStore) -> Iterator[tuple[Tracer, AgentlabSpanExporter, TracerProvider]]:
    exporter = AgentlabSpanExporter(store)
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter, provider
    provider.shutdown()


def _genai_agent(tracer: Tracer, *, content: bool, fail_tool: bool = False) -> int:
    """An agent traced with the GenAI conventions: invoke_agent > chat, execute_tool x2."""
    with tracer.start_as_current_span("invoke_agent triage") as root:
        root.set_attributes({"gen_ai.operation.name": "invoke_agent",
                             "gen_ai.agent.name": "triage", "gen_ai.provider.name": "openai",
                             "gen_ai.conversation.id": "conv-7"})
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
                "gen_ai.request.temperature": 0.2})
            if content:
                chat.set_attribute("gen_ai.input.messages", json.dumps([
                    {"role": "user", "parts": [{"type": "text", "content": "Refund order 42"}]}]))
                chat.set_attribute("gen_ai.output.messages", json.dumps([
                    {"role": "assistant", "finish_reason": "tool_call", "parts": [
                        {"type": "tool_call", "id": "call_1", "name": "lookup_order",
                         "arguments": {"order": 42}}]}]))
        with tracer.start_as_current_span("execute_tool lookup_order") as tool:
            tool.set_attributes({"gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": "lookup_order",
                                 "gen_ai.tool.call.id": "call_1",
                                 "gen_ai.tool.call.arguments": json.dumps({"order": 42}),
                                 "gen_ai.tool.call.result": json.dumps({"status": "shipped"}),
                                 "agentlab.grant": "g-orders", "agentlab.credential": "fp:1a2b"})
        with tracer.start_as_current_span("execute_tool refund") as tool:
            tool.set_attributes({"gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": "refund", "gen_ai.tool.call.id": "call_2",
                                 "gen_ai.tool.call.arguments": json.dumps({"order": 42})})
            if fail_tool:
                tool.set_attribute("error.type", "PaymentDeclined")
                tool.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("execute_tool close_account") as tool:
            tool.set_attributes({"gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": "close_account",
                                 "gen_ai.tool.call.id": "call_3",
                                 "agentlab.approval": "apr-9", "agentlab.denial": json.dumps(
                                     {"code": "rejected", "reason": "the approver said no"})})
        return root.get_span_context().trace_id


def _by_kind(store: SqlStore, run_id: str, kind: str) -> list[Any]:
    return [e for e in store.events(run_id) if e.kind == kind]


def test_an_sdk_trace_becomes_a_run_with_its_calls(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider]) -> None:
    tracer, exporter, _ = traced
    _genai_agent(tracer, content=True, fail_tool=True)
    [run] = store.runs()
    assert (run.workflow, run.agent_name, run.status) == ("triage", "triage", "succeeded")
    assert (run.llm_calls, run.tool_calls, run.input_tokens, run.output_tokens) == (1, 3, 120, 30)
    [llm] = _by_kind(store, run.run_id, "llm_call")
    assert isinstance(llm, LLMCallEvent)
    assert (llm.model, llm.provider, llm.input_tokens, llm.output_tokens) == (
        "gpt-4o-2024-08-06", "openai", 120, 30)
    assert llm.parameters == {"temperature": 0.2}
    assert llm.messages == [{"role": "user", "content": "Refund order 42"}]
    assert llm.response == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "lookup_order", "arguments": '{"order": 42}'}}]}
    lookup, refund, close = _by_kind(store, run.run_id, "tool_call")
    assert isinstance(lookup, ToolCallEvent) and isinstance(refund, ToolCallEvent)
    assert (lookup.tool, lookup.call_id, lookup.arguments, lookup.result, lookup.status) == (
        "lookup_order", "call_1", {"order": 42}, {"status": "shipped"}, "ok")
    assert (lookup.grant, lookup.credential) == ("g-orders", "fp:1a2b")
    assert (refund.tool, refund.call_id, refund.status) == ("refund", "call_2", "error")
    assert (close.status, close.approval, close.denial.code) == ("denied", "apr-9", "rejected")
    assert run.denied_count == 1
    assert refund.error is not None
    assert (refund.error.type, refund.error.message) == ("PaymentDeclined", "card declined")
    # span times are event times: the chat started before the tool calls
    assert llm.ts <= lookup.ts <= refund.ts and llm.duration_ms is not None
    assert run.run_id not in {e.id for e in store.events(run.run_id)}
    assert exporter.late_spans == 0


def test_content_is_left_out_when_the_span_does_not_carry_it(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider]) -> None:
    tracer, _, _ = traced
    _genai_agent(tracer, content=False)
    [run] = store.runs()
    [llm] = _by_kind(store, run.run_id, "llm_call")
    assert llm.messages == [] and llm.response is None
    assert llm.input_tokens == 120
    assert [e.status for e in _by_kind(store, run.run_id, "tool_call")] == ["ok", "ok", "denied"]


def test_openinference_spans_map_too(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider]) -> None:
    tracer, _, _ = traced
    with tracer.start_as_current_span("research") as root:
        root.set_attributes({"openinference.span.kind": "AGENT", "agent.name": "researcher",
                             "session.id": "s-1", "input.value": "find the capital of France"})
        with tracer.start_as_current_span("plan") as chain:
            chain.set_attribute("openinference.span.kind", "CHAIN")
            with tracer.start_as_current_span("ChatOpenAI") as llm:
                llm.set_attributes({
                    "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                    "llm.provider": "openai", "llm.token_count.prompt": 50,
                    "llm.token_count.completion": 5, "llm.cost.total": 0.0123,
                    "llm.input_messages.0.message.role": "system",
                    "llm.input_messages.0.message.content": "Be brief.",
                    "llm.input_messages.1.message.role": "user",
                    "llm.input_messages.1.message.content": f"capital of France? {KEY}",
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t9",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name":
                        "search",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments":
                        '{"q": "capital of France"}'})
        with tracer.start_as_current_span("search") as tool:
            tool.set_attributes({"openinference.span.kind": "TOOL", "tool.name": "search",
                                 "tool.id": "t9", "input.value": '{"q": "capital of France"}',
                                 "output.value": "Paris", "output.mime_type": "text/plain"})
    [run] = store.runs()
    assert (run.agent_name, run.cost_usd) == ("researcher", pytest.approx(0.0123))
    events = store.events(run.run_id)
    assert [e.kind for e in events] == ["run_started", "llm_call", "step", "tool_call",
                                        "run_ended"]
    _, llm, plan, tool, _ = events
    assert isinstance(llm, LLMCallEvent) and isinstance(plan, StepEvent)
    assert (llm.model, llm.input_tokens, llm.output_tokens, llm.cost_source) == (
        "gpt-4o-mini", 50, 5, "provider")
    assert llm.parent_id == plan.id and plan.name == "plan" and plan.parent_id is None
    assert llm.messages[0] == {"role": "system", "content": "Be brief."}
    assert KEY not in json.dumps(llm.messages) and "REDACTED" in json.dumps(llm.messages)
    assert llm.response["tool_calls"][0]["function"]["name"] == "search"
    assert isinstance(tool, ToolCallEvent)
    assert (tool.tool, tool.call_id, tool.arguments, tool.result) == (
        "search", "t9", {"q": "capital of France"}, "Paris")
    assert events[0].metadata["otel.conversation_id"] == "s-1"  # type: ignore[union-attr]


def test_reexport_is_idempotent_and_an_unrooted_trace_is_written_on_flush(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider]) -> None:
    tracer, exporter, provider = traced
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    _genai_agent(tracer, content=True)
    [run] = store.runs()
    before = [(e.id, e.seq) for e in store.events(run.run_id)]
    mem = list(spans.get_finished_spans())
    second = AgentlabSpanExporter(store)  # e.g. a retried batch, or a restarted process
    second.export(mem)
    assert [(e.id, e.seq) for e in store.events(run.run_id)] == before
    assert len(store.runs()) == 1
    # a trace whose root is still open: its finished spans are kept until a flush
    root_cm = tracer.start_as_current_span("invoke_agent slow")
    root = root_cm.__enter__()
    root.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "slow"})
    with tracer.start_as_current_span("execute_tool wait") as t:
        t.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "wait"})
    assert len(store.runs()) == 1
    assert exporter.force_flush()
    unfinished = next(r for r in store.runs() if r.run_id != run.run_id)
    # the root's own attributes are not known yet: the agent is named by the service
    assert (unfinished.status, unfinished.tool_calls, unfinished.agent_name) == (
        "running", 1, "support-bot")
    root_cm.__exit__(None, None, None)  # the root ends later: the run is completed
    done = store.run(unfinished.run_id)
    assert (done.status, done.tool_calls) == ("succeeded", 1)
    assert [e.kind for e in store.events(done.run_id)] == ["run_started", "tool_call",
                                                          "run_ended"]


def _recorded_run(store: SqlStore) -> str:
    @al.tool
    def lookup(order: int) -> dict[str, Any]:
        return {"order": order, "status": "shipped"}

    @al.tool(side_effect=True)  # no scope: no grant covers it, the call is denied
    def refund(order: int) -> None:
        raise AssertionError("never runs")

    @al.tool
    def carrier(order: int) -> None:
        raise RuntimeError("carrier API down")

    with al.record_run("support", store=store, agent="triage", task_id="t-1",
                       task_input={"order": 42}) as run:
        run.llm_call(model="gpt-4o", messages=[{"role": "user", "content": "refund 42"}],
                     response="looking it up", input_tokens=11, output_tokens=3)
        with al.step("decide") as s:
            lookup(42)
            s.output = {"refund": True}
        with pytest.raises(RuntimeError):
            carrier(42)
        with pytest.raises(al.ToolDeniedError):
            refund(42)
        run.state["decision"] = "refund"
        run.state["history"] = [{"step": i, "note": "checked"} for i in range(300)]
    return run.run_id


def _steps(store: SqlStore, run_id: str) -> list[tuple[Any, ...]]:
    out = []
    for e in store.events(run_id):
        d = e.model_dump()
        out.append((e.kind, d.get("name"), d.get("tool"), d.get("model"), d.get("arguments"),
                    d.get("result"), d.get("input_tokens"), d.get("output_tokens"),
                    d.get("cost_usd"), d.get("status"), d.get("output"), d.get("messages"),
                    d.get("response"), (d.get("error") or {}).get("type"), d.get("side_effect"),
                    d.get("root"), (d.get("denial") or {}).get("code"), e.parent_id is None))
    return out


def test_an_exported_run_imports_back_with_the_same_steps(store: SqlStore,
                                                          tmp_path: Path) -> None:
    run_id = _recorded_run(store)
    buf = io.BytesIO()
    assert export_otlp(store, [run_id], buf) >= 4
    doc = json.loads(buf.getvalue().splitlines()[0])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans[0]["name"] == "invoke_agent triage"
    ops = {a["value"]["stringValue"] for s in spans for a in s["attributes"]
           if a["key"] == "gen_ai.operation.name"}
    assert ops == {"invoke_agent", "chat", "execute_tool"}
    path = tmp_path / "run.otlp.json.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    other = al.open_store(tmp_path / "other.db")
    [imported] = import_otlp(path, other)
    assert _steps(other, imported) == _steps(store, run_id)
    got, want = other.run(imported), store.run(run_id)
    assert (got.workflow, got.agent_name, got.status, got.task_id) == (
        want.workflow, want.agent_name, want.status, want.task_id)
    [report] = other.verify(imported)
    assert report.ok, report
    assert other.state_at(imported) == store.state_at(run_id)
    assert len(store.state_at(run_id)["history"]) == 300
    assert import_otlp(path, other) == [imported]  # idempotent
    assert len(other.events(imported)) == len(store.events(run_id))
    # into the same store: a separate run, the original untouched
    [again] = import_otlp(path, store)
    assert again != run_id and _steps(store, again) == _steps(store, run_id)


def test_the_exporter_and_a_collector_file_make_the_same_run(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider],
        tmp_path: Path) -> None:
    tracer, _, _ = traced
    trace_id = _genai_agent(tracer, content=True)
    [run] = store.runs()
    buf = io.BytesIO()
    export_otlp(store, [run.run_id], buf)
    # the same trace as a collector would have written it: the ids of the original spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    other_trace = _genai_agent(provider.get_tracer("t"), content=True)
    spans = [_otlp_span(s) for s in mem.get_finished_spans()]
    path = tmp_path / "collector.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "support-bot"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}) + "\n")
    [imported] = import_otlp(path, store)
    assert other_trace != trace_id
    assert _steps(store, imported) == _steps(store, run.run_id)


def _otlp_span(s: Any) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}

    ctx = s.get_span_context()
    out = {"traceId": format(ctx.trace_id, "032x"), "spanId": format(ctx.span_id, "016x"),
           "name": s.name, "startTimeUnixNano": str(s.start_time),
           "endTimeUnixNano": str(s.end_time),
           "attributes": [{"key": k, "value": value(v)} for k, v in s.attributes.items()],
           "status": {"code": s.status.status_code.value,
                      **({"message": s.status.description} if s.status.description else {})}}
    if s.parent is not None:
        out["parentSpanId"] = format(s.parent.span_id, "016x")
    return out


GOOD_SPAN = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "name": "invoke_agent a", "startTimeUnixNano": "1544712660000000000",
             "endTimeUnixNano": "1544712661000000000",
             "attributes": [{"key": "gen_ai.operation.name",
                             "value": {"stringValue": "invoke_agent"}}]}


def _doc(*spans: dict[str, Any]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


@pytest.mark.parametrize(("content", "where"), [
    (_doc(GOOD_SPAN)[:-20], "not JSON"),
    (_doc(GOOD_SPAN, {**GOOD_SPAN, "spanId": "aaaa19b7ec3c1b17",
                      "traceId": None}), "resourceSpans[0].scopeSpans[0].spans[1].traceId"),
    (_doc({k: v for k, v in GOOD_SPAN.items() if k != "traceId"}),
     "resourceSpans[0].scopeSpans[0].spans[0].traceId"),
    (_doc({**GOOD_SPAN, "attributes": [{"key": "x", "value": {"intValue": "ten"}}]}),
     "spans[0].attributes[0].value.intValue"),
    (_doc({**GOOD_SPAN, "startTimeUnixNano": 1.5}), "spans[0].startTimeUnixNano"),
    (_doc({**GOOD_SPAN, "attributes": {"k": "v"}}), "spans[0].attributes"),
    (json.dumps({"resourceSpans": {"a": 1}}), "resourceSpans"),
    (json.dumps([1, 2]), "$"),
    (_doc({**GOOD_SPAN, "spanId": "aaaa19b7ec3c1b17", "parentSpanId": GOOD_SPAN["spanId"],
           "attributes": [{"key": "gen_ai.operation.name",
                           "value": {"stringValue": "execute_tool"}},
                          {"key": "gen_ai.tool.name", "value": {"stringValue": "t"}},
                          {"key": "agentlab.phase", "value": {"stringValue": "nonsense"}}]},
          GOOD_SPAN), "spans[0]"),
])
def test_malformed_otlp_is_refused_naming_the_file_and_path(
        store: SqlStore, tmp_path: Path, content: str, where: str) -> None:
    good = _doc({**GOOD_SPAN, "traceId": "6b8efff798038103d269b633813fc60c"})
    path = tmp_path / "bad.json"
    path.write_text(good + "\n" + content if content.startswith('{"resourceSpans": [') and
                    "not JSON" not in where else content)
    with pytest.raises(ImportFormatError) as err:
        import_otlp(path, store)
    assert str(path) in str(err.value) and where in str(err.value), str(err.value)
    assert store.runs() == []  # nothing half-written


def test_a_trace_split_over_two_files_is_one_run(store: SqlStore, tmp_path: Path) -> None:
    child = {**GOOD_SPAN, "spanId": "aaaa19b7ec3c1b17", "parentSpanId": GOOD_SPAN["spanId"],
             "name": "execute_tool t",
             "attributes": [{"key": "gen_ai.operation.name",
                             "value": {"stringValue": "execute_tool"}},
                            {"key": "gen_ai.tool.name", "value": {"stringValue": "t"}}]}
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    first.write_text(_doc(child) + "\n" + _doc(child))  # a batch delivered twice
    second.write_text(_doc(GOOD_SPAN))
    [a] = import_otlp(first, store)
    assert store.run(a).status == "running"
    [b] = import_otlp(second, store)
    assert a == b and store.run(a).status == "succeeded" and store.run(a).tool_calls == 1


DEMO = Path(__file__).resolve().parents[2] / "sample_traces" / "support-triage-demo.jsonl"
# Envelope fields an import makes anew: ids (derived from the trace), the chain, the source.
_NEW = {"id", "run_id", "parent_id", "hash", "source", "intent_id", "metadata"}


def test_governed_runs_survive_the_otlp_round_trip(store: SqlStore, tmp_path: Path) -> None:
    """The demo's runs (grants, credential fingerprints, intents, approvals, denials, phases,
    checkpoints): every event comes back with the same fields, the state at each checkpoint
    and the run summaries too."""
    store.import_runs(DEMO)
    ids = [r.run_id for r in store.runs()]
    buf = io.BytesIO()
    export_otlp(store, ids, buf)
    path = tmp_path / "demo.otlp.jsonl"
    path.write_bytes(buf.getvalue())
    other = al.open_store(tmp_path / "other.db")
    new = import_otlp(path, other)
    kinds: set[str] = set()
    for old_id, new_id in zip(ids, new, strict=True):
        before = [{k: v for k, v in e.model_dump(mode="json").items() if k not in _NEW}
                  for e in store.events(old_id)]
        after = [{k: v for k, v in e.model_dump(mode="json").items() if k not in _NEW}
                 for e in other.events(new_id)]
        assert after == before
        kinds.update(e["kind"] for e in before)
        assert other.verify(new_id)[0].ok
        assert other.state_at(new_id) == store.state_at(old_id)
        a, b = store.run(old_id), other.run(new_id)
        assert b.model_dump(exclude={"run_id", "head_hash", "holder", "held_until"}) == \
            a.model_dump(exclude={"run_id", "head_hash", "holder", "held_until"})
    assert {"approval", "tool_intent", "checkpoint", "phase", "llm_call"} <= kinds
    # the fingerprints and grants travel as agentlab.* attributes of the tool spans
    text = buf.getvalue().decode()
    assert '"key":"agentlab.credential"' in text and '"key":"agentlab.grant"' in text


def test_a_failed_root_fails_the_run_and_a_bad_trace_is_dropped_alone(
        store: SqlStore, traced: tuple[Tracer, AgentlabSpanExporter, TracerProvider]) -> None:
    tracer, exporter, _ = traced
    with pytest.raises(ValueError), tracer.start_as_current_span("invoke_agent a") as root:
        root.set_attributes({"gen_ai.operation.name": "invoke_agent",
                             "gen_ai.agent.name": "a"})
        raise ValueError("no ticket id")
    [run] = store.runs()
    assert run.status == "errored"
    [ended] = [e for e in store.events(run.run_id) if e.kind == "run_ended"]
    assert ended.error is not None  # type: ignore[union-attr]
    assert (ended.error.type, ended.error.message) == (  # type: ignore[union-attr]
        "ValueError", "ValueError: no ticket id")
    assert "no ticket id" in (ended.error.traceback or "")  # type: ignore[union-attr]
    with tracer.start_as_current_span("invoke_agent b"):
        with tracer.start_as_current_span("execute_tool t") as t:
            t.set_attributes({"gen_ai.operation.name": "execute_tool",
                              "gen_ai.tool.name": "t", "agentlab.phase": "sideways"})
    assert exporter.dropped_traces == 1 and len(store.runs()) == 1


def test_batches_remote_parents_and_the_pending_bound(store: SqlStore) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    exporter = AgentlabSpanExporter(store, max_pending_spans=50)
    provider = TracerProvider()
    # one span per batch: the run is written when the root's batch comes, not before
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=1,
                                                   schedule_delay_millis=10))
    tracer = provider.get_tracer("t")
    _genai_agent(tracer, content=False)
    # a request served for another process: its span's parent is remote
    remote = SpanContext(trace_id=0x5B8EFFF798038103D269B633813FC60C,
                         span_id=0xEEE19B7EC3C1B174, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("invoke_agent helper",
                                      context=trace.set_span_in_context(
                                          NonRecordingSpan(remote))) as s:
        s.set_attributes({"gen_ai.operation.name": "invoke_agent",
                          "gen_ai.agent.name": "helper"})
        with tracer.start_as_current_span("step one"):
            pass
    # a trace whose root stays open past the bound is written unfinished
    open_root = tracer.start_span("invoke_agent long")
    ctx = trace.set_span_in_context(open_root)
    for i in range(60):
        tracer.start_span(f"step {i}", context=ctx).end()
    provider.force_flush()
    runs = {r.agent_name: r for r in store.runs()}
    assert runs["triage"].tool_calls == 3 and runs["triage"].status == "succeeded"
    helper = runs["helper"]
    assert helper.status == "succeeded" and helper.step_count == 1
    assert helper.run_id == otel_run_id("5b8efff798038103d269b633813fc60c",
                                        format(s.get_span_context().span_id, "016x"))
    unfinished = [r for r in store.runs() if r.status == "running"]
    assert len(unfinished) == 1 and unfinished[0].step_count >= 50
    open_root.end()
    provider.shutdown()
    assert store.run(unfinished[0].run_id).status == "succeeded"
    assert store.run(unfinished[0].run_id).step_count == 60
