"""What governance costs a tool call, against the same call recorded without it.

Measured in one run, on one SQLite file (synchronous=FULL), all caller-side wall time:

* read-only call, recorded, no scope (the hot path; the baseline);
* the same call declaring a scope: grant read from the store, scope match, policy, secret
  resolved from the environment and fingerprinted (HMAC), credential in context;
* a side-effecting call under its grant (write-ahead intent + result) without approval;
* the same call through an approval decided at once by an in-process approver (request
  row, decision row with MAC, consume, approval event) - the floor of a human approval.

    .venv/bin/python benchmarks/bench_governance.py
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import machine_line, quantile, table

import agentlab as al

WARMUP, SAMPLES = 200, 2000
SLOW_SAMPLES = 300


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-gov-"))
    os.environ.setdefault("AGENTLAB_KEY_FILE", str(tmp / "key"))
    os.environ["BENCH_CRM_TOKEN"] = "crm-bench-token-4c1d8e"
    store = al.open_store(tmp / "gov.db")
    al.issue_grant(store, "crm", principal="bench", owner="o", workflow="bench",
                   scopes=["crm:read", "jira:write:SUP-*"], secret="env:BENCH_CRM_TOKEN")

    @al.tool
    def lookup(account: str) -> dict[str, Any]:
        return {"account": account, "plan": "enterprise"}

    @al.tool(scope="crm:read")
    def lookup_scoped(account: str) -> dict[str, Any]:
        return {"account": account, "plan": "enterprise"}

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str) -> dict[str, Any]:
        return {"key": f"{project}-1"}

    rows = []
    with al.record_run("bench", agent="bench", store=store, grants=["crm"]) as run:
        timed(lambda: lookup("A1"), WARMUP)
        plain = timed(lambda: lookup("A1"), SAMPLES)
        run.flush()
        timed(lambda: lookup_scoped("A1"), WARMUP)
        scoped = timed(lambda: lookup_scoped("A1"), SAMPLES)
        run.flush()
        timed(lambda: create_issue("SUP-1", "t"), 20)
        acting = timed(lambda: create_issue("SUP-1", "t"), SLOW_SAMPLES)
    ask = al.Policy([al.Rule("ask", "approve", tool="create_issue")])
    with al.record_run("bench", agent="bench", store=store, grants=["crm"], policy=ask,
                       approver=al.auto_approve("bench")):
        timed(lambda: create_issue("SUP-1", "t"), 20)
        approved = timed(lambda: create_issue("SUP-1", "t"), SLOW_SAMPLES)
    store.close()

    base = quantile(plain, 0.5)
    for name, xs in (("read-only, no scope (baseline)", plain),
                     ("read-only, scoped (grant + policy + secret)", scoped),
                     ("side effect under its grant (2 durable records)", acting),
                     ("side effect through an instant approval", approved)):
        p50 = quantile(xs, 0.5)
        rows.append((name, f"{p50:.1f}", f"{quantile(xs, 0.9):.1f}", f"{p50 / base:.1f}x"))
    print(f"# bench_governance | {machine_line()}")
    print(table(["call", "p50 µs", "p90 µs", "vs baseline"], rows))


if __name__ == "__main__":
    main()
