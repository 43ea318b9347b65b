"""Culprit ranking: which step most likely caused a bad run, and why.

Deterministic and evidence-based (no model). Every step of the run is a candidate: tool
calls, model calls, named steps, user and agent messages. Evidence comes as findings, each
an evidence kind (see :data:`~agentlab.analysis.KINDS`, where each kind is described in
words) with a weight and a sentence:

* from the checks (``agentlab.analysis._checks``): expectations, value provenance,
  errors, preconditions, writes repeated or unconfirmed, an answer that contradicts a
  tool result, and whatever checks a team adds;
* from comparisons made before ranking: a successful sibling run (results that differed
  before the runs parted, the branch point), stale results, counterfactual forks;
* from governance: calls denied, calls a human overrode, and, through state lineage, the
  tool results those symptoms read (``fed-symptom``).

A step's score adds up the *strongest finding of each kind* it has: ten later steps that
all derive from an early lookup give it one ``fed-symptom``, not ten, so being upstream of
everything never outweighs specific evidence. Ties are broken by evidence: the stronger
single finding, then more kinds of evidence, and only then the earlier step (a cause comes
before its effects).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentlab.analysis._branch import Divergence
from agentlab.analysis._checks import DEFAULT_CHECKS, Check, installed_checks
from agentlab.analysis._evidence import KINDS, WEIGHTS, Evidence, Finding
from agentlab.analysis._lineage import lineage
from agentlab.analysis._stale import StaleRead
from agentlab.analysis._view import Expectations, RunView
from agentlab.model import ApprovalEvent, CheckpointEvent, Event, ToolCallEvent

if TYPE_CHECKING:  # recovery is loaded only when forks are made
    from agentlab.recovery import CounterfactualReport

__all__ = ["KINDS", "WEIGHTS", "Culprit", "Evidence", "Finding", "default_checks",
           "rank_culprits"]


@dataclass(slots=True)
class Culprit:
    """A candidate cause: a step of the run, who took it, its score and the evidence."""

    seq: int
    event_id: str
    kind: str
    name: str
    score: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)
    agent: str | None = None
    """The agent that took the step (in a run of several agents, the one to blame)."""
    source: str | None = None
    """Where an imported step was in its file (``history[3]``, ``traj[12]``)."""


def default_checks() -> list[Check]:
    """The checks ``explain`` runs: the built-in ones and those of installed rule packs."""
    return [*DEFAULT_CHECKS, *installed_checks()]


def _sources(view: RunView, symptom: Event) -> list[tuple[ToolCallEvent, str]]:
    """The tool calls whose results fed the state ``symptom`` (or its enclosing steps) read:
    for each key read, the step that last wrote it and the tool calls inside that step
    before the write."""
    by_id = view.by_id
    events = view.events
    keys: set[str] = set()
    cur: Event | None = symptom
    while cur is not None:
        keys.update(cur.reads)
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    if not keys:
        return []
    lin = lineage(events)
    found: list[tuple[ToolCallEvent, str]] = []
    for key in sorted(keys):
        entry = lin.get(key)
        write = entry.last_write_before(symptom.seq) if entry else None
        if write is None:
            continue
        writer = by_id.get(write.event_id)
        if isinstance(writer, ToolCallEvent):
            found.append((writer, key))
            continue
        if writer is not None and not isinstance(writer, CheckpointEvent):
            # a step wrote it: the tool calls nested in that step before the write
            found.extend((e, key) for e in events if isinstance(e, ToolCallEvent)
                         and e.seq < write.seq and _inside(e, writer, by_id))
            continue
        # written at the top of the run: the calls just before it, back to the previous write
        checkpoint = view.by_seq.get(write.seq)
        if checkpoint is None:
            continue
        for e in reversed(events[: events.index(checkpoint)]):
            if isinstance(e, CheckpointEvent) and e.parent_id == checkpoint.parent_id:
                break
            if isinstance(e, ToolCallEvent) and e.parent_id == checkpoint.parent_id:
                found.append((e, key))
    return found


def _inside(e: Event, step: Event, by_id: Mapping[str, Event]) -> bool:
    cur = by_id.get(e.parent_id) if e.parent_id else None
    while cur is not None:
        if cur.id == step.id:
            return True
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return False


def comparison_findings(
    view: RunView,
    *,
    sibling: Divergence | None = None,
    stale: Sequence[StaleRead] = (),
    counterfactual: CounterfactualReport | None = None,
) -> Iterator[Finding]:
    """Findings from comparisons made before ranking (a successful sibling, stale results,
    counterfactual forks) and from governance (denied and overridden calls), with the
    results those symptoms read through the state (``fed-symptom``)."""
    symptoms: list[tuple[Event, str]] = []
    if sibling is not None:
        if sibling.a_seq is not None and sibling.a_seq in view.by_seq:
            other = f"{sibling.b.name}({sibling.b.arguments})" if sibling.b \
                else "nothing (it had ended)"
            yield Finding(sibling.a_seq, "branch-point",
                          f"first step that differs from a successful sibling run, which did "
                          f"{other}")
            symptoms.append((view.by_seq[sibling.a_seq], f"the branch point (seq {sibling.a_seq})"))
        for a_seq, b_seq, sig in sibling.differing_results:
            yield Finding(a_seq, "differed-from-sibling",
                          f"{sig.name} was called with the same arguments as in a successful "
                          f"sibling run (its seq {b_seq}) but returned a different result, "
                          "before the runs parted")
    for s in stale:
        yield Finding(s.seq, "stale", s.detail)
    for e in view.events:
        if isinstance(e, ToolCallEvent) and e.status == "denied" and e.denial is not None:
            yield Finding(view.decision(e).seq, "denied",
                          f"{e.tool} was refused ({e.denial.code}): {e.denial.reason}")
            symptoms.append((e, f"the denied call (seq {e.seq})"))
        if isinstance(e, ApprovalEvent) and e.action in ("edit", "reject"):
            call = next((x for x in view.calls if x.approval == e.request_id), None)
            if call is not None:
                yield Finding(view.decision(call).seq, "overridden",
                              f"a human {'edited' if e.action == 'edit' else 'rejected'} "
                              f"{call.tool} ({e.by} via {e.channel}"
                              f"{': ' + e.reason if e.reason else ''})")
                symptoms.append((call, f"the overridden call (seq {call.seq})"))
    if counterfactual is not None:
        yield from _counterfactual_findings(view, counterfactual)
    traced: set[int] = set()
    for symptom, what in symptoms:
        if symptom.seq in traced:  # a call both overridden and denied is one symptom
            continue
        traced.add(symptom.seq)
        for source, key in _sources(view, symptom):
            if source.seq != symptom.seq:
                yield Finding(source.seq, "fed-symptom",
                              f"its result became state '{key}', which {what} read")


def _counterfactual_findings(view: RunView, report: CounterfactualReport) -> Iterator[Finding]:
    flips = {t.seq: t for t in report.flipping}
    for seq, trial in sorted(flips.items()):
        step = view.by_seq.get(seq)
        if step is None:
            continue
        upstream = sorted({s.seq for s, _ in _sources(view, step) if s.seq in flips and s.seq < seq})
        if upstream:
            first = view.by_seq[upstream[0]]
            yield Finding(seq, "counterfactual-downstream",
                          f"answering it as {trial.source} did flips the outcome too (fork run "
                          f"{trial.fork_run_id}), but its input came from seq {first.seq} "
                          f"{view.name(first)}, whose substitution flips it as well")
        else:
            yield Finding(seq, "counterfactual",
                          f"answering it with what {trial.source} got, all else as recorded, "
                          f"flips the outcome: fork run {trial.fork_run_id} succeeded")


def _expected_findings(view: RunView, expected: Divergence) -> Iterator[Finding]:
    if expected.a_seq is not None and expected.a_seq in view.by_seq:
        other = f"{expected.b.name}({expected.b.arguments})" if expected.b \
            else "nothing (it had ended)"
        yield Finding(view.decision(view.by_seq[expected.a_seq]).seq, "branch-point",
                      f"first step that leaves the expected actions, which do {other}")


def rank_culprits(
    events: Sequence[Event],
    *,
    findings: Iterable[Finding] = (),
    sibling: Divergence | None = None,
    expected: Divergence | Expectations | None = None,
    stale: Sequence[StaleRead] = (),
    counterfactual: CounterfactualReport | None = None,
    checks: Sequence[Check] | None = None,
    failed: bool | None = None,
    limit: int | None = 10,
    view: RunView | None = None,
) -> list[Culprit]:
    """Rank the run's steps as candidate causes of its failure (see the module docstring).

    ``sibling`` is the first divergence from a successful run of the same task (this run as
    side ``a``); ``expected`` the run's expectations (default: those it carries) or a
    divergence from an expected action list; ``stale`` the stale reads found in this run;
    ``counterfactual`` the forks tried on it; ``checks`` the checks to run (default:
    :func:`default_checks`); ``findings`` more evidence from elsewhere. ``failed=True``
    (default: when the run ended unsuccessfully) makes sure the list is never empty: with
    no evidence at all, the run's last step is named, saying so.
    """
    if view is None:
        view = RunView.of(events, expected if isinstance(expected, Expectations) else None)
    gathered: list[Finding] = list(findings)
    gathered.extend(comparison_findings(view, sibling=sibling, stale=stale,
                                        counterfactual=counterfactual))
    if isinstance(expected, Divergence):
        gathered.extend(_expected_findings(view, expected))
    for check in default_checks() if checks is None else checks:
        gathered.extend(check(view))
    if failed is None:
        ended = next((e for e in reversed(view.events) if e.kind == "run_ended"), None)
        success = getattr(ended, "success", None)
        failed = ended is not None and (success is False or (
            success is not True and getattr(ended, "status", None) in ("failed", "errored")))
    ranked = _aggregate(view, gathered)
    if not ranked and failed and view.steps:
        last = view.final_answer or view.steps[-1]
        ranked = _aggregate(view, [Finding(
            last.seq, "ended-here", "the run failed and no check found anything more "
            "specific: this is the last thing the agent did")])
    return ranked[:limit] if limit is not None else ranked


def _aggregate(view: RunView, findings: Iterable[Finding]) -> list[Culprit]:
    best: dict[int, dict[str, Finding]] = {}
    steps = {e.seq for e in view.steps}
    for f in findings:
        if f.seq not in steps or f.strength <= 0:
            continue  # only steps are candidates (not the run's start, a checkpoint...)
        kinds = best.setdefault(f.seq, {})
        held = kinds.get(f.kind)
        if held is None or f.strength > held.strength:
            kinds[f.kind] = f
    out: list[Culprit] = []
    for seq, kinds in best.items():
        e = view.by_seq[seq]
        evidence = sorted((Evidence(f.kind, round(f.strength, 3), f.detail)
                           for f in kinds.values()), key=lambda ev: -ev.weight)
        out.append(Culprit(seq, e.id, e.kind, view.name(e),
                           round(sum(ev.weight for ev in evidence), 3), evidence,
                           view.agent_of(e), e.source))
    out.sort(key=_rank_key)
    return out


def _rank_key(c: Culprit) -> tuple[float, float, int, int]:
    return (-c.score, -max((ev.weight for ev in c.evidence), default=0.0), -len(c.evidence),
            c.seq)

