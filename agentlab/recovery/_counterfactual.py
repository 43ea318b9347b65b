"""Counterfactual culprits: which single change to a failed run's record makes it succeed?

For each call of a failed run (tool results and model responses, in order), fork the run
at that call with the value a successful sibling run saw at the aligned call (or a value
given for it) and judge the fork's outcome. A substitution that flips the outcome is the
strongest evidence there is that the step caused the failure: everything else was the
same code and the same record.

Alignment with the sibling: the sibling's call with the same tool (or model) and the same
arguments, else the call of that tool at the same occurrence (the second
``lookup_account`` of one run against the second of the other). A call whose sibling value
is the same as its own is skipped: substituting it changes nothing.

The search is bounded (forks and seconds); forks are ordinary child runs (kind ``fork``)
in the store, so each piece of evidence names the run that shows it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentlab.approval import Policy
from agentlab.errors import RecoveryError, ReplayDivergence, RunNotFoundError
from agentlab.identity import SecretSource
from agentlab.model import LLMCallEvent, RunSummary, ToolCallEvent, canonical
from agentlab.record import RecordedCall, RecordedRun, store_for
from agentlab.recovery._operations import AgentRef, fork
from agentlab.store import RunFilter, RunStore

__all__ = ["DEFAULT_BUDGET", "Budget", "CounterfactualReport", "Trial", "counterfactuals"]


@dataclass(frozen=True, slots=True)
class Budget:
    """How much a counterfactual search may spend: forks and wall-clock seconds."""

    forks: int = 20
    seconds: float = 30.0


DEFAULT_BUDGET = Budget()

@dataclass(frozen=True, slots=True)
class Trial:
    """One fork: the call at ``seq`` answered with another value, and what came of it."""

    seq: int
    kind: str
    name: str
    source: str
    """Where the substituted value came from (``sibling run X seq N`` or ``given``)."""
    fork_run_id: str | None
    success: bool | None
    flipped: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "name": self.name, "source": self.source,
                "fork_run_id": self.fork_run_id, "success": self.success,
                "flipped": self.flipped, "error": self.error}


@dataclass
class CounterfactualReport:
    """The forks tried on a failed run and which of them flip its outcome."""

    run_id: str
    sibling_run_id: str | None
    trials: list[Trial] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """Calls not tried, with why (same value as the sibling, nothing aligned, budget...)."""
    exhausted: bool = False
    seconds: float = 0.0

    @property
    def flipping(self) -> list[Trial]:
        return [t for t in self.trials if t.flipped]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "sibling_run_id": self.sibling_run_id,
                "trials": [t.to_dict() for t in self.trials],
                "skipped": [{"seq": s, "why": w} for s, w in self.skipped],
                "exhausted": self.exhausted, "seconds": round(self.seconds, 3)}

    def to_text(self) -> str:
        lines = [f"counterfactuals of run {self.run_id} "
                 f"({len(self.trials)} forks in {self.seconds:.2f} s"
                 + (", budget exhausted" if self.exhausted else "") + ")"]
        for t in self.trials:
            verdict = "FLIPS the outcome" if t.flipped else (t.error or "no flip")
            lines.append(f"  seq {t.seq:>4} {t.name:<22} from {t.source}: {verdict}"
                         + (f" (fork {t.fork_run_id})" if t.fork_run_id else ""))
        return "\n".join(lines)


def _value(event: ToolCallEvent | LLMCallEvent) -> Any:
    return event.result if isinstance(event, ToolCallEvent) else event.response


def _usable(event: ToolCallEvent | LLMCallEvent) -> bool:
    return event.status == "ok"


def align(failed: RecordedRun, sibling: RecordedRun) -> dict[int, RecordedCall]:
    """For each call of ``failed`` (by seq), the sibling's aligned call (see the module
    docstring)."""
    out: dict[int, RecordedCall] = {}
    used: set[int] = set()
    by_name: dict[tuple[str, str], list[RecordedCall]] = {}
    for rc in sibling.calls:
        by_name.setdefault((rc.kind, rc.name), []).append(rc)
    seen: dict[tuple[str, str], int] = {}
    for rc in failed.calls:
        key = (rc.kind, rc.name)
        nth = seen.get(key, 0)
        seen[key] = nth + 1
        candidates = by_name.get(key, [])
        same = next((c for c in candidates if c.signature == rc.signature
                     and c.position not in used), None)
        match = same or (candidates[nth] if nth < len(candidates)
                         and candidates[nth].position not in used else None)
        if match is not None:
            used.add(match.position)
            out[rc.seq] = match
    return out


def _sibling(store: RunStore, summary: RunSummary, given: str | None) -> str | None:
    if given is not None:
        return given
    if summary.task_id is None:
        return None
    for r in store.runs(RunFilter(task_id=summary.task_id, status="succeeded", run_kind="run",
                                  limit=5)):
        if r.run_id != summary.run_id:
            return r.run_id
    return None


def counterfactuals(
    store: RunStore | str | os.PathLike[str] | None,
    run_id: str,
    *,
    sibling: str | None = None,
    values: Mapping[int, Any] | None = None,
    evaluate: Callable[[RunStore, str], bool] | None = None,
    agent: AgentRef = None,
    stubs: Mapping[str, Callable[..., Any]] | None = None,
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    budget: Budget = DEFAULT_BUDGET,
    progress: Callable[[int, int], None] | None = None,
) -> CounterfactualReport:
    """Fork a failed run at each of its calls with the value a successful sibling saw there
    (or ``values[seq]``) and report which substitutions flip its outcome.

    ``sibling`` defaults to a successful run of the same task; ``evaluate(store, fork_run_id)``
    judges a fork (default: the fork's own outcome, as its code set it). Forks serve
    identical calls from the record, run differing reads live and answer side effects with
    stubs (``stubs`` or the tools' own): a fork that needs a side effect nothing can stub is
    reported as inconclusive, never executed.
    """
    t0 = time.perf_counter()
    db = store_for(store)
    failed = RecordedRun.load(db, run_id)
    if agent is None and (failed.started.code is None or not failed.started.code.entry):
        raise RecoveryError(
            f"run {failed.run_id} records no entry point, so it cannot be forked: name its "
            "code with agent='module:function'")
    if failed.summary.success is True:
        raise RecoveryError(f"run {failed.run_id} succeeded: counterfactuals explain a failed "
                            "run")
    sib_id = _sibling(db, failed.summary, sibling)
    aligned: dict[int, RecordedCall] = {}
    if sib_id is not None:
        try:
            aligned = align(failed, RecordedRun.load(db, sib_id))
        except RunNotFoundError:
            raise RecoveryError(f"sibling run {sib_id} is not in this store") from None
    given = dict(values or {})
    report = CounterfactualReport(failed.run_id, sib_id)
    plan: list[tuple[RecordedCall, Any, str]] = []
    for rc in failed.calls:
        if isinstance(rc.event, LLMCallEvent) and rc.event.reported:
            report.skipped.append((rc.seq, "a model call reported after the fact cannot be "
                                           "answered differently"))
            continue
        if rc.seq in given:
            plan.append((rc, given[rc.seq], "given"))
            continue
        match = aligned.get(rc.seq)
        if match is None:
            report.skipped.append((rc.seq, "no aligned call in a successful run"))
        elif not _usable(match.event):
            report.skipped.append((rc.seq, "the sibling's call failed too"))
        elif canonical(_value(match.event))[0] == canonical(_value(rc.event))[0]:
            report.skipped.append((rc.seq, "the sibling saw the same value"))
        else:
            plan.append((rc, _value(match.event), f"sibling run {sib_id} seq {match.seq}"))
    for i, (rc, value, source) in enumerate(plan):
        if i >= budget.forks or time.perf_counter() - t0 > budget.seconds:
            report.exhausted = True
            report.skipped.extend((r.seq, "budget exhausted") for r, _, _ in plan[i:])
            break
        report.trials.append(_try(db, failed, rc, value, source, evaluate, agent, stubs,
                                  secrets, policy))
        if progress is not None:
            progress(i + 1, len(plan))
    report.seconds = time.perf_counter() - t0
    return report


def _try(db: RunStore, failed: RecordedRun, rc: RecordedCall, value: Any, source: str,
         evaluate: Callable[[RunStore, str], bool] | None, agent: AgentRef,
         stubs: Mapping[str, Callable[..., Any]] | None,
         secrets: Mapping[str, SecretSource] | None, policy: Policy | None) -> Trial:
    try:
        result = fork(db, failed.run_id, at=rc.seq, result=value, agent=agent, stubs=stubs,
                      secrets=secrets, policy=policy)
    except ReplayDivergence as stop:
        partial = stop.result
        return Trial(rc.seq, rc.kind, rc.name, source,
                     partial.run_id if partial is not None else None, None, False,
                     f"inconclusive: {stop.why or stop}")
    except RecoveryError as exc:  # e.g. a side effect that needs a human, a missing policy
        return Trial(rc.seq, rc.kind, rc.name, source, None, None, False,
                     f"inconclusive: {exc}")
    success = (evaluate(db, result.run_id) if evaluate is not None
               else result.outcome.success is True)
    return Trial(rc.seq, rc.kind, rc.name, source, result.run_id, success,
                 success and failed.summary.success is not True, result.error)
