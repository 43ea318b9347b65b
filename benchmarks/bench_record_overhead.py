"""Caller cost of one recorded read-only tool call: agentlab vs a bare call vs an OTel span.

Three versions of one trivial function are called with the same arguments in the same
process: the bare function, the function decorated with ``@agentlab.tool`` inside
``record_run``, and the function wrapped in an OpenTelemetry SDK span (TracerProvider +
BatchSpanProcessor with a no-op exporter; ``gen_ai.*`` attributes with the arguments and the
result as JSON, the way an instrumentation records a tool call). Every call is timed on its
own with ``time.perf_counter_ns``; overhead at quantile q = q(wrapped) - q(bare).

Regimes:
  bursts     bursts of 500 calls; between bursts (untimed) ``run.flush()`` and
             ``provider.force_flush()``, so the background threads are idle while the
             timed calls run: the caller's own cost.
  sustained  one tight loop of 50,000 calls while the background writer (agentlab) or the
             span processor (OTel) drains concurrently and shares the GIL.
Throughput is end to end: a second, untimed-per-call loop of 50,000 calls plus the final
flush (``run.flush()`` / ``provider.force_flush()``), divided into the call count.

Run: .venv/bin/python benchmarks/bench_record_overhead.py
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _util import close_store, header, median, quantile, table, verdict
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer

import agentlab

TARGET_US = 5.0
TARGET_P99_US = 20.0  # sustained, caller's overhead
TARGET_RATIO = 0.08  # agentlab over p50 / OTel span over p50, same run
BURST = 500
BURSTS = 40  # timed bursts per variant (20,000 calls each)
WARMUP_BURSTS = 4
SUSTAINED_N = 50_000
SUSTAINED_REPEATS = 3


def lookup_account(account_id: str) -> dict[str, Any]:
    """The trivial tool: what a read-only lookup returns, without any I/O."""
    return {"account_id": account_id, "tier": "gold", "open_tickets": 2, "region": "eu-west"}


class NoopExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def otel_tool(tracer: Tracer, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` the way a GenAI instrumentation records a tool call as a span."""
    name = fn.__name__
    params = tuple(inspect.signature(fn).parameters)
    span_name = f"execute_tool {name}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        arguments = dict(zip(params, args, strict=False))
        arguments.update(kwargs)
        with tracer.start_as_current_span(span_name) as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", name)
            span.set_attribute("gen_ai.tool.call.arguments", json.dumps(arguments))
            result = fn(*args, **kwargs)
            span.set_attribute("gen_ai.tool.call.result", json.dumps(result))
            return result

    return wrapper


def time_calls(f: Callable[[str], Any], args: Sequence[str]) -> list[int]:
    """Per-call wall time in ns."""
    pc = time.perf_counter_ns
    out = [0] * len(args)
    for i, a in enumerate(args):
        t0 = pc()
        f(a)
        out[i] = pc() - t0
    return out


def run_loop(f: Callable[[str], Any], args: Sequence[str]) -> None:
    for a in args:
        f(a)


def us(ns: float) -> str:
    return f"{ns / 1000:.2f}"


def stats(samples: list[int]) -> dict[str, float]:
    return {
        "p50": quantile(samples, 0.5),
        "p90": quantile(samples, 0.9),
        "p99": quantile(samples, 0.99),
        "mean": sum(samples) / len(samples),
    }


