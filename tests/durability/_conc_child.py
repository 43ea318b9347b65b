"""Worker process of test_concurrency.py.

Usage: python _conc_child.py (recorder|shared) URL SCHEMA|- WORKER EVENTS SEED RESULT_JSON [RUN_ID]

Prints ``READY`` once the store is open, waits for a line on stdin (a start barrier so all
workers contend from the same moment), writes ``EVENTS`` events, then writes its report
to RESULT_JSON and exits 0. Any exception is written to the report and exits 2.

``recorder``: records its own runs (10 runs of EVENTS/10 events, each counting its
run_started and run_ended) through ``record_run`` with read-only tools, state changes,
a few side-effecting tools and ``run.flush()`` every 5-40 events. Reports per run the
number of events and of side-effecting calls it recorded.

``shared``: appends EVENTS events to the existing run RUN_ID with ``store.append`` in
batches of 1-20. Reports every batch as the list of (event_id, seq) the store returned.

Both report warnings logged by agentlab (the background writer logs a batch it failed to
store, e.g. on "database is locked", before retrying it).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
import traceback
from typing import Any


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _recorder(store: Any, worker: int, n_events: int, rng: random.Random) -> dict[str, Any]:
    from agentlab import record_run, tool
    from agentlab.testing import allow_all

    @tool
    def lookup(key: str, i: int) -> dict[str, Any]:
        return {"key": key, "i": i, "worker": worker}

    @tool(side_effect=True, scope="target:act")
    def act(target: str, i: int) -> str:
        return f"did {target} {i}"

    n_runs = 10
    per_run = n_events // n_runs
    assert per_run * n_runs == n_events and per_run >= 10
    runs: list[dict[str, Any]] = []
    for r in range(n_runs):
        with record_run("concurrency", agent=f"worker-{worker}", store=store,
                        task_id=f"w{worker}-r{r}",
                        grants=[allow_all(store, agent=f"worker-{worker}")]) as run:
            n = 1  # run_started
            target = per_run - 1  # leave room for run_ended
            next_flush = n + rng.randint(5, 40)
            i = 0
            actions = 0
            while n < target:
                i += 1
                room = target - n
                if room >= 2 and i % 97 == 0:
                    act(f"t{worker}", i)  # intent + result, both committed durably
                    n += 2
                    actions += 1
                elif i % 11 == 0:
                    run.state[f"k{i % 4}"] = {"i": i, "worker": worker}
                    n += 1
                else:
                    lookup(f"k{i % 7}", i)
                    n += 1
                if n >= next_flush:
                    run.flush()
                    next_flush = n + rng.randint(5, 40)
        runs.append({"run_id": run.run_id, "events": n + 1, "actions": actions})
    return {"runs": runs, "committed": sum(r["events"] for r in runs)}


def _shared(store: Any, worker: int, n_events: int, rng: random.Random,
            run_id: str) -> dict[str, Any]:
    from agentlab.model import dumps, new_id
    from agentlab.store import PendingEvent

    batches: list[list[tuple[str, int]]] = []
    left = n_events
    k = 0
    while left:
        size = min(left, rng.randint(1, 20))
        batch = []
        for _ in range(size):
            k += 1
            if k % 5 == 0:
                body = {"kind": "step", "name": f"w{worker}-{k}"}
            else:
                body = {"kind": "tool_call", "tool": "search", "call_id": f"w{worker}-{k}",
                        "arguments": {"q": k}, "result": {"worker": worker, "k": k},
                        "status": "ok"}
            batch.append(PendingEvent(run_id, new_id(), None, time.time_ns() // 1000,
                                      body["kind"], dumps(body)))
        got = store.append(batch)
        if [a.event_id for a in got] != [ev.event_id for ev in batch]:
            raise AssertionError(f"append returned {len(got)} acks for {len(batch)} events")
        batches.append([(a.event_id, a.seq) for a in got])
        left -= size
    return {"batches": batches, "committed": sum(len(b) for b in batches)}


def main() -> None:
    mode, url, schema, worker, n_events, seed, result_path = sys.argv[1:8]
    run_id = sys.argv[8] if len(sys.argv) > 8 else ""
    report: dict[str, Any] = {"worker": int(worker), "errors": []}
    handler = _Count()
    logging.getLogger("agentlab").addHandler(handler)
    rc = 0
    try:
        from agentlab.store import open_store

        store = open_store(url, schema=None if schema == "-" else schema)
        print("READY", flush=True)
        sys.stdin.readline()
        rng = random.Random(int(seed))
        t0 = time.monotonic()
        if mode == "recorder":
            report.update(_recorder(store, int(worker), int(n_events), rng))
        else:
            report.update(_shared(store, int(worker), int(n_events), rng, run_id))
        report["seconds"] = time.monotonic() - t0
        store.close()
    except BaseException as exc:
        report["errors"].append("".join(traceback.format_exception(exc)))
        rc = 2
    report["warnings"] = handler.messages
    with open(result_path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(report, fh)
    os.replace(result_path + ".tmp", result_path)
    sys.stdout.flush()
    sys.exit(rc)


if __name__ == "__main__":
    main()
