"""The run filters every frame and metric takes, checked once and turned into a RunFilter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal, TypedDict, Unpack, get_args

from agentlab.store import RunFilter

__all__ = ["Engine", "Kind", "RunSelection", "Status", "run_filter", "to_us"]

Engine = Literal["pandas", "polars"]
"""Which frame library a function returns."""

Status = Literal["running", "paused", "abandoned", "succeeded", "failed", "errored"]
_STATUSES = get_args(Status)
Kind = Literal["run", "replay", "fork", "rollback", "any"]
_KINDS = get_args(Kind)
_PHASES = ("read", "draft", "act")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime | date | str | None, name: str = "time") -> int | None:
    """Microseconds since the epoch of a datetime, a date (midnight UTC) or an ISO 8601
    string; a datetime without a time zone is taken as UTC, the store's zone."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{name}={value!r} is not an ISO 8601 date or time; write e.g. 2025-03-01 "
                "or 2025-03-01T09:30:00+00:00"
            ) from None
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise TypeError(f"{name} must be a datetime, a date or an ISO string, not "
                            f"{type(value).__name__}")
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class RunSelection(TypedDict, total=False):
    """Which runs a frame or a metric covers: the keyword filters every frame function and
    ``metrics`` take. Runs of this workflow, agent (name), agent version, phase (the run's
    latest), status and task id, started at or after ``since`` and before ``until``; every
    key is optional and they combine with AND. ``kind`` is ``"run"`` unless given: the
    recorded work itself, not the replays, forks and rollbacks made from it (``"any"``
    takes every run)."""

    workflow: str | None
    agent: str | None
    agent_version: str | None
    phase: str | None
    status: str | None
    task: str | None
    since: datetime | date | str | None
    until: datetime | date | str | None
    kind: Kind


def run_filter(**select: Unpack[RunSelection]) -> RunFilter:
    """The store filter for a :class:`RunSelection`."""
    unknown = sorted(set(select) - set(RunSelection.__annotations__))
    if unknown:  # a typo must not silently widen the selection to every run
        raise TypeError(f"unknown run filter(s) {unknown}; use any of "
                        f"{sorted(RunSelection.__annotations__)}")
    workflow, agent, agent_version = (select.get("workflow"), select.get("agent"),
                                      select.get("agent_version"))
    phase, status, task = select.get("phase"), select.get("status"), select.get("task")
    since, until = select.get("since"), select.get("until")
    kind = select.get("kind", "run")
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not a run kind; use one of {list(_KINDS)}")
    if status is not None and status not in _STATUSES:
        raise ValueError(f"status={status!r} is not a run status; use one of {list(_STATUSES)}")
    if phase is not None and phase not in _PHASES:
        raise ValueError(f"phase={phase!r} is not a phase; use one of {list(_PHASES)}")
    since_us, until_us = to_us(since, "since"), to_us(until, "until")
    if since_us is not None and until_us is not None and until_us <= since_us:
        raise ValueError(f"until ({until}) is not after since ({since}): no run could match; "
                         "swap them or widen the window")
    return RunFilter(workflow=workflow, agent_name=agent, agent_version=agent_version,
                     status=status, phase=phase, task_id=task, since_us=since_us,
                     until_us=until_us, run_kind=None if kind == "any" else kind)
