"""Runs, steps, checkpoints and approvals as pandas or polars frames.

Each function selects runs with the same filters (workflow, agent, agent version, phase,
status, task, start time; see :func:`~agentlab.query.run_filter`) and, where it makes sense,
a list of run ids, and returns one row per run, event, checkpoint or approval request.
``engine="polars"`` returns a polars frame with the same columns and values.

>>> runs = runs_df(store, workflow="support-triage", since="2025-03-01")    # doctest: +SKIP
>>> steps = steps_df(store, runs["run_id"], kinds=["tool_call"], engine="polars")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from agentlab.model import loads
from agentlab.query._build import ColumnType, to_frame
from agentlab.query._filters import Engine, RunSelection, run_filter
from agentlab.store import (
    RunFilter,
    SqlStore,
    approval_columns,
    checkpoint_columns,
    event_columns,
    run_columns,
)

__all__ = [
    "APPROVAL_TYPES",
    "CHECKPOINT_TYPES",
    "RUN_TYPES",
    "STEP_TYPES",
    "approvals_df",
    "checkpoints_df",
    "runs_df",
    "steps_df",
]


RUN_TYPES: dict[str, ColumnType] = {
    "run_id": "str", "workflow": "str", "agent_name": "str", "agent_version": "str",
    "task_id": "str", "owner": "str", "team": "str", "phase": "str", "status": "str",
    "success": "bool?", "score": "float", "started_at": "time", "ended_at": "time",
    "duration_s": "float", "cost_usd": "float", "input_tokens": "int", "output_tokens": "int",
    "step_count": "int", "llm_calls": "int", "tool_calls": "int", "error_count": "int",
    "retry_count": "int", "denied_count": "int", "stale_count": "int", "unpriced_count": "int",
    "incident_count": "int", "approval_count": "int", "override_count": "int", "last_seq": "int",
    "parent_run_id": "str", "fork_seq": "int?", "run_kind": "str", "synthetic_times": "bool",
}
"""Columns of :func:`runs_df` and their types (see :mod:`agentlab.query._build`)."""

STEP_TYPES: dict[str, ColumnType] = {
    "run_id": "str", "seq": "int", "event_id": "str", "parent_id": "str", "kind": "str",
    "ts": "time", "name": "str", "status": "str", "duration_ms": "float", "cost_usd": "float",
    "input_tokens": "int?", "output_tokens": "int?", "attempt": "int?", "grant": "str",
    "approval": "str", "phase": "str", "denial_code": "str", "error_type": "str",
    "stale": "bool",
}
"""Columns of :func:`steps_df` and their types."""

CHECKPOINT_TYPES: dict[str, ColumnType] = {
    "run_id": "str", "seq": "int", "event_id": "str", "root": "str", "ts": "time",
    "writes": "list", "deletes": "list",
}
"""Columns of :func:`checkpoints_df` and their types."""

APPROVAL_TYPES: dict[str, ColumnType] = {
    "request_id": "str", "run_id": "str", "call_key": "str", "tool": "str", "grant": "str",
    "scope": "str", "rule": "str", "phase": "str", "status": "str", "action": "str",
    "overridden": "bool", "decided_by": "str", "channel": "str", "reason": "str",
    "requested_at": "time", "decided_at": "time", "wait_s": "float", "expires_at": "time",
    "consumed_at": "time", "consumed_by": "str", "arguments": "str", "edited_arguments": "str",
}
"""Columns of :func:`approvals_df` and their types."""

# Which body field names the step, per kind.
_NAME_FIELD = {"tool_call": "tool", "tool_intent": "tool", "approval": "tool",
               "llm_call": "model", "step": "name", "retry": "target"}
# Kinds whose status the event models default to "ok" when the body leaves it out.
_OK_BY_DEFAULT = frozenset({"llm_call", "tool_call", "step"})
_ATTEMPT_BY_DEFAULT = frozenset({"tool_call", "tool_intent"})


def _ids(run_ids: Iterable[str] | None) -> list[str] | None:
    if run_ids is None:
        return None
    if isinstance(run_ids, str):
        return [run_ids]
    return [str(r) for r in run_ids]


def _selection(run_ids: Iterable[str] | None, select: RunSelection) -> RunFilter:
    """The filter of a frame: runs named by id are taken whatever their kind (a replay
    asked for by id is shown); otherwise ordinary runs unless ``kind`` says otherwise."""
    if run_ids is not None and "kind" not in select:
        select = {**select, "kind": "any"}
    return run_filter(**select)


def runs_df(
    store: SqlStore,
    run_ids: Iterable[str] | None = None,
    *,
    engine: Engine = "pandas",
    **select: Unpack[RunSelection],
) -> Any:
    """One row per run from the run summaries, oldest first (:data:`RUN_TYPES`).

    ``duration_s`` is end minus start (missing while running, and when ``synthetic_times``
    says an importer made the run's times up); ``incident_count`` is
    errors + retries + denials + stale results, the incidents of
    :func:`agentlab.analysis.metrics`.

    >>> runs_df(store, workflow="support-triage", status="failed")     # doctest: +SKIP
    """
    where = _selection(run_ids, select)
    cols = run_columns(store, where, run_ids=_ids(run_ids))
    started, ended = cols["started_us"], cols["ended_us"]
    cols["started_at"], cols["ended_at"] = started, ended
    made_up = cols["synthetic_times"] = [bool(v) for v in cols["synthetic_times"]]
    cols["duration_s"] = [None if e is None or m else (e - s) / 1e6
                          for s, e, m in zip(started, ended, made_up, strict=True)]
    cols["incident_count"] = [sum(c) for c in zip(
        cols["error_count"], cols["retry_count"], cols["denied_count"], cols["stale_count"],
        strict=True)]
    cols["run_kind"] = [k or "run" for k in cols["run_kind"]]  # "run": an ordinary run
    return to_frame(cols, RUN_TYPES, engine=engine)


def steps_df(
    store: SqlStore,
    run_ids: Iterable[str] | None = None,
    *,
    kinds: Iterable[str] | None = None,
    engine: Engine = "pandas",
    **select: Unpack[RunSelection],
) -> Any:
    """One row per event of the selected runs, by run id then seq (:data:`STEP_TYPES`).

    ``name`` is the tool (tool calls, intents, approvals), the model (LLM calls), the step
    name, or the retried target; ``status`` is ``ok``/``error``/``denied`` for calls and
    steps, the outcome for ``run_ended``, and ``approve``/``reject``/``edit`` for approvals
    (missing when no decision came). ``approval`` is the approval request id; the phase,
    denial code and error type are those the event recorded; ``stale`` marks a tool result
    older than the tool's freshness bound (a stale-state incident). Payloads (arguments, results,
    messages) are left out: ``store.events(run_id)`` has them. The filters select runs.
    """
    where = _selection(run_ids, select)
    cols = event_columns(store, where, run_ids=_ids(run_ids),
                         kinds=None if kinds is None else list(kinds))
    extracted: dict[str, list[Any]] = {n: [] for n in (
        "name", "status", "duration_ms", "cost_usd", "input_tokens", "output_tokens",
        "attempt", "grant", "approval", "phase", "denial_code", "error_type", "stale")}
    (name, st, dur, cost, tin, tout, attempt, grant, approval, ph, denial, error, stale) = (
        extracted.values())
    for kind, raw in zip(cols["kind"], cols["body"], strict=True):
        body = loads(raw)
        get = body.get
        field = _NAME_FIELD.get(kind)
        name.append(get(field) if field else None)
        if kind == "approval":
            st.append(get("action"))
            approval.append(get("request_id"))
        else:
            st.append(get("status", "ok" if kind in _OK_BY_DEFAULT else None))
            approval.append(get("approval"))
        dur.append(get("duration_ms"))
        cost.append(get("cost_usd"))
        tin.append(get("input_tokens"))
        tout.append(get("output_tokens"))
        attempt.append(get("attempt", 1 if kind in _ATTEMPT_BY_DEFAULT else None))
        grant.append(get("grant"))
        ph.append(get("phase"))
        d = get("denial")
        denial.append(d.get("code") if isinstance(d, dict) else None)
        e = get("error")
        error.append(e.get("type") if isinstance(e, dict) else None)
        stale.append(bool(get("stale")))
    cols["ts"] = cols["ts_us"]
    cols.update(extracted)
    return to_frame(cols, STEP_TYPES, engine=engine)


def checkpoints_df(
    store: SqlStore,
    run_ids: Iterable[str] | None = None,
    *,
    engine: Engine = "pandas",
    **select: Unpack[RunSelection],
) -> Any:
    """One row per checkpoint of the selected runs, by run id then seq
    (:data:`CHECKPOINT_TYPES`): the root of the state tree (``store.value(root)`` is the
    state) and the top-level keys written and deleted."""
    where = _selection(run_ids, select)
    cols = checkpoint_columns(store, where, run_ids=_ids(run_ids))
    bodies = [loads(b) for b in cols["body"]]
    cols["ts"] = cols["ts_us"]
    cols["writes"] = [list(b.get("writes") or []) for b in bodies]
    cols["deletes"] = [list(b.get("deletes") or []) for b in bodies]
    return to_frame(cols, CHECKPOINT_TYPES, engine=engine)


def approvals_df(
    store: SqlStore,
    run_ids: Iterable[str] | None = None,
    *,
    engine: Engine = "pandas",
    **select: Unpack[RunSelection],
) -> Any:
    """One row per approval request of the selected runs, oldest first
    (:data:`APPROVAL_TYPES`).

    ``status`` here is the request's (pending, approved, rejected, edited, expired);
    the ``status`` and ``phase`` arguments, like the others, select *runs*. ``overridden``
    marks an edit or a rejection (a human changed what the agent would have done);
    ``wait_s`` is the time from request to decision. Arguments are canonical JSON text,
    redacted as stored.
    """
    where = _selection(run_ids, select)
    cols = approval_columns(store, where, run_ids=_ids(run_ids))
    cols["grant"] = cols["grant_name"]
    cols["overridden"] = [a in ("edit", "reject") for a in cols["action"]]
    cols["wait_s"] = [None if d is None else (d - r) / 1e6
                      for r, d in zip(cols["requested_us"], cols["decided_us"], strict=True)]
    for when in ("requested", "decided", "expires", "consumed"):
        cols[f"{when}_at"] = cols[f"{when}_us"]
    return to_frame(cols, APPROVAL_TYPES, engine=engine)
