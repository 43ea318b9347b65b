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
from agentlab.errors import RecoveryError, ToolDeniedError
from agentlab.identity import SecretSource, render_scope
from agentlab.model import ActionStatus, RunSummary, ToolCallEvent
from agentlab.record import (
    Agent,
    Compensation,
    RecordedRun,
    RunRecorder,
    ToolSpec,
    current_run,
    load_agent,
    record_run,
    step,
    store_for,
)
from agentlab.recovery._result import Outcome
from agentlab.store import RunFilter, RunStore

__all__ = ["RollbackResult", "Undo", "rollback", "rollback_run_id"]

UndoStatus = Literal["undone", "nothing_to_undo", "refused", "failed", "no_compensation",
                     "unfinished"]
"""What became of one side effect: ``undone`` (now or by an earlier attempt);
``nothing_to_undo`` (the call failed, it had no effect); ``refused`` (the undo was denied by
a grant, the policy or a human); ``failed`` (the undo raised); ``no_compensation`` (its tool
registers none); ``unfinished`` (it started and never finished: check by hand)."""
_SETTLED = frozenset({"undone", "nothing_to_undo"})


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
        """Every side effect that took effect is undone."""
        return all(u.status in _SETTLED for u in self.undos)

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


def rollback_run_id(run_id: str, attempt: int = 1) -> str:
    """The id of the ``attempt``-th run that rolls back ``run_id``: derived from it, so a
    restarted rollback finds the run it was."""
    prefix = "rb-" if attempt == 1 else f"rb{attempt}-"
    candidate = prefix + run_id
    if len(candidate) <= 36:
        return candidate
    return prefix + hashlib.sha256(run_id.encode()).hexdigest()[: 36 - len(prefix)]


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


def _without_undo(action: ActionStatus, comps: Mapping[str, Compensation],
                  done: Mapping[int, str]) -> Undo | None:
    """The outcome of a side effect that no undo call is made for (None: undo it now)."""
    seq = action.result_seq if action.result_seq is not None else action.intent_seq
    key = action.idempotency_key
    if action.result_seq is not None and action.result_seq in done:
        return Undo(seq, action.tool, key, "undone", f"undone by rollback run {done[seq]}")
    if action.state == "failed":
        return Undo(seq, action.tool, key, "nothing_to_undo",
                    "the call failed, so it had no effect to undo")
    if action.state != "finished":
        return Undo(seq, action.tool, key, "unfinished",
                    "started and never finished: check the system by hand")
    if action.tool not in comps:
        return Undo(seq, action.tool, key, "no_compensation",
                    f"{action.tool} registers no compensate=: undo it by hand")
    return None


