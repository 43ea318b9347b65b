"""State diff of two ~200 KB states that differ in 3 leaves: tree diff vs a plain diff.

The tree diff (agentlab.analysis.diff_trees) compares content-addressed trees and skips
subtrees whose hashes are equal; the baseline is agentlab's own plain recursive diff
(diff_values) over the decoded values, measured in the same run. Target (issue 4): <= 0.1 ms.
Nodes are read from memory, as they are once a reader has cached them; a cold read from the
store adds one query per tree level.

    .venv/bin/python benchmarks/bench_diff.py
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from _util import machine_line

from agentlab.analysis import diff_trees, diff_values
from agentlab.model import TreeEncoder, TreeReader, dumps


def make_states() -> tuple[dict[str, Any], dict[str, Any]]:
    a: dict[str, Any] = {
        f"doc{i}": {"title": f"Document {i}", "body": f"{i} " + "lorem ipsum " * 80, "rev": 1}
        for i in range(200)
    }
    a["meta"] = {"owner": "support", "tags": [f"t{i}" for i in range(50)]}
    b = {k: (dict(v) if isinstance(v, dict) else v) for k, v in a.items()}
    b["doc3"]["rev"] = 2
    b["doc120"]["title"] = "Changed"
    b["meta"] = {**a["meta"], "owner": "engineering"}
    return a, b


def timed(fn: Any, repeat: int = 2000) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main() -> None:
    a, b = make_states()
    enc = TreeEncoder()
    ra, rb = enc.node(a), enc.node(b)
    blobs = enc.blobs
    reader = TreeReader(lambda hs: {h: blobs[h] for h in hs if h in blobs})
    reader.prefetch([ra, rb])
    assert diff_trees(reader, ra, rb) == diff_values(a, b)
    changes = diff_trees(reader, ra, rb)
    tree = timed(lambda: diff_trees(reader, ra, rb))
    plain = timed(lambda: diff_values(a, b), repeat=300)
    print(f"# bench_diff | {machine_line()}")
    print(f"state size {len(dumps(a)) / 1024:.0f} KB, {len(changes)} changed leaves")
    print(f"{'variant':<34}{'p50 µs':>10}{'p90 µs':>10}")
    for name, xs in (("tree diff (diff_trees)", tree), ("plain recursive diff (diff_values)", plain)):
        xs.sort()
        print(f"{name:<34}{statistics.median(xs):>10.1f}{xs[int(len(xs) * 0.9)]:>10.1f}")
    p50 = statistics.median(tree)
    print(f"target <= 100 µs: {'met' if p50 <= 100 else 'NOT met'} ({p50:.1f} µs); "
          f"plain diff / tree diff = {statistics.median(plain) / p50:.1f}x")


if __name__ == "__main__":
    main()
