"""Replay, fork and resume: run an agent's code again against what a run recorded.

Each loads the recorded run (verified first: a record that does not check out raises
:class:`~agentlab.errors.IntegrityError`, never a divergence), finds the code (the entry
point the run recorded, or the one given), and runs it inside a new run (replay, fork) or
the same one (resume) whose mode serves the record. What each promises, and what it never
does live, is in docs/recovery.md.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentlab.approval import Approver, Policy
from agentlab.errors import RecordingError, RecoveryError, ReplayDivergence
from agentlab.identity import SecretSource
from agentlab.model import (
    Change,
    CheckpointEvent,
    CodeRef,
    Event,
    LLMCallEvent,
    diff_values,
)
from agentlab.record import (
    Agent,
    RecordedRun,
    RunRecorder,
    call_agent,
    code_ref,
    load_agent,
    record_run,
    store_for,
)
from agentlab.recovery._modes import ForkPoint, ReplayMode, Strategy
from agentlab.recovery._result import Outcome, ReplayResult, ResumeResult
from agentlab.store import RunStore

__all__ = ["AgentRef", "fork", "replay", "resume"]

AgentRef = Agent[..., Any] | Callable[..., Any] | str | None
"""The code to run: an :func:`~agentlab.agent`, a plain function ``(task_input, **kw)``,
``"module:function"``, or None for the entry point the run recorded."""

_UNSET: Any = object()
_CARRIED = ("grants", "secrets", "policy", "approval_timeout", "prices", "approver", "state")
"""The run options an @agent declares that a recovery of its runs keeps."""


class _Code:
    """The code a recovery operation runs, and the run options it declared."""

    def __init__(self, target: Agent[..., Any] | Callable[..., Any]) -> None:
        if isinstance(target, Agent):
            self.fn: Callable[..., Any] = target.fn
            self.ref: CodeRef = target.code
            self.options = {k: v for k, v in target.options.items() if k in _CARRIED}
        else:
            self.fn = target
            self.ref = code_ref(target, None)
            self.options = {}


def _code(agent: AgentRef, recorded: RecordedRun) -> _Code:
    if agent is None:
        ref = recorded.started.code
        if ref is None or not ref.entry:
            raise RecoveryError(
                f"run {recorded.run_id} records no entry point (it was not started through "
                "an @agentlab.agent), so its code cannot be found; name it with "
                "agent='module:function' (--agent on the command line)")
        agent = ref.entry
    return _Code(load_agent(agent) if isinstance(agent, str) else agent)


def _governance(code: _Code, recorded: RecordedRun, *, approver: Approver | None,
                secrets: Mapping[str, SecretSource] | None, policy: Policy | None,
                acting: bool) -> dict[str, Any]:
    """The run options that govern the new run: the agent's own (its grants, policy,
    approver, initial state), then what is given here; grants default to those the run
    was given (as it recorded them), else those its calls went through.

    A run that had a policy is not recovered without one when the recovery may act
    (``acting``: a call may be admitted live or checked for a stub): the policy is code,
    so it must be given again (``policy=``, or through the run's @agent)."""
    options = dict(code.options)
    gov = recorded.started.governance
    if "grants" not in options:
        options["grants"] = (gov.grants if gov is not None and gov.grants
                             else recorded.grants_used())
    if secrets:
        options["secrets"] = {**dict(options.get("secrets") or {}), **secrets}
    if approver is not None:
        options["approver"] = approver
    if policy is not None:
        options["policy"] = policy
    if acting and gov is not None and gov.policy is not None and options.get("policy") is None:
        raise RecoveryError(
            f"run {recorded.run_id} was governed by a policy (rules {', '.join(gov.policy)}), "
            "and a policy is code: pass it again (policy=...), or recover the run through "
            "its @agent, which declares it; nothing was run")
    return options


def _task_fields(recorded: RecordedRun) -> dict[str, Any]:
    s = recorded.started
    return {"task_input": s.task_input, "task_id": s.task_id, "owner": s.owner,
            "team": s.team, "phase": s.phase, "tags": s.tags, "metadata": s.metadata}


def _run_code(run: RunRecorder, code: _Code, task_input: Any,
              kwargs: Mapping[str, Any] | None) -> BaseException | None:
    """Run the agent's function inside ``run``. The agent's own error is returned, not
    raised (it is recorded, and the result reports it); a recovery error (a divergence, a
    side effect that needs a human) is raised, and so is a refusal to start or take up the
    run (another process carries it on)."""
    run.__enter__()
    try:
        call_agent(code.fn, task_input, kwargs)
    except BaseException as exc:
        run.__exit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, RecoveryError) or not isinstance(exc, Exception):
            raise
        return exc
    run.__exit__(None, None, None)
    return None