def _undo_all(recorded: RecordedRun, actions: list[ActionStatus],
              comps: Mapping[str, Compensation], done: Mapping[int, str],
              undos: list[Undo]) -> None:
    """The rollback run's code: deterministic in the original run and the earlier
    attempts, so a restart catches up."""
    run = current_run()
    assert isinstance(run, RunRecorder)
    calls = {e.seq: e for e in recorded.events if isinstance(e, ToolCallEvent)}
    for action in actions:
        settled = _without_undo(action, comps, done)
        if settled is not None:
            if settled.status in ("no_compensation", "unfinished"):
                # Recorded in the rollback run too: what it could not undo is on record.
                with step(f"rollback: {action.tool} seq {settled.seq} {settled.status}") as s:
                    s.output = settled.to_dict()
            undos.append(settled)
            continue
        call = calls[action.result_seq or -1]
        comp = comps[action.tool]
        try:
            undo_spec = _undo_spec(action, call, comp)
            run._call_undo(undo_spec, lambda arguments, result, _f=comp.fn: _f(arguments, result),
                           (action.arguments, call.result), call.seq)
        except RecoveryError:  # an interrupted undo that needs a human: stop, say so
            raise
        except ToolDeniedError as exc:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "refused",
                              f"{exc.denial.code}: {exc.denial.reason}"))
        except Exception as exc:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "failed",
                              f"{type(exc).__name__}: {exc}"))
        else:
            undos.append(Undo(call.seq, action.tool, action.idempotency_key, "undone",
                              f"undo:{action.tool} ran"))
    run.outcome(success=all(u.status in _SETTLED for u in undos))


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
    grants the original run was given), ``policy`` (default: the run's @agent's; a run that
    had a policy is not rolled back without one) and ``approver``, like any call.

    Calling it again is safe: an interrupted rollback is resumed (nothing it undid is
    undone again, and an undo interrupted mid-way is reconciled or stops for a human with
    ResumeBlockedError); after one that left something not undone (no compensation, a
    refusal, a failure), a new attempt undoes only what is left; after a complete one,
    nothing runs.
    """
    db = store_for(store)
    recorded = RecordedRun.load(db, run_id)
    attempts = sorted(db.runs(RunFilter(parent_run_id=recorded.run_id, run_kind="rollback")),
                      key=lambda r: (r.started_at, r.run_id))
    actions = sorted(db.actions(recorded.run_id), key=lambda a: a.intent_seq, reverse=True)
    # An attempt that was interrupted, or stopped on an undo that needs a human, is taken
    # up again rather than started afresh: what it began is reconciled, never repeated.
    running = next((r for r in attempts if r.status in ("running", "errored")), None)
    done = _undone(db, [r for r in attempts if r is not running])
    comps = _compensations(tools, compensations)
    outcomes = [_without_undo(a, comps, done) for a in actions]
    if running is None and attempts and all(o is not None for o in outcomes):
        # Nothing can be undone now (done, or waiting for a human): no new attempt.
        return RollbackResult(recorded.run_id, attempts[-1].run_id,
                              [o for o in outcomes if o is not None],
                              Outcome.of(attempts[-1]), False)
    rb_id = running.run_id if running is not None else rollback_run_id(recorded.run_id,
                                                                        len(attempts) + 1)
    policy = policy if policy is not None else _agent_policy(recorded)
    gov = recorded.started.governance
    if policy is None and gov is not None and gov.policy is not None:
        raise RecoveryError(
            f"run {recorded.run_id} was governed by a policy (rules {', '.join(gov.policy)}); "
            "its undos are governed by it too: pass policy=... (nothing was undone)")
    undos: list[Undo] = []
    s = recorded.started
    run = record_run(
        s.workflow, agent=recorded.summary.agent_name, agent_version=s.agent_version,
        task_input={"rollback_of": recorded.run_id}, task_id=s.task_id, owner=s.owner,
        team=s.team, phase="act", store=db, run_id=rb_id, resume=True,
        parent_run_id=recorded.run_id, run_kind="rollback", tags=s.tags,
        grants=list(grants) if grants is not None else _granted(recorded),
        secrets=secrets, policy=policy, approver=approver, approval_timeout=approval_timeout)
    with run:
        _undo_all(recorded, actions, comps, done, undos)
    return RollbackResult(recorded.run_id, rb_id, undos, Outcome.of(db.run(rb_id)),
                          running is not None)


def _granted(recorded: RecordedRun) -> list[str]:
    gov = recorded.started.governance
    return list(gov.grants) if gov is not None and gov.grants else recorded.grants_used()


def _agent_policy(recorded: RecordedRun) -> Policy | None:
    """The policy the run's @agent declares, when the run recorded an importable one."""
    code = recorded.started.code
    if code is None or not code.entry:
        return None
    try:
        found = load_agent(code.entry)
    except RecoveryError:
        return None
    policy = found.options.get("policy") if isinstance(found, Agent) else None
    return policy if isinstance(policy, Policy) else None


def _undone(db: RunStore, attempts: Iterable[RunSummary]) -> dict[int, str]:
    """The original's calls (by seq) that earlier rollback runs undid, and by which run."""
    out: dict[int, str] = {}
    for r in attempts:
        for e in db.events(r.run_id, kinds=["tool_call"]):
            if isinstance(e, ToolCallEvent) and e.compensates is not None and e.status == "ok":
                out.setdefault(e.compensates, r.run_id)
    return out
