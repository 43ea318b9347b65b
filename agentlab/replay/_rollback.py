"""Rollback: undo a run's finished side effects, newest first, exactly once each.

Each finished side effect of the run (an intent with an ``ok`` result) is undone by the
compensation its tool registered (``@tool(side_effect=True, compensate=...)``), called as a
governed, side-effecting tool call of its own, named ``undo:<tool>``: it needs a grant for
its scope, passes the policy (a rule may send ``undo:*`` to a human) and is written ahead
like any action. The calls are recorded in a *rollback run* (kind ``rollback``) linked to
the original, under an id derived from it: a rollback started again after a crash resumes
that run, so a compensation that finished is not run twice, and one interrupted between
its intent and its result is reconciled (its ``reconcile`` hook) or stops for a human.

A side effect without a compensation, one that never finished, or one that failed is
listed in the result and recorded in the rollback run, never skipped silently.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from agentlab.approval import DEFAULT_TIMEOUT, Approver, Policy
from agentlab.errors import RecoveryError, RunNotFoundError, ToolDeniedError
from agentlab.identity import SecretSource, render_scope
from agentlab.model import ActionStatus, ToolCallEvent
from agentlab.record import (
    Compensation,
    RecordedRun,
    RunRecorder,
    ToolSpec,
    current_run,
    record_run,
    step,
    store_for,
)
from agentlab.replay._result import Outcome
from agentlab.store import RunStore

__all__ = ["RollbackResult", "Undo", "rollback", "rollback_run_id"]

UndoStatus = Literal["undone", "refused", "failed", "no_compensation", "unfinished",
                     "not_undone"]


@dataclass(frozen=True, slots=True)
class Undo:
    """One side effect of the original run and what its rollback did about it."""

    seq: int
    tool: str
    idempotency_key: str
    status: UndoStatus
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "tool": self.tool, "idempotency_key": self.idempotency_key,
                "status": self.status, "detail": self.detail}


@dataclass
class RollbackResult:
    """A rollback run next to the run it undid."""

    original_run_id: str
    run_id: str
    undos: list[Undo] = field(default_factory=list)
    outcome: Outcome | None = None
    resumed: bool = False
    """The rollback had been started before (and interrupted): it was taken up again."""

    @property
    def complete(self) -> bool:
        return all(u.status == "undone" for u in self.undos)

    def to_dict(self) -> dict[str, Any]:
        return {"original_run_id": self.original_run_id, "run_id": self.run_id,
                "complete": self.complete, "resumed": self.resumed,
                "outcome": None if self.outcome is None else {
                    "status": self.outcome.status, "success": self.outcome.success},
                "undos": [u.to_dict() for u in self.undos]}

    def to_text(self) -> str:
        head = (f"rollback of run {self.original_run_id} recorded as run {self.run_id}"
                + (" (taken up again)" if self.resumed else ""))
        lines = [head]
        if not self.undos:
            lines.append("  the run has no side effects to undo")
        for u in self.undos:
            lines.append(f"  seq {u.seq:>4} {u.tool:<20} {u.status:<16} {u.detail}")
        lines.append("  complete: every side effect was undone" if self.complete and self.undos
                     else "  NOT complete: see the lines above")
        return "\n".join(lines)


def rollback_run_id(run_id: str) -> str:
    """The id of the run that rolls back ``run_id`` (one per run, so a restart finds it)."""
    candidate = f"rb-{run_id}"
    if len(candidate) <= 36:
        return candidate
    return "rb-" + hashlib.sha256(run_id.encode()).hexdigest()[:32]


def _compensations(tools: Iterable[Any],
                   given: Mapping[str, Callable[..., Any] | Compensation] | None
                   ) -> dict[str, Compensation]:
    """What undoes each tool: ``given`` first, else the tools' own ``compensate``."""
    found: dict[str, Compensation] = {}
    for t in tools:
        spec = getattr(t, "agentlab", None)
        if not isinstance(spec, ToolSpec):
            raise TypeError(f"{t!r} is not an agentlab tool (decorate it with @agentlab.tool)")
        if spec.compensate is not None:
            found[spec.name] = spec.compensate
    for name, comp in (given or {}).items():
        found[name] = comp if isinstance(comp, Compensation) else Compensation(comp)
    return found


def _undo_spec(action: ActionStatus, call: ToolCallEvent, comp: Compensation) -> ToolSpec:
    """The governed tool call that undoes ``action``: its scope filled from the original
    arguments, its idempotency key derived from the original's."""
    scope = render_scope(comp.scope, action.arguments) if comp.scope is not None else call.scope
    hook = comp.reconcile
    reconcile = (None if hook is None else
                 lambda arguments, key: hook(arguments["arguments"], arguments["result"]))
    return ToolSpec(name=f"undo:{action.tool}", side_effect=True, scope=scope,
                    idempotency_key=lambda _args: f"undo:{action.idempotency_key}",
                    reconcile=reconcile, params=("arguments", "result"), governed=True)


