"""Secret redaction pre-check: ``Redactor.might_contain`` on recorded event bodies.

The background writer calls ``might_contain`` on every event's canonical bytes and decodes
and walks only the bodies it flags. Measured here with 20 known secrets plus the default
patterns: a typical ~200-byte tool-call body without secrets, the same body with a known
secret in it, and every event body of the sample trace (sample_traces/). Baseline, same
run and bytes: ``orjson.loads`` (the cheapest thing the writer could do instead). For
information: ``scrub_json`` on the body with the secret (the cost of a hit), and how many
sample bodies are flagged (false positives: none of them holds a secret).
Each figure is the median (and p90) over 200 batches of 500 calls. Target: <= 3 µs for the
clean 200-byte body.

Run: .venv/bin/python benchmarks/bench_redact.py
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from _util import header, median, quantile, table, verdict

from agentlab.identity import Redactor
from agentlab.model import canonical_body

SECRETS = 20
BATCHES = 200
CALLS = 500
TARGET_US = 3.0
SAMPLE = Path(__file__).resolve().parent.parent / "sample_traces" / "support-triage-demo.jsonl"


def per_call_us(fn: Callable[[], Any]) -> list[float]:
    """Microseconds per call, one figure per batch of CALLS calls."""
    out = []
    for _ in range(BATCHES):
        t = time.perf_counter_ns()
        for _ in range(CALLS):
            fn()
        out.append((time.perf_counter_ns() - t) / CALLS / 1000)
    return out


def sample_bodies() -> list[bytes]:
    bodies = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("type") == "event":
            bodies.append(canonical_body(rec["body"]))
    return bodies


def main() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_"
    secrets = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(SECRETS)]
    redactor = Redactor(secrets=secrets)
    def tool_call(query: str) -> dict[str, Any]:
        return {
            "kind": "tool_call", "tool": "search_tickets", "call_id": "call_8f2a",
            "duration_ms": 1.234, "arguments": {"query": query, "limit": 10},
            "result": {"ids": ["SUP-57", "SUP-58"], "total": 2, "next": None},
        }

    clean = canonical_body(tool_call("refund for order 8812"))
    dirty = canonical_body(tool_call(f"refund for order 8812 key={secrets[11]}"))
    assert not redactor.might_contain(clean) and redactor.might_contain(dirty)
    assert redactor.scrub_json(dirty) is not None
    samples = sample_bodies()
    flagged = sum(redactor.might_contain(b) for b in samples)

    def each_sample(fn: Callable[[bytes], Any]) -> Callable[[], None]:
        def run() -> None:
            for b in samples:
                fn(b)
        return run

    rows_in = [
        ("might_contain, clean body", clean, lambda: redactor.might_contain(clean), 1),
        ("orjson.loads, clean body (baseline)", clean, lambda: orjson.loads(clean), 1),
        ("might_contain, body with a secret", dirty, lambda: redactor.might_contain(dirty), 1),
        ("scrub_json, body with a secret", dirty, lambda: redactor.scrub_json(dirty), 1),
        ("might_contain, sample bodies", None, each_sample(redactor.might_contain),
         len(samples)),
        ("orjson.loads, sample bodies (baseline)", None, each_sample(orjson.loads),
         len(samples)),
    ]
    results: dict[str, float] = {}
    rows = []
    for name, data, fn, per in rows_in:
        xs = [x / per for x in per_call_us(fn)]
        results[name] = median(xs)
        size = len(data) if data is not None else sum(map(len, samples)) // len(samples)
        rows.append((name, size, f"{median(xs):.2f}", f"{quantile(xs, 0.9):.2f}"))
    header("bench_redact: might_contain pre-check, 20 known secrets + default patterns")
    print(table(["variant", "bytes/body", "p50 µs", "p90 µs"], rows))
    print(f"sample trace: {flagged} of {len(samples)} bodies flagged (none holds a secret)")
    p50 = results["might_contain, clean body"]
    base = results["orjson.loads, clean body (baseline)"]
    print(f"target <= {TARGET_US} µs: {verdict(p50 <= TARGET_US)} ({p50:.2f} µs); "
          f"might_contain / orjson.loads = {p50 / base:.2f}x")


if __name__ == "__main__":
    main()
