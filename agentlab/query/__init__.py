"""The read path for notebooks: runs, steps, checkpoints and approvals as frames.

Every function returns a pandas frame, or a polars one with ``engine="polars"`` (the same
columns, types and values); the library is imported when the first frame is built, so
importing this package costs neither. Rows are read through the driver in one snapshot.

>>> from agentlab.query import runs_df, steps_df                        # doctest: +SKIP
>>> runs = runs_df(store, workflow="support-triage", since="2025-03-01")
>>> failed = runs[runs.status == "failed"]
>>> steps_df(store, failed.run_id, kinds=["tool_call"], engine="polars")
"""

from agentlab.query._build import ColumnType, to_frame
from agentlab.query._filters import Engine, RunSelection, Status, run_filter, to_us
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
from agentlab.query._parquet import TABLES, Table, export_parquet, read_parquet

__all__ = [
    "APPROVAL_TYPES",
    "CHECKPOINT_TYPES",
    "RUN_TYPES",
    "STEP_TYPES",
    "TABLES",
    "ColumnType",
    "Engine",
    "RunSelection",
    "Status",
    "Table",
    "approvals_df",
    "checkpoints_df",
    "export_parquet",
    "read_parquet",
    "run_filter",
    "runs_df",
    "steps_df",
    "to_frame",
    "to_us",
]