def _undo_all(recorded: RecordedRun, actions: list[ActionStatus],
              comps: Mapping[str, Compensation], undos: list[Undo]) -> None:
    """The rollback run's code: deterministic in the original run, so a restart catches up."""
    run = current_run()
    assert isinstance(run, RunRecorder)
    calls = {e.seq: e for e in recorded.events if isinstance(e, ToolCallEvent)}
    for action in actions:
        call = calls.get(action.result_seq or -1)
        if action.state != "finished" or call is None:
            status: UndoStatus = "unfinished" if action.state != "failed" else "not_undone"
            detail = ("started and never finished: check the system by hand"
                      if action.state != "failed" else "it failed, so there is nothing to undo")
            with step(f"rollback: {action.tool} seq {action.intent_seq} not undone") as s:
                s.output = {"status": status, "detail": detail}
            undos.append(Undo(action.intent_seq, action.tool, action.idempotency_key, status,
                              detail))
            continue
        comp = comps.get(action.tool)
        if comp is None:
            with step(f"rollback: no compensation for {action.tool}") as s:
                s.output = {"seq": call.seq, "idempotency_key": action.idempotency_key}
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "no_compensation",
                              f"{action.tool} registers no compensate=: undo it by hand"))
            continue
        undo_spec = _undo_spec(action, call, comp)
        try:
            run._call_undo(undo_spec, lambda arguments, result, _f=comp.fn: _f(arguments, result),
                           (action.arguments, call.result), call.seq)
        except ToolDeniedError as exc:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "refused",
                              f"{exc.denial.code}: {exc.denial.reason}"))
        except Exception as exc:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "failed",
                              f"{type(exc).__name__}: {exc}"))
        else:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "undone",
                              f"undo:{action.tool} ran"))
    run.outcome(success=all(u.status == "undone" for u in undos))


def rollback(
    store: RunStore | str | os.PathLike[str] | None,
    run_id: str,
    *,
    tools: Iterable[Any] = (),
    compensations: Mapping[str, Callable[..., Any] | Compensation] | None = None,
    grants: Iterable[str] | None = None,
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    approver: Approver | None = None,
    approval_timeout: timedelta = DEFAULT_TIMEOUT,
) -> RollbackResult:
    """Undo the finished side effects of a run, newest first (see the module docstring).

    ``tools`` are the run's tools (their ``compensate=`` is used); ``compensations`` maps a
    tool name to its undo, overriding. The undo calls run under ``grants`` (default: the
    grants the original calls went through), ``policy`` and ``approver``, like any call.
    Calling it again after it finished returns what it did; after an interruption it
    resumes the same rollback run.
    """
    db = store_for(store)
    recorded = RecordedRun.load(db, run_id)
    rb_id = rollback_run_id(recorded.run_id)
    resumed = False
    try:
        existing = db.run(rb_id)
    except RunNotFoundError:
        existing = None
    if existing is not None and existing.parent_run_id != recorded.run_id:
        raise RecoveryError(f"run {rb_id} exists and is not the rollback of {recorded.run_id}")
    comps = _compensations(tools, compensations)
    actions = sorted(db.actions(recorded.run_id), key=lambda a: a.intent_seq, reverse=True)
    undos: list[Undo] = []
    if existing is not None and existing.status in ("succeeded", "failed"):
        return _summary_of(db, recorded, rb_id, actions, existing)
    resumed = existing is not None
    s = recorded.started
    run = record_run(
        s.workflow, agent=recorded.summary.agent_name, agent_version=s.agent_version,
        task_input={"rollback_of": recorded.run_id}, task_id=s.task_id, owner=s.owner,
        team=s.team, phase="act", store=db, run_id=rb_id, resume=True,
        parent_run_id=recorded.run_id, run_kind="rollback", tags=s.tags,
        grants=list(grants) if grants is not None else recorded.grants_used(),
        secrets=secrets, policy=policy, approver=approver, approval_timeout=approval_timeout)
    with run:
        _undo_all(recorded, actions, comps, undos)
    return RollbackResult(recorded.run_id, rb_id, undos, Outcome.of(db.run(rb_id)), resumed)


def _summary_of(db: RunStore, recorded: RecordedRun, rb_id: str, actions: list[ActionStatus],
                summary: Any) -> RollbackResult:
    """What a finished rollback did, read back from its run."""
    undone = {e.compensates: e for e in db.events(rb_id, kinds=["tool_call"])
              if isinstance(e, ToolCallEvent) and e.compensates is not None}
    undos: list[Undo] = []
    for a in actions:
        seq = a.result_seq if a.result_seq is not None else a.intent_seq
        e = undone.get(seq)
        if e is None:
            undos.append(Undo(seq, a.tool, a.idempotency_key, "not_undone",
                              "no undo recorded in the rollback run"))
        elif e.status == "ok":
            undos.append(Undo(seq, a.tool, a.idempotency_key, "undone", "already undone"))
        else:
            why = e.denial.reason if e.denial else (e.error.message if e.error else e.status)
            undos.append(Undo(seq, a.tool, a.idempotency_key,
                              "refused" if e.status == "denied" else "failed", why))
    return RollbackResult(recorded.run_id, rb_id, undos, Outcome.of(summary), False)