def _load(store: RunStore | str | os.PathLike[str] | None, run_id: str) -> tuple[RunStore, RecordedRun]:
    db = store_for(store)
    return db, RecordedRun.load(db, run_id)


def _final_root(events: Sequence[Event]) -> str | None:
    return next((e.root for e in reversed(events) if isinstance(e, CheckpointEvent)), None)


def _result(db: RunStore, recorded: RecordedRun, run: RunRecorder, code: _Code,
            mode: ReplayMode, kind: str, error: BaseException | None,
            fork_seq: int | None) -> ReplayResult:
    new = db.run(run.run_id, exact=True)
    before = recorded.summary
    # Strict mode matched every call as it served it; the steps and checkpoints the code
    # emitted were kept as it went: nothing is read back.
    identical = (mode.strategy == "strict" and error is None and not mode.divergences
                 and mode.shape_matches and Outcome.of(new) == Outcome.of(before))
    # The state at the end: only for a run that reached its end (a stopped one is partial),
    # and only read when the final states differ.
    changes: list[Change] = []
    if not isinstance(error, ReplayDivergence) and run.state.root != _final_root(recorded.events):
        changes = diff_values(db.state_at(before.run_id), db.state_at(run.run_id))
    return ReplayResult(
        kind="fork" if kind == "fork" else "replay", mode=mode.strategy,
        original_run_id=before.run_id, run_id=run.run_id, entry=code.ref.entry,
        version=code.ref.version, original=Outcome.of(before), outcome=Outcome.of(new),
        divergences=list(mode.divergences), counts=dict(mode.counts), state_diff=changes,
        identical=identical, error=None if error is None else f"{type(error).__name__}: {error}",
        fork_seq=fork_seq, notes=list(mode.notes))


def _replay_run(db: RunStore, recorded: RecordedRun, code: _Code, mode: ReplayMode, *,
                kind: str, fork_seq: int | None, approver: Approver | None,
                secrets: Mapping[str, SecretSource] | None, policy: Policy | None,
                kwargs: Mapping[str, Any] | None) -> ReplayResult:
    fields = _task_fields(recorded)
    task_input = fields.pop("task_input")
    acting = mode.strategy == "after_fix"
    run = record_run(
        recorded.started.workflow, agent=recorded.summary.agent_name,
        agent_version=code.ref.version or recorded.started.agent_version, store=db,
        task_input=task_input, parent_run_id=recorded.run_id, fork_seq=fork_seq,
        code=code.ref, run_kind="fork" if kind == "fork" else "replay",
        replay_mode=mode.strategy, mode=mode,
        **fields, **_governance(code, recorded, approver=approver, secrets=secrets,
                                policy=policy, acting=acting))
    # The recorded run is a large, long-lived heap the collector would walk again and again
    # while the replay allocates: set it aside for the replay's length (gc.freeze), and
    # give it back after.
    gc.freeze()
    try:
        error = _run_code(run, code, task_input, kwargs)
        if mode.stopped is not None:  # the agent caught the divergence and went on
            raise mode.stopped
    except ReplayDivergence as stop:
        stop.result = _result(db, recorded, run, code, mode, kind, stop, fork_seq)
        raise
    finally:
        gc.unfreeze()
    return _result(db, recorded, run, code, mode, kind, error, fork_seq)


