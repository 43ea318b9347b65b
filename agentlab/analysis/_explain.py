"""``explain(run)``: a postmortem of one run on one page, as data.

It answers the four questions: which credential made each call; what state was carried from
step to step; which step caused the failure (ranked culprits, tool results, model calls
and messages alike, with their evidence); and whether the run can be replayed. Text (CLI), a dict (``--json``) and HTML
(notebooks) are views of the same :class:`Explanation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentlab.analysis._branch import Divergence, first_divergence
from agentlab.analysis._checks import Check
from agentlab.analysis._culprits import Culprit, rank_culprits
from agentlab.analysis._stale import StaleRead, stale_reads
from agentlab.analysis._view import Expectations, RunView, expectations_of
from agentlab.errors import RecoveryError
from agentlab.model import (
    ApprovalEvent,
    Change,
    CheckpointEvent,
    Event,
    RunCounts,
    RunSummary,
    ToolCallEvent,
    ToolIntentEvent,
    count_events,
    diff_trees,
    diff_values,
    expected_actions,
)
from agentlab.store import RunFilter, RunStore

if TYPE_CHECKING:  # governance and recovery are loaded only when forks are made
    from agentlab.approval import Policy
    from agentlab.recovery import AgentRef, Budget, CounterfactualReport

__all__ = ["CallCredential", "Explanation", "Replayability", "StateStep", "explain"]


@dataclass(frozen=True, slots=True)
class CallCredential:
    """Which credential made one tool call, under which rule, approved by whom."""

    seq: int
    tool: str
    status: str
    grant: str | None
    credential: str | None
    """The keyed fingerprint of the secret used (first 16 hex digits)."""
    scope: str | None
    phase: str | None
    rule: str | None
    approval: str | None
    """``action by who via channel``, when a human decided."""
    denial: str | None


@dataclass(frozen=True, slots=True)
class StateStep:
    """One checkpoint: who wrote it and what changed from the previous one."""

    seq: int
    writer: str
    changes: list[Change]


@dataclass(frozen=True, slots=True)
class Replayability:
    """Whether the record holds what a replay needs to serve every call without touching a
    live system (see :mod:`agentlab.recovery`)."""

    ready: bool
    reasons: list[str]
    side_effects: int
    unfinished_actions: list[str]


@dataclass(slots=True)
class Explanation:
    """The answer to a postmortem's four questions about one run."""

    run: RunSummary
    calls: list[CallCredential]
    state: list[StateStep]
    culprits: list[Culprit]
    stale: list[StaleRead]
    sibling_run_id: str | None = None
    sibling: Divergence | None = None
    expected: Expectations | None = None
    """What the run was held against (its own expectations, or those given to explain)."""
    replay: Replayability | None = None
    notes: list[str] = field(default_factory=list)
    counterfactual: CounterfactualReport | None = None
    counts: RunCounts | None = None
    """How big the run is (events, steps, calls...), in the words every view uses."""

    @property
    def culprit(self) -> Culprit | None:
        return self.culprits[0] if self.culprits else None

    @property
    def culprit_agent(self) -> str | None:
        """The agent that took the first culprit's step (in a run of several agents, the
        one to blame)."""
        return self.culprits[0].agent if self.culprits else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the ``--json`` output)."""
        out = dataclasses.asdict(self)
        out["run"] = self.run.model_dump(mode="json")
        result: dict[str, Any] = _jsonable(out)
        return result

    def to_text(self) -> str:
        from agentlab.analysis._explain_views import explanation_text

        return explanation_text(self)

    def _repr_html_(self) -> str:
        from agentlab.analysis._explain_views import explanation_html

        return explanation_html(self)

    def __repr__(self) -> str:
        top = self.culprit
        first = f"seq {top.seq} {top.name} (score {top.score:g})" if top else "no culprit"
        return f"<Explanation of run {self.run.run_id[:12]} {self.run.status}: {first}>"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, BaseModel):  # an expected action
        return value.model_dump(mode="json")
    return value


def _credentials(events: Sequence[Event]) -> list[CallCredential]:
    decisions = {e.request_id: e for e in events if isinstance(e, ApprovalEvent)}
    out = []
    for e in events:
        if not isinstance(e, ToolCallEvent):
            continue
        d = decisions.get(e.approval) if e.approval else None
        approval = (f"{d.action} by {d.by} via {d.channel}" if d is not None and d.action
                    else None)
        out.append(CallCredential(
            e.seq, e.tool, e.status, e.grant, e.credential[:16] if e.credential else None,
            e.scope, e.phase, e.policy_rule, approval,
            f"{e.denial.code}: {e.denial.reason}" if e.denial else None))
    return out


def _state_steps(store: RunStore, events: Sequence[Event]) -> list[StateStep]:
    by_id = {e.id: e for e in events}
    reader = store.tree_reader()
    # every checkpoint's tree in a few round trips (one per level), not one per node
    reader.prefetch([e.root for e in events if isinstance(e, CheckpointEvent)])
    out: list[StateStep] = []
    prev: str | None = None
    for e in events:
        if not isinstance(e, CheckpointEvent):
            continue
        parent = by_id.get(e.parent_id) if e.parent_id else None
        writer = (getattr(parent, "tool", None) or getattr(parent, "name", None) or "run"
                  if parent is not None else "run")
        changes = (diff_trees(reader, prev, e.root) if prev is not None
                   else diff_values({}, reader.value(e.root)))
        out.append(StateStep(e.seq, str(writer), changes))
        prev = e.root
    return out


def _replayability(events: Sequence[Event]) -> Replayability:
    intents = {e.call_id: e for e in events if isinstance(e, ToolIntentEvent)}
    done = {e.intent_id for e in events if isinstance(e, ToolCallEvent) and e.intent_id}
    unfinished = [f"seq {i.seq} {i.tool} (key {i.idempotency_key})"
                  for cid, i in intents.items() if cid not in done]
    reasons: list[str] = []
    if unfinished:
        reasons.append(f"{len(unfinished)} side-effecting call(s) started and never finished: "
                       "whether they took effect must be checked before anything is re-run")
    missing = [e.seq for e in events if e.kind == "llm_call" and getattr(e, "response", None)
               is None and getattr(e, "status", "ok") == "ok"]
    if missing:
        reasons.append(f"LLM calls without a recorded response at seq {missing[:5]}")
    side = sum(1 for e in events if isinstance(e, ToolCallEvent) and e.side_effect)
    if not reasons:
        reasons.append("every LLM response and tool result is recorded, and every "
                       f"side-effecting call ({side}) finished with its idempotency key: a "
                       "replay can serve recorded outputs without touching live systems")
    return Replayability(not unfinished and not missing, reasons, side, unfinished)


def explain(
    store: RunStore,
    run_id: str,
    *,
    siblings: Sequence[str] | None = None,
    expected: Expectations | Sequence[Mapping[str, Any]] | None = None,
    freshness: Mapping[str, timedelta] | None = None,
    checks: Sequence[Check] | None = None,
    limit: int = 10,
    counterfactual: bool = False,
    budget: Budget | None = None,
    progress: Callable[[int, int], None] | None = None,
    agent: AgentRef = None,
    policy: Policy | None = None,
) -> Explanation:
    """Explain one run.

    ``siblings`` are successful runs of the same task to compare with (default: the most
    recent successful runs of its task id, up to 5); ``expected`` what a correct run does
    (default: the expectations the run carries; an :class:`Expectations`, or a list of
    expected actions ``[{"name", "arguments"}]``); ``freshness`` per-tool freshness bounds;
    ``checks`` the checks that look for evidence (default: the built-in ones and installed
    rule packs, see :mod:`agentlab.analysis._checks`).
    ``counterfactual=True`` forks a failed run at each call with what the closest
    successful sibling saw there (within ``budget``, default
    :data:`agentlab.recovery.DEFAULT_BUDGET`; ``progress(done, total)`` is told
    along the way) and takes a flipped outcome as the strongest evidence; the forks run the
    entry point the run recorded, or ``agent`` (with ``policy`` when the run had one). When
    no fork can be made, the explanation says why in its notes.

    >>> ex = explain(store, bad_run)                      # doctest: +SKIP
    >>> ex.culprit.name, [e.kind for e in ex.culprit.evidence]
    ('lookup_account', ['differed-from-sibling', 'stale', 'fed-symptom'])
    """
    summary = store.run(run_id)
    events = store.events(summary.run_id)
    notes: list[str] = []
    if siblings is None:
        siblings = []
        if summary.task_id is not None:
            siblings = [r.run_id for r in store.runs(RunFilter(
                task_id=summary.task_id, status="succeeded", run_kind="run", limit=5))
                        if r.run_id != summary.run_id]
        if not siblings:
            notes.append("no successful run of the same task to compare with")
    others = [store.events(s) for s in siblings]
    best: tuple[str, Divergence] | None = None
    for sid, evs in zip(siblings, others, strict=True):
        div = first_divergence(events, evs, calls_only=False)
        if div is not None and (best is None or div.index > best[1].index):
            best = (sid, div)  # the sibling that agrees longest is the closest comparison
    if expected is None:
        exp = expectations_of(events)
    elif isinstance(expected, Expectations):
        exp = expected
    else:
        exp = Expectations(actions=expected_actions(expected))
    if not exp.stated:
        notes.append("no expected actions or outputs to hold the run against")
    stale = stale_reads(events, freshness=freshness, others=others)
    report: CounterfactualReport | None = None
    if counterfactual and summary.success is not True and summary.status != "running":
        from agentlab.recovery import DEFAULT_BUDGET, counterfactuals

        try:
            report = counterfactuals(store, summary.run_id, sibling=best[0] if best else None,
                                     budget=budget or DEFAULT_BUDGET, progress=progress,
                                     agent=agent, policy=policy)
        except RecoveryError as exc:
            notes.append(f"counterfactuals: none made: {exc}")
        if report is not None and not report.trials:
            notes.append("counterfactuals: no call could be answered differently "
                         f"({len(report.skipped)} skipped)")
    failed = summary.success is not True and summary.status in ("failed", "errored")
    culprits = rank_culprits(events, sibling=best[1] if best else None, stale=stale,
                             counterfactual=report, checks=checks, limit=limit,
                             failed=failed, view=RunView.of(events, exp))
    return Explanation(
        run=summary, calls=_credentials(events), state=_state_steps(store, events),
        culprits=culprits, stale=stale, sibling_run_id=best[0] if best else None,
        sibling=best[1] if best else None, expected=exp if exp.stated else None,
        replay=_replayability(events), notes=notes, counterfactual=report,
        counts=count_events(events),
    )
