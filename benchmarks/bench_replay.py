"""Strict replay of a recorded 10,000-step run, next to recording the same run.

The agent (module level, so a replay can run it again) makes 1,000 named steps, each with
8 read-only ``@tool`` calls and 2 ``@llm`` model calls (a fake model: no I/O, a
``ModelReply`` with token counts) and one ``run.state[...]`` write: 10,000 recorded calls,
1,000 step events and 1,000 checkpoints (12,002 events with ``run_started`` and
``run_ended``). Per repeat, in a fresh SQLite store (``synchronous=FULL``, the default):

  record   ``bench_agent.run(...)`` end to end: the agent recording the run, including the
           final flush (the baseline).
  replay   ``replay(store, run_id, agent=bench_agent, mode="strict")`` end to end: loading
           and verifying the record, re-running the code with every call served from the
           record, recording the replay run (with its flush), comparing it with the record;
           ``.identical`` is asserted. The breakdown times the replay's own phases by
           wrapping ``agentlab.recovery._operations._load`` / ``_run_code`` / ``_result`` in
           this process (three calls per replay, library code unchanged).
  pieces   for information, after the replay and outside it, the same work piece by piece on
           the same runs: ``store.verify``, ``store.events``, indexing the calls, and the
           comparison (``run_shape`` of both runs, the state at the end of both).
  info     ``replay(..., agent=bench_agent)`` without ``mode=``: with ``agent=`` given the
           default mode is ``after_fix`` (``identical`` is then always False); and
           another record + strict replay pair with cyclic GC disabled (``gc.disable()``),
           to show the collector's share.

Target (issue): strict replay time per step <= 1.0x the recording time per step. Wall and
process CPU time (all threads) are both reported: CPU close to wall means no I/O waits.
  with I/O one more record + strict replay pair, of 100 steps whose tools wait 1 ms and
           whose model waits 10 ms per call when they run (a replay serves them): the
           case the target is about, since serving from the record waits on nothing.

``--cprofile`` profiles one strict replay (cProfile, main thread) and prints where the time
goes instead of the benchmark.

``--postgres URL`` runs the same on a PostgreSQL server (a new schema per repeat).

Run: .venv/bin/python benchmarks/bench_replay.py [--repeats N] [--postgres URL] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import close_store, header, median, table, verdict

import agentlab as al
import agentlab.recovery._operations as _ops
from agentlab.record import ModelReply, RecordedRun, agent, current_run, llm, tool
from agentlab.record._recorded import index_calls
from agentlab.recovery import replay, run_shape

STEPS = 1_000
TOOLS_PER_STEP = 8
LLM_PER_STEP = 2
CALLS = STEPS * (TOOLS_PER_STEP + LLM_PER_STEP)  # 10,000 recorded calls
TARGET_RATIO = 1.0
REPEATS = 5  # after one warm-up repeat
IO_STEPS = 100  # the with-I/O variant: 1,000 calls
IO_LATENCY = {"tool": 0.001, "model": 0.010}
"""Seconds a call waits in the with-I/O variant: a 1 ms local lookup and a 10 ms model call,
both far below a hosted model's or a remote API's latency."""
LATENCY = {"tool": 0.0, "model": 0.0}


@tool
def lookup_account(account_id: str) -> dict[str, Any]:
    """A read-only lookup without I/O (the same shape as bench_record_overhead's)."""
    if LATENCY["tool"]:
        time.sleep(LATENCY["tool"])
    return {"account_id": account_id, "tier": "gold", "open_tickets": 2, "region": "eu-west"}


@llm(model="fake-model", provider="bench")
def ask(messages: list[dict[str, str]], temperature: float = 0.0) -> ModelReply:
    """A model call without a model: a short structured answer with token counts."""
    if LATENCY["model"]:
        time.sleep(LATENCY["model"])
    n = len(messages[-1]["content"])
    return ModelReply({"action": "next", "confidence": n % 10 / 10}, input_tokens=40 + n,
                      output_tokens=12)


@agent("bench-replay", version="1.0", name="bench-bot")
def bench_agent(task_input: dict[str, Any]) -> int:
    run = current_run()
    assert run is not None
    n = 0
    for s in range(task_input["steps"]):
        with al.step(f"step-{s % 20}"):
            for _ in range(TOOLS_PER_STEP):
                lookup_account(f"A-{n:06d}")
                n += 1
            for _ in range(LLM_PER_STEP):
                answer = ask([{"role": "user", "content": f"step {s}, call {n}"}])
                n += 1
            run.state["progress"] = {"step": s, "calls": n, "last": answer}
    run.outcome(success=True)
    return n


class PhaseTimer:
    """Wall time of the replay's own phases, by wrapping the module functions it calls."""

    NAMES = ("_load", "_run_code", "_result")

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self._orig: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> PhaseTimer:
        for name in self.NAMES:
            fn = self._orig[name] = getattr(_ops, name)
            setattr(_ops, name, self._wrap(name, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._orig.items():
            setattr(_ops, name, fn)

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.last[name] = self.last.get(name, 0.0) + time.perf_counter() - t0
        return timed


def clocked(fn: Callable[[], Any], *, no_gc: bool = False) -> tuple[Any, float, float]:
    """(result, wall s, process CPU s of all threads); ``no_gc``: cyclic GC disabled."""
    gc.collect()
    if no_gc:
        gc.disable()
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0, time.process_time() - c0
    finally:
        gc.enable()


def drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from agentlab.store import normalise_url

    eng = create_engine(normalise_url(url), poolclass=NullPool)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


def one_repeat(tmp: Path, i: int, phases: PhaseTimer, pg_url: str | None) -> dict[str, float]:
    schema = f"bench_replay_{uuid.uuid4().hex[:12]}" if pg_url else None
    store = (al.open_store(pg_url, schema=schema) if pg_url
             else al.open_store(tmp / f"replay-{i}.db"))
    try:
        rec, rec_s, rec_cpu = clocked(lambda: bench_agent.run({"steps": STEPS}, store=store))
        assert rec.output == CALLS and rec.success is True
        phases.last = {}
        res, rep_s, rep_cpu = clocked(
            lambda: replay(store, rec.run_id, agent=bench_agent, mode="strict"))
        assert res.identical, res.to_text()
        assert res.counts["served"] == CALLS, res.counts
        row = {"record": rec_s, "record_cpu": rec_cpu, "replay": rep_s, "replay_cpu": rep_cpu,
               "load": phases.last["_load"], "run": phases.last["_run_code"],
               "result": phases.last["_result"]}
        row["other"] = rep_s - row["load"] - row["run"] - row["result"]

        # The same work piece by piece, outside the replay, on the same two runs.
        def piece(name: str, fn: Callable[[], Any]) -> Any:
            out, row[name], _ = clocked(fn)
            return out
        piece("p_verify", lambda: store.verify(rec.run_id))
        events = piece("p_events", lambda: store.events(rec.run_id))
        piece("p_index", lambda: list(index_calls(store, events)))
        new_events = piece("p_events_new", lambda: store.events(res.run_id))
        piece("p_shape", lambda: (run_shape(events), run_shape(new_events)))
        piece("p_state", lambda: (store.state_at(rec.run_id), store.state_at(res.run_id)))
        piece("p_load", lambda: RecordedRun.load(store, rec.run_id))

        info, row["after_fix"], _ = clocked(lambda: replay(store, rec.run_id, agent=bench_agent))
        row["after_fix_identical"] = float(info.identical)
        assert info.mode == "after_fix"
        # Cyclic GC's share: the same pair again with the collector off (information).
        rec2, row["record_nogc"], _ = clocked(
            lambda: bench_agent.run({"steps": STEPS}, store=store), no_gc=True)
        res2, row["replay_nogc"], _ = clocked(
            lambda: replay(store, rec2.run_id, agent=bench_agent, mode="strict"), no_gc=True)
        assert res2.identical
        summary = store.run(rec.run_id)
        row["events"] = float(summary.last_seq)
        row["steps"] = float(summary.step_count)
        return row
    finally:
        close_store(store)
        if pg_url and schema:
            drop_schema(pg_url, schema)


def with_io(tmp: Path) -> tuple[float, float]:
    """(record s, strict replay s) of an IO_STEPS-step run whose tools and model wait
    IO_LATENCY per call when they run; a replay serves them, so it never waits."""
    store = al.open_store(tmp / "with-io.db")
    LATENCY.update(IO_LATENCY)
    try:
        rec, rec_s, _ = clocked(lambda: bench_agent.run({"steps": IO_STEPS}, store=store))
        res, rep_s, _ = clocked(lambda: replay(store, rec.run_id, agent=bench_agent,
                                               mode="strict"))
        assert res.identical, res.to_text()
        return rec_s, rep_s
    finally:
        LATENCY.update(tool=0.0, model=0.0)
        close_store(store)


def profile_one(tmp: Path) -> None:
    store = al.open_store(tmp / "profile.db")
    try:
        bench_agent.run({"steps": STEPS}, store=store)  # warm-up: imports, git state
        rec = bench_agent.run({"steps": STEPS}, store=store)
        prof = cProfile.Profile()
        gc.collect()
        prof.enable()
        res = replay(store, rec.run_id, agent=bench_agent, mode="strict")
        prof.disable()
        assert res.identical
    finally:
        close_store(store)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue().replace(str(Path(al.__file__).parent.parent) + os.sep, ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/"
                             "test) instead of SQLite; one new schema per repeat, dropped after")
    parser.add_argument("--cprofile", action="store_true",
                        help="profile one strict replay instead of benchmarking")
    args = parser.parse_args()
    header("bench_replay: strict replay of a 10,000-step run vs recording it")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.cprofile:
            profile_one(tmp)
            return
        rows = []
        with PhaseTimer() as phases:
            for i in range(args.repeats + 1):
                row = one_repeat(tmp, i, phases, args.postgres)
                if i:  # the first repeat is a warm-up
                    rows.append(row)
        io_record, io_replay = with_io(tmp)

    def col(name: str) -> list[float]:
        return [r[name] for r in rows]

    def us_step(name: str) -> list[float]:
        return [r[name] / CALLS * 1e6 for r in rows]

    def fmt_row(label: str, xs: list[float], unit: str = "us") -> list[str]:
        f = "{:.1f}" if unit == "us" else "{:.2f}"
        return [label, f.format(min(xs)), f.format(median(xs)), f.format(max(xs))]

    r0 = rows[0]
    print(f"store: {'PostgreSQL ' + args.postgres if args.postgres else 'SQLite file'}")
    print(f"run: {CALLS:,} calls ({STEPS * TOOLS_PER_STEP:,} @tool, {STEPS * LLM_PER_STEP:,} "
          f"@llm), {STEPS:,} steps, {STEPS:,} state writes; {r0['events']:,.0f} events, "
          f"summary step_count {r0['steps']:,.0f}; {len(rows)} repeats after a warm-up")
    print()
    print(f"Per step (us per recorded call; / {CALLS:,}); min / median / max over repeats")
    print(table(["variant", "min", "median", "max"], [
        fmt_row("record, end to end incl. final flush (baseline)", us_step("record")),
        fmt_row("  process CPU, all threads", us_step("record_cpu")),
        fmt_row("strict replay, end to end (the target)", us_step("replay")),
        fmt_row("  process CPU, all threads", us_step("replay_cpu")),
        fmt_row("  load + verify the record (_load)", us_step("load")),
        fmt_row("  run the code served from the record, incl. flush (_run_code)",
                us_step("run")),
        fmt_row("  compare with the record, state diff (_result)", us_step("result")),
        fmt_row("  other (code lookup, record_run setup)", us_step("other")),
        fmt_row("info: replay(agent=...) without mode= (after_fix)", us_step("after_fix")),
        fmt_row("info: record, cyclic GC disabled", us_step("record_nogc")),
        fmt_row("info: strict replay, cyclic GC disabled", us_step("replay_nogc")),
    ]))
    print()
    print("Pieces, timed alone outside the replay on the same runs (ms)")
    ms = [[name, *(f"{v * 1000:.0f}" for v in (min(col(k)), median(col(k)), max(col(k))))]
          for name, k in (
              ("RecordedRun.load (verify + events + index)", "p_load"),
              ("  store.verify(recorded run)", "p_verify"),
              ("  store.events(recorded run)", "p_events"),
              ("  index_calls (signatures of 10,000 calls)", "p_index"),
              ("store.events(replay run) (for the comparison)", "p_events_new"),
              ("run_shape of both runs", "p_shape"),
              ("state_at of both runs", "p_state"),
          )]
    print(table(["piece", "min", "median", "max"], ms))
    print()
    ratios = [r["replay"] / r["record"] for r in rows]
    run_ratios = [r["run"] / r["record"] for r in rows]
    print("replay / record, paired per repeat: " + " ".join(f"{x:.2f}" for x in ratios)
          + f"  (min {min(ratios):.2f}, median {median(ratios):.2f})")
    nogc = [r["replay_nogc"] / r["record_nogc"] for r in rows]
    print(f"with cyclic GC disabled in both: median {median(nogc):.2f}; "
          f"the run phase alone / record: median {median(run_ratios):.2f}; "
          f"after_fix replay identical: {bool(r0['after_fix_identical'])}")
    io_calls = IO_STEPS * (TOOLS_PER_STEP + LLM_PER_STEP)
    print(f"info, with I/O ({IO_LATENCY['tool'] * 1e3:.0f} ms per tool call, "
          f"{IO_LATENCY['model'] * 1e3:.0f} ms per model call when they run; {io_calls:,} "
          f"calls, one pair): record {io_record * 1e6 / io_calls:,.0f} us/step, strict replay "
          f"{io_replay * 1e6 / io_calls:,.0f} us/step = {io_replay / io_record:.3f}x")
    print(f"load avg after: {os.getloadavg()[0]:.2f}")
    ratio = median(ratios)
    print(f"target: strict replay per step <= {TARGET_RATIO:.1f}x recording: "
          f"{median(us_step('replay')):.1f} vs {median(us_step('record')):.1f} us/step = "
          f"{ratio:.2f}x -> {verdict(ratio <= TARGET_RATIO)}")


if __name__ == "__main__":
    main()