def replay(
    store: RunStore | str | os.PathLike[str] | None,
    run_id: str,
    *,
    agent: AgentRef = None,
    mode: Strategy | None = None,
    live_reads: bool = False,
    stubs: Mapping[str, Callable[..., Any]] | None = None,
    approver: Approver | None = None,
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    kwargs: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Run an agent's code again against a recorded run, as a new run linked to it.

    ``mode="strict"`` (the default for the recorded code) checks the code still does
    exactly what the record holds: every call is served from the record, and the first
    call that differs stops the replay with :class:`~agentlab.errors.ReplayDivergence`.
    ``mode="after_fix"`` (the default when ``agent`` names other code) runs fixed code:
    identical calls are served, a read the record lacks runs live only with
    ``live_reads=True``, a side effect the record lacks is answered by a stub (``stubs``, or
    the tool's own ``stub=``) and never executed; otherwise the replay stops with the
    divergence. The result holds every divergence, both outcomes and the state diff.
    The new run is governed as the agent declares (its grants, policy, approver); a run
    that had a policy needs one (``policy=``) to be replayed after a fix.

    >>> result = replay(store, bad_run, agent="agentlab.demo:triage_fixed",
    ...                 mode="after_fix", live_reads=True)              # doctest: +SKIP
    >>> result.flipped                                                  # doctest: +SKIP
    True
    """
    db, recorded = _load(store, run_id)
    code = _code(agent, recorded)
    strategy: Strategy = mode or ("strict" if agent is None else "after_fix")
    if strategy not in ("strict", "after_fix"):
        raise ValueError(f"mode={mode!r}: use 'strict' or 'after_fix'")
    replay_mode = ReplayMode(recorded, strategy=strategy, live_reads=live_reads, stubs=stubs,
                             progress=progress)
    return _replay_run(db, recorded, code, replay_mode, kind="replay", fork_seq=None,
                       approver=approver, secrets=secrets, policy=policy, kwargs=kwargs)


def fork(
    store: RunStore | str | os.PathLike[str] | None,
    run_id: str,
    *,
    at: int,
    result: Any = _UNSET,
    state: Mapping[str, Any] | None = None,
    agent: AgentRef = None,
    live_reads: bool = True,
    stubs: Mapping[str, Callable[..., Any]] | None = None,
    allow_side_effects: bool = False,
    approver: Approver | None = None,
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    kwargs: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Re-run a recorded run from step ``at`` with an edited value, as a child run.

    Give ``result`` (the value the call at seq ``at`` answers with: a tool result or a model
    response) or ``state`` (paths such as ``"account/plan"`` set right after the run's last
    checkpoint at or before ``at``). Steps before the fork point come from the record (the
    code must reproduce them); steps after it run like a replay after a fix, with reads
    live by default and side effects only through stubs, or live through their grants and
    approvals with ``allow_side_effects=True``.
    """
    if (result is _UNSET) == (state is None):
        raise ValueError("fork needs exactly one edit: result=... (the call at seq `at`) or "
                         "state={'path': value}")
    db, recorded = _load(store, run_id)
    code = _code(agent, recorded)
    if state is not None:
        point = ForkPoint(at, state=dict(state), checkpoint=_checkpoint_ordinal(recorded, at))
    else:
        at_call = next((c for c in recorded.calls if c.seq == at), None)
        if at_call is None:
            seqs = ", ".join(str(c.seq) for c in recorded.calls[:40])
            raise RecoveryError(f"seq {at} of run {recorded.run_id} is not one of its calls; "
                                f"a result can be edited at a call: {seqs}")
        if isinstance(at_call.event, LLMCallEvent) and at_call.event.reported:
            raise RecoveryError(
                f"the model call at seq {at} was reported after the agent made it itself "
                "(run.llm_call), so a fork cannot answer it with another response; make the "
                "call through an @agentlab.llm function to fork at it")
        point = ForkPoint(at, value=result, has_value=True)
    fork_mode = ReplayMode(recorded, strategy="after_fix", live_reads=live_reads, stubs=stubs,
                           allow_side_effects=allow_side_effects, fork=point,
                           progress=progress)
    return _replay_run(db, recorded, code, fork_mode, kind="fork", fork_seq=at,
                       approver=approver, secrets=secrets, policy=policy, kwargs=kwargs)


def _checkpoint_ordinal(recorded: RecordedRun, at: int) -> int:
    ordinal = sum(1 for c in recorded.checkpoints() if c.seq <= at)
    if ordinal == 0:
        raise RecoveryError(f"run {recorded.run_id} has no checkpoint at or before seq {at}; "
                            "a state edit applies after a checkpoint (see `agentlab show`)")
    return ordinal


def resume(
    store: RunStore | str | os.PathLike[str] | None,
    run_id: str,
    *,
    agent: AgentRef = None,
    approver: Approver | None = None,
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> ResumeResult:
    """Continue an interrupted run (a crash, a pending approval, an error) with the code
    that recorded it, under the same run id.

    The code catches up with the record (nothing recorded is executed or written again),
    then goes on live; a side effect interrupted between its intent and its result is
    reconciled by the tool's ``reconcile`` hook or stops the resume for a human
    (:class:`~agentlab.errors.ResumeBlockedError`, raised). A run that had a policy is
    resumed only with it (``policy=``, or the run's @agent). The agent's own error, if the
    resumed run ends in one, is in the result.
    """
    db, recorded = _load(store, run_id)
    if recorded.summary.status in ("succeeded", "failed"):
        raise RecordingError(f"run {recorded.run_id} has already ended "
                             f"({recorded.summary.status}); fork it or replay it instead")
    code = _code(agent, recorded)
    fields = _task_fields(recorded)
    task_input = fields.pop("task_input")
    run = record_run(
        recorded.started.workflow, agent=recorded.summary.agent_name,
        agent_version=recorded.started.agent_version, store=db, task_input=task_input,
        run_id=recorded.run_id, resume=True, code=recorded.started.code,
        **fields, **_governance(code, recorded, approver=approver, secrets=secrets,
                                policy=policy, acting=True))
    error = _run_code(run, code, task_input, kwargs)
    caught_up = getattr(run.mode, "served", 0)
    return ResumeResult(recorded.run_id, recorded.summary.last_seq, caught_up,
                        Outcome.of(db.run(recorded.run_id)),
                        None if error is None else f"{type(error).__name__}: {error}")

