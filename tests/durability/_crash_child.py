"""Child process of test_crash.py: records agent runs into a SQLite store until killed.

Usage: python _crash_child.py (loop|once) STORE_PATH SEED

The child imports agentlab, prints ``LOADED`` and waits for a line on stdin (so the
parent can start it early and overlap the import with other work), then opens the store
and prints ``READY``. In ``loop`` mode it records runs forever; in ``once`` mode it
records one complete run and exits 0.

Protocol (one line per message, each written with a single write and flushed):

``RUN <run_id>``
    a run was entered (its run_started event is queued, maybe not committed yet).
``ACK <run_id> <n>``
    printed right after ``run.flush()`` returned: the run's first ``n`` events are
    committed. ``n`` is counted by this script from what it recorded (run_started 1,
    read-only tool call 1, state assignment 1 checkpoint, llm_call 1, side-effecting
    call 2: intent + result), and cross-checked against ``store.run(run_id).last_seq``.
``STARTED <marker> <run_id> <n>``
    printed inside the side-effecting tool's body, i.e. before the side effect, after
    its intent was committed durably. ``write_now`` commits everything queued together
    with the intent, so the run has at least ``n`` committed events (``n`` includes it).
``DONE <marker> <run_id> <n>``
    the side-effecting call returned, so its tool_call result (``n``-th event) is
    committed.
``ENDED <run_id> <n>``
    the ``with record_run(...)`` block exited; the run has exactly ``n`` events and its
    status is ``succeeded``.
``BAD <text>``
    the child's own cross-check failed; it exits with status 3.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any


def main() -> None:
    mode, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from agentlab import open_store, record_run, tool
    from agentlab.testing import allow_all

    out = sys.stdout

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    say("LOADED")
    if not sys.stdin.readline():
        return
    rng = random.Random(seed)
    store = open_store(path)
    say("READY")

    count = [0]  # events recorded so far in the current run
    grant = allow_all(store, agent="crash-child")

    @tool
    def lookup(key: str, i: int) -> dict[str, Any]:
        # Every 17th result is large enough to be split into blobs by the store.
        return {"key": key, "i": i, "pad": "x" * (3000 if i % 17 == 0 else i % 40)}

    @tool(side_effect=True, scope="mail:send", idempotency_key=lambda a: str(a["marker"]))
    def send(marker: str, run_id: str) -> dict[str, str]:
        say(f"STARTED {marker} {run_id} {count[0]}")
        return {"sent": marker}

    def bad(text: str) -> None:
        say(f"BAD {text}")
        os._exit(3)

    run_no = 0
    while True:
        run_no += 1
        steps = rng.randint(20, 400) if mode == "loop" else 60
        with record_run("crash-test", agent="crash-child", store=store,
                        task_input={"seed": seed, "run": run_no}, grants=[grant]) as run:
            rid = run.run_id
            count[0] = 1
            say(f"RUN {rid}")
            until_flush = rng.randint(1, 12)
            for i in range(steps):
                r = rng.random()
                if r < 0.70:
                    lookup(f"k{i % 9}", i)
                    count[0] += 1
                elif r < 0.84:
                    value: Any = {"i": i, "items": list(range(i % 50))}
                    if i % 23 == 0:
                        value = {"i": i, "big": ["y" * 64] * 80}
                    run.state[f"s{i % 5}"] = value
                    count[0] += 1
                elif r < 0.92:
                    run.llm_call("m-test", messages=[{"role": "user", "content": f"q{i}"}],
                                 response=f"a{i}", input_tokens=10, output_tokens=5,
                                 cost_usd=0.001)
                    count[0] += 1
                else:
                    marker = f"{rid}:{i}"
                    count[0] += 1  # the intent, committed before the body runs
                    send(marker, rid)
                    count[0] += 1  # the result, committed before send() returns
                    say(f"DONE {marker} {rid} {count[0]}")
                until_flush -= 1
                if until_flush <= 0:
                    run.flush()
                    last = store.run(rid).last_seq
                    if last != count[0]:
                        bad(f"after flush run {rid} has last_seq {last}, recorded {count[0]}")
                    say(f"ACK {rid} {count[0]}")
                    until_flush = rng.randint(1, 12)
        summary = store.run(rid)
        if summary.last_seq != count[0] + 1 or summary.status != "succeeded":
            bad(f"ended run {rid}: last_seq {summary.last_seq} (expected {count[0] + 1}), "
                f"status {summary.status}")
        say(f"ENDED {rid} {summary.last_seq}")
        if mode == "once":
            store.close()
            return


if __name__ == "__main__":
    main()
