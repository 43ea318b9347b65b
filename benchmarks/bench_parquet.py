"""Steps at scale from a Parquet export: polars reads 2,000,000 steps in about 0.1 s.

Fills a SQLite store with the runs ``bench_scale.py`` writes (9 events a run: start, two
phases, two model calls, two tool calls, a checkpoint, the end) until it holds about
``--steps`` events, exports it with ``export_parquet``, then times, median of 5 after one
warm-up:

* ``polars.read_parquet(steps.parquet)``: the whole steps table into memory (target ≈ 0.1 s
  for 2,000,000 steps, issue 12);
* ``read_parquet(folder, "steps", engine="polars")``: the same frame as ``steps_df``, typed
  as the store-backed function types it;
* a lazy scan with an aggregate (cost, errors and steps per kind): what an analysis does;
* baseline, once: ``steps_df(store, engine="polars")``, the same frame from the store.

    .venv/bin/python benchmarks/bench_parquet.py [--steps 2000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import machine_line, table, verdict
from bench_scale import Filler

import agentlab as al
from agentlab.query import export_parquet, read_parquet, steps_df

TARGET_S = 0.1
EVENTS_PER_RUN = 9
REPEAT = 5


def timed(f: Callable[[], Any], repeat: int = REPEAT) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls after one warm-up, and the last result."""
    out = f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2_000_000, help="events to store (about)")
    ap.add_argument("--keep", type=Path, help="build the store and export in DIR, kept")
    args = ap.parse_args()
    import polars as pl

    folder = args.keep or Path(tempfile.mkdtemp(prefix="agentlab-parquet-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    store = al.open_store(folder / "steps.db", durability="normal")
    runs = -(-args.steps // EVENTS_PER_RUN)
    fill_s = Filler(store, t0_us=1_764_000_000_000_000).fill_to(runs)
    t = time.perf_counter()
    rows = export_parquet(store, folder / "export")
    export_s = time.perf_counter() - t
    steps_file = folder / "export" / "steps.parquet"
    size_mb = steps_file.stat().st_size / 1e6
    print(f"{runs:,} runs, {rows['steps']:,} steps: filled in {fill_s:.1f} s, exported in "
          f"{export_s:.1f} s; steps.parquet {size_mb:.1f} MB")

    read_s, frame = timed(lambda: pl.read_parquet(steps_file))
    typed_s, typed = timed(lambda: read_parquet(folder / "export", "steps", engine="polars"))
    agg_s, agg = timed(lambda: pl.scan_parquet(steps_file).group_by("kind").agg(
        pl.len().alias("steps"), pl.col("cost_usd").sum(),
        (pl.col("status") == "error").sum().alias("errors")).collect())
    t = time.perf_counter()
    from_store = steps_df(store, engine="polars")
    store_s = time.perf_counter() - t
    assert frame.height == typed.height == from_store.height == rows["steps"]
    assert typed.equals(from_store), "read_parquet must give steps_df's frame"
    assert int(agg["steps"].sum()) == rows["steps"]

    print(table(["read", "seconds", "x the store"], [
        ["polars.read_parquet(steps.parquet)", f"{read_s:.3f}", f"{read_s / store_s:.3f}x"],
        ["read_parquet(folder, 'steps', engine='polars')", f"{typed_s:.3f}",
         f"{typed_s / store_s:.3f}x"],
        ["scan_parquet + group_by kind (cost, errors, steps)", f"{agg_s:.3f}",
         f"{agg_s / store_s:.3f}x"],
        ["baseline: steps_df(store, engine='polars'), once", f"{store_s:.3f}", "1x"],
    ]))
    print(f"target: {rows['steps']:,} steps read from Parquet in <= {TARGET_S} s: "
          f"{read_s:.3f} s -> {verdict(read_s <= TARGET_S)}")
    store.close()


if __name__ == "__main__":
    main()
