"""The run summary row, checkpoints, and reports the store produces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.model._events import Phase, RunKind, RunStatus

__all__ = [
    "PAUSED_HOLDER", "ActionStatus", "CheckpointInfo", "RunSummary", "VerifyReport", "cost_text",
]

PAUSED_HOLDER = "paused"
"""The holder a paused run is left with (no lease: any process may take it on)."""


class RunSummary(BaseModel):
    """One row per run, kept current as events are written, so metrics never scan events."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    workflow: str
    agent_name: str
    agent_version: str | None = None
    task_id: str | None = None
    owner: str | None = None
    team: str | None = None
    phase: Phase | None = None
    status: RunStatus = "running"
    success: bool | None = None
    score: float | None = None
    started_at: datetime
    ended_at: datetime | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    step_count: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    error_count: int = 0
    retry_count: int = 0
    denied_count: int = 0
    approval_count: int = 0
    override_count: int = 0
    stale_count: int = 0
    unpriced_count: int = 0
    """Model calls recorded without a cost: ``cost_usd`` leaves them out, so it is a lower
    bound (and says nothing when no call was priced)."""
    last_seq: int = 0
    head_hash: str = ""
    parent_run_id: str | None = None
    fork_seq: int | None = None
    run_kind: RunKind | None = None
    """None for an ordinary run; replay, fork or rollback for one made from another."""
    holder: str | None = None
    """The recorder carrying the run on (``host:pid:token``); None once it ended."""
    held_until: datetime | None = None
    """When the holder's lease runs out unless it renews it (it does while it lives)."""

    @property
    def paused(self) -> bool:
        """Left open on purpose by its recorder (``run.pause``): it waits for something (a
        decision) and any process may carry it on (``record_run(resume=True)``)."""
        return self.status == "running" and self.holder == PAUSED_HOLDER

    @property
    def abandoned(self) -> bool:
        """Still marked running, but the recorder carrying it stopped renewing its lease
        (its process was killed, its machine lost) without pausing it: no process will end
        it. A live run, however slow or long its wait for a human, keeps renewing and is
        never abandoned."""
        return (self.status == "running" and self.held_until is not None
                and self.held_until < datetime.now(UTC) and not self.paused)

    @property
    def shown_status(self) -> str:
        """The status to show a person: ``paused`` or ``abandoned`` for a run marked running
        that no process carries on (see :attr:`paused`, :attr:`abandoned`)."""
        return "paused" if self.paused else "abandoned" if self.abandoned else self.status

    @property
    def shown_cost(self) -> str:
        """The cost to show a person: ``$0.0123``; ``-`` when none of the run's model calls
        carried a cost (unknown, not free); ``$0.0123+`` when some did not (what the priced
        ones cost: a lower bound)."""
        return cost_text(self.cost_usd, self.unpriced_count)

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def cost_text(cost_usd: float, unpriced: int) -> str:
    """A dollar figure with what it leaves out: ``-`` when nothing of it was priced,
    a trailing ``+`` when some model calls were not (see :attr:`RunSummary.shown_cost`)."""
    if not unpriced:
        return f"${cost_usd:,.4f}"
    return "-" if not cost_usd else f"${cost_usd:,.4f}+"


class CheckpointInfo(BaseModel):
    """Where a checkpoint sits in its run, and the root of its state tree."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    seq: int
    event_id: str
    root: str
    ts: datetime
    writes: list[str] = Field(default_factory=list)
    deletes: list[str] = Field(default_factory=list)


class VerifyReport(BaseModel):
    """Result of checking a run's hash chain and blobs."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None


class ActionStatus(BaseModel):
    """What is known about a side-effecting call after the fact (e.g. after a crash)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    tool: str
    call_id: str
    idempotency_key: str
    intent_seq: int
    state: Literal["finished", "failed", "started-not-finished"]
    result_seq: int | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