def main() -> None:
    header("bench_record_overhead: caller cost per recorded read-only tool call")
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(NoopExporter(), max_queue_size=1 << 17)  # never drop a span
    )
    tracer = provider.get_tracer("bench")
    bare = lookup_account
    recorded = agentlab.tool(lookup_account)
    traced = otel_tool(tracer, lookup_account)
    variants = {"bare": bare, "agentlab": recorded, "otel": traced}

    with tempfile.TemporaryDirectory() as tmp:
        store = agentlab.open_store(Path(tmp) / "bench.db")

        # -- (a) bursts ------------------------------------------------------------------
        bursts: dict[str, list[int]] = {k: [] for k in variants}
        args = [f"A-{i:06d}" for i in range(BURST)]
        with agentlab.record_run("bench", agent="overhead", store=store) as run:
            gc.collect()
            for b in range(WARMUP_BURSTS + BURSTS):
                order = list(variants)
                order = order[b % 3 :] + order[: b % 3]  # rotate who goes first
                for name in order:
                    run.flush()
                    provider.force_flush()
                    samples = time_calls(variants[name], args)
                    if b >= WARMUP_BURSTS:
                        bursts[name].extend(samples)

        # -- (b) sustained -------------------------------------------------------------------
        sargs = [f"S-{i:06d}" for i in range(SUSTAINED_N)]
        sustained: dict[str, list[int]] = {k: [] for k in variants}
        sustained_medians: dict[str, list[float]] = {k: [] for k in variants}
        throughput: dict[str, list[float]] = {k: [] for k in variants}
        for rep in range(SUSTAINED_REPEATS + 1):  # the first repeat is a warm-up
            for name, f in variants.items():
                gc.collect()
                with agentlab.record_run("bench", agent=f"sustained-{name}", store=store) as run:
                    run.flush()
                    provider.force_flush()
                    samples = time_calls(f, sargs)
                    run.flush()
                    provider.force_flush()
                    # Throughput: the same loop without per-call timers, plus the final flush.
                    t0 = time.perf_counter_ns()
                    run_loop(f, sargs)
                    if name == "agentlab":
                        run.flush()
                    elif name == "otel":
                        provider.force_flush()
                    elapsed = time.perf_counter_ns() - t0
                if name == "agentlab":
                    last_recorded = run.run_id
                if rep == 0:
                    continue
                sustained[name].extend(samples)
                sustained_medians[name].append(quantile(samples, 0.5))
                throughput[name].append(SUSTAINED_N / (elapsed / 1e9))
        stored = store.run(last_recorded).tool_calls
        close_store(store)
        provider.shutdown()

    # -- report -----------------------------------------------------------------------------
    rows = []
    summary: dict[str, dict[str, float]] = {}
    for regime, data in (("bursts", bursts), ("sustained", sustained)):
        base = stats(data["bare"])
        for name in ("bare", "agentlab", "otel"):
            s = stats(data[name])
            over = {k: s[k] - base[k] for k in s}
            summary[f"{regime}/{name}"] = over
            rows.append([
                regime, name, len(data[name]), us(s["p50"]), us(s["p90"]), us(s["p99"]),
                us(s["mean"]),
                "-" if name == "bare" else us(over["p50"]),
                "-" if name == "bare" else us(over["p90"]),
                "-" if name == "bare" else us(over["mean"]),
            ])
    print()
    print("Per-call wall time (us); overhead = same statistic minus the bare call's")
    print(table(
        ["regime", "variant", "calls", "p50", "p90", "p99", "mean",
         "over p50", "over p90", "over mean"],
        rows,
    ))

    print()
    rows = []
    for name in ("bare", "agentlab", "otel"):
        tp = throughput[name]
        meds = sustained_medians[name]
        rows.append([
            name, f"{median(tp):,.0f}", f"{min(tp):,.0f}-{max(tp):,.0f}",
            " / ".join(us(m) for m in meds),
        ])
    print(f"Sustained, {SUSTAINED_N:,} calls x {SUSTAINED_REPEATS} repeats "
          "(throughput includes the final flush)")
    print(table(["variant", "events/s (median)", "range", "p50 per repeat (us)"], rows))

    print()
    rows = []
    for regime in ("bursts", "sustained"):
        al = summary[f"{regime}/agentlab"]
        ot = summary[f"{regime}/otel"]
        rows.append([
            regime, us(al["p50"]), us(ot["p50"]), f"{ot['p50'] / al['p50']:.1f}x",
            f"{ot['mean'] / al['mean']:.1f}x",
        ])
    tp_ratio = median(throughput["agentlab"]) / median(throughput["otel"])
    print(table(
        ["regime", "agentlab over p50", "otel over p50", "otel/agentlab p50",
         "otel/agentlab mean"],
        rows,
    ))
    print(f"end-to-end throughput agentlab/otel: {tp_ratio:.1f}x")
    print(f"(check: the last agentlab sustained run stored {stored:,} tool calls, "
          f"expected {2 * SUSTAINED_N:,})")

    print()
    for regime in ("bursts", "sustained"):
        over = summary[f"{regime}/agentlab"]["p50"] / 1000
        print(f"target: agentlab median overhead <= {TARGET_US:.0f} us [{regime}]: "
              f"{over:.2f} us -> {verdict(over <= TARGET_US)}")
    p99 = summary["sustained/agentlab"]["p99"] / 1000
    print(f"target: agentlab p99 overhead <= {TARGET_P99_US:.0f} us [sustained]: "
          f"{p99:.2f} us -> {verdict(p99 <= TARGET_P99_US)}")
    for regime in ("bursts", "sustained"):
        ratio = summary[f"{regime}/agentlab"]["p50"] / summary[f"{regime}/otel"]["p50"]
        print(f"target: agentlab/OTel span over p50 <= {TARGET_RATIO:.2f}x [{regime}]: "
              f"{ratio:.3f}x -> {verdict(ratio <= TARGET_RATIO)}")


if __name__ == "__main__":
    main()
