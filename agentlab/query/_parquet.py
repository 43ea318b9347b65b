"""Runs, steps, checkpoints and approvals as Parquet files, and frames read back from them.

``export_parquet(store, folder)`` writes one file per table into ``folder``:

===================  ==========================  ======================================
file                 one row per                 columns (and their types)
===================  ==========================  ======================================
``runs.parquet``     run                         :data:`~agentlab.query.RUN_TYPES`
``steps.parquet``    event, by run then seq      :data:`~agentlab.query.STEP_TYPES`
``checkpoints``      state checkpoint            :data:`~agentlab.query.CHECKPOINT_TYPES`
``approvals``        approval request            :data:`~agentlab.query.APPROVAL_TYPES`
===================  ==========================  ======================================

The columns are the frames' (:mod:`agentlab.query`): a file is what ``runs_df`` and the
others return, with times as ``timestamp[us, UTC]``, counts as ``int64`` and lists of keys
as ``list<string>``. Payloads (arguments, results, messages) stay in the store: the files
are for counting and joining at scale (polars, DuckDB, Spark), the store for looking at a
run. The files are written beside the folder and moved in together at the end, so a reader
never sees a half export; the previous export's files are replaced only then.

:func:`read_parquet` builds the same pandas or polars frame from a file as the store-backed
function does, so an analysis written against ``runs_df(store)`` runs on an export as well.
Writing needs polars (``agentlab[notebook]``); pyarrow is not needed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Unpack

from agentlab.query._build import ColumnType, _import, to_frame
from agentlab.query._filters import Engine, RunSelection
from agentlab.query._frames import (
    APPROVAL_TYPES,
    CHECKPOINT_TYPES,
    RUN_TYPES,
    STEP_TYPES,
    approvals_df,
    checkpoints_df,
    runs_df,
    steps_df,
)
from agentlab.store import SqlStore

__all__ = ["TABLES", "Table", "export_parquet", "read_parquet"]

Table = Literal["runs", "steps", "checkpoints", "approvals"]

TABLES: dict[Table, tuple[Callable[..., Any], dict[str, ColumnType]]] = {
    "runs": (runs_df, RUN_TYPES),
    "steps": (steps_df, STEP_TYPES),
    "checkpoints": (checkpoints_df, CHECKPOINT_TYPES),
    "approvals": (approvals_df, APPROVAL_TYPES),
}
"""Each table: the function that builds its frame from a store, and its columns."""


def export_parquet(
    store: SqlStore,
    folder: str | os.PathLike[str],
    run_ids: Iterable[str] | None = None,
    *,
    progress: Callable[[str, int], None] | None = None,
    **select: Unpack[RunSelection],
) -> dict[str, int]:
    """Write the selected runs' tables into ``folder`` (created if needed) as
    ``runs.parquet``, ``steps.parquet``, ``checkpoints.parquet`` and ``approvals.parquet``;
    return the rows written per table. ``run_ids`` and the filters select runs as the
    frames do (all runs by default); ``progress(table, rows)`` is told after each file."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file: a Parquet export is a folder of files; "
                                 "give a folder (it is created if needed)")
    try:
        _import("polars")
    except ImportError:
        raise ImportError("a Parquet export is written with polars, which is not installed: "
                          "pip install polars (or agentlab[notebook])") from None
    out.mkdir(parents=True, exist_ok=True)
    ids = None if run_ids is None else ([run_ids] if isinstance(run_ids, str)
                                        else [str(r) for r in run_ids])
    rows: dict[str, int] = {}
    staging = Path(tempfile.mkdtemp(prefix=".agentlab-export-", dir=out))
    try:
        for name, (frame_of, _) in TABLES.items():
            frame = frame_of(store, ids, engine="polars", **select)
            frame.write_parquet(staging / f"{name}.parquet", compression="zstd")
            rows[name] = frame.height
            if progress is not None:
                progress(name, frame.height)
        for name in TABLES:  # moved in together: a reader sees the old export or the new
            os.replace(staging / f"{name}.parquet", out / f"{name}.parquet")
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return rows


def read_parquet(folder: str | os.PathLike[str], table: Table, *,
                 engine: Engine = "pandas") -> Any:
    """The frame of one table of an export (``runs``, ``steps``, ``checkpoints`` or
    ``approvals``): the same columns, types and values as the frame the store gives."""
    if table not in TABLES:
        raise ValueError(f"table={table!r}: choose one of {list(TABLES)}")
    path = Path(folder) / f"{table}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: export it first with "
                                "`agentlab export --format parquet -o FOLDER`")
    pl = _import("polars")
    frame = pl.read_parquet(path)
    types = TABLES[table][1]
    if list(frame.columns) != list(types):
        raise ValueError(f"{path} has the columns {frame.columns}, not those of the "
                         f"{table} table {list(types)}: was it written by another tool?")
    if engine == "polars":
        return frame
    times = [n for n, t in types.items() if t == "time"]
    plain = frame.with_columns([pl.col(n).dt.epoch("us") for n in times]) if times else frame
    return to_frame(plain.to_dict(as_series=False), types, engine=engine)
