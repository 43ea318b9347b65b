"""agentlab: record, govern, explain, recover and measure AI agent runs.

>>> import agentlab as al                                   # doctest: +SKIP
>>> with al.record_run("support-triage", agent="triage-bot") as run:
...     run.state["ticket"] = {"id": "T-1"}
"""

from agentlab.errors import (
    AgentlabError,
    ConfigError,
    ImportFormatError,
    IntegrityError,
    PayloadTooLargeError,
    PortabilityError,
    RecordingError,
    RunNotFoundError,
    SchemaError,
    StoreBusyError,
    StoreError,
)
from agentlab.record import RunRecorder, RunState, current_run, record_run, set_prices, step, tool
from agentlab.store import RunFilter, RunStore, SqlStore, open_store

__version__ = "0.1.0"

__all__ = [
    "AgentlabError",
    "ConfigError",
    "ImportFormatError",
    "IntegrityError",
    "PayloadTooLargeError",
    "PortabilityError",
    "RecordingError",
    "RunFilter",
    "RunNotFoundError",
    "RunRecorder",
    "RunState",
    "RunStore",
    "SchemaError",
    "SqlStore",
    "StoreBusyError",
    "StoreError",
    "__version__",
    "current_run",
    "open_store",
    "record_run",
    "set_prices",
    "step",
    "tool",
]
