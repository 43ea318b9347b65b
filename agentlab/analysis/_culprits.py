"""Culprit ranking: which step most likely caused a bad run, and why.

Deterministic and evidence-based (no model): each kind of evidence adds a weight to the
steps it points at, and the steps are ranked by total weight (earlier steps first on a tie,
as a cause precedes its effects). The evidence, strongest first:

* a counterfactual: forking the run with this step answered as a successful sibling saw
  it flips the outcome (``counterfactual``); a flipping step whose own input came from an
  earlier flipping step gets less (``counterfactual-downstream``): the earlier one is
  where the wrong value entered;
* a tool result that differed from a successful sibling run's while the calls were still
  identical, before the runs parted (``differed-from-sibling``);
* a stale result (over its freshness bound, or a newer value existed) (``stale``);
* lineage: the tool results behind the state that a symptom step read (``fed-symptom``);
* the branch point itself, against a sibling or the expected actions (``branch-point``);
* a tool error the run carried on after (``error-continued``);
* a call a human overrode (edited or rejected) or the policy denied (``overridden`` /
  ``denied``): symptoms, whose inputs are traced back through lineage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agentlab.analysis._branch import Divergence
from agentlab.analysis._lineage import lineage
from agentlab.analysis._stale import StaleRead
from agentlab.model import ApprovalEvent, CheckpointEvent, Event, ToolCallEvent
from agentlab.recovery import CounterfactualReport

__all__ = ["WEIGHTS", "Culprit", "Evidence", "rank_culprits"]

WEIGHTS: Mapping[str, float] = {
    "counterfactual": 5.0,
    "differed-from-sibling": 3.0,
    "stale": 2.5,
    "fed-symptom": 1.5,
    "branch-point": 1.0,
    "error-continued": 1.0,
    "overridden": 0.5,
    "denied": 0.5,
    "counterfactual-downstream": 0.5,
}


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str
    weight: float
    detail: str


@dataclass(slots=True)
class Culprit:
    """A candidate cause: a step of the run, its score and the evidence behind it."""

    seq: int
    event_id: str
    kind: str
    name: str
    score: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)

    def add(self, kind: str, detail: str) -> None:
        if any(e.kind == kind and e.detail == detail for e in self.evidence):
            return
        weight = WEIGHTS[kind]
        self.evidence.append(Evidence(kind, weight, detail))
        self.score += weight


def _name(e: Event) -> str:
    if isinstance(e, ToolCallEvent):
        return e.tool
    return str(getattr(e, "name", None) or getattr(e, "model", None) or e.kind)


def _sources(events: Sequence[Event], symptom: Event) -> list[tuple[Event, str]]:
    """The tool calls whose results fed the state ``symptom`` (or its enclosing steps) read:
    for each key read, the step that last wrote it and the tool calls inside that step
    before the write."""
    by_id = {e.id: e for e in events}
    keys: set[str] = set()
    cur: Event | None = symptom
    while cur is not None:
        keys.update(cur.reads)
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    lin = lineage(events)
    found: list[tuple[Event, str]] = []
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
        checkpoint = next((e for e in events if e.seq == write.seq), None)
        for e in reversed(events[: events.index(checkpoint)] if checkpoint else []):
            if isinstance(e, CheckpointEvent) and e.parent_id == checkpoint.parent_id:  # type: ignore[union-attr]
                break
            if isinstance(e, ToolCallEvent) and e.parent_id == checkpoint.parent_id:  # type: ignore[union-attr]
                found.append((e, key))
    return found


def _inside(e: Event, step: Event, by_id: Mapping[str, Event]) -> bool:
    cur = by_id.get(e.parent_id) if e.parent_id else None
    while cur is not None:
        if cur.id == step.id:
            return True
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return False


def _weigh_counterfactuals(events: Sequence[Event], report: CounterfactualReport,
                          by_seq: Mapping[int, Event],
                          at: Callable[[int | None], Culprit | None]) -> None:
    flips = {t.seq: t for t in report.flipping}
    for seq, trial in sorted(flips.items()):
        step = by_seq.get(seq)
        if step is None or (c := at(seq)) is None:
            continue
        upstream = sorted({s.seq for s, _ in _sources(events, step)
                           if s.seq in flips and s.seq < seq})
        if upstream:
            first = by_seq[upstream[0]]
            c.add("counterfactual-downstream",
                  f"answering it as {trial.source} did flips the outcome too (fork run "
                  f"{trial.fork_run_id}), but its input came from seq {first.seq} "
                  f"{_name(first)}, whose substitution flips it as well")
        else:
            c.add("counterfactual",
                  f"answering it with what {trial.source} got, all else as recorded, flips "
                  f"the outcome: fork run {trial.fork_run_id} succeeded")


def rank_culprits(
    events: Sequence[Event],
    *,
    sibling: Divergence | None = None,
    expected: Divergence | None = None,
    stale: Sequence[StaleRead] = (),
    counterfactual: CounterfactualReport | None = None,
    limit: int | None = 10,
) -> list[Culprit]:
    """Rank the run's steps as candidate causes of its failure (see the module docstring).

    ``sibling`` is the first divergence from a successful run of the same task (this run as
    side ``a``), ``expected`` the divergence from the expected actions, ``stale`` the stale
    reads found in this run, ``counterfactual`` the forks tried on it.
    """
    by_seq = {e.seq: e for e in events}
    found: dict[int, Culprit] = {}

    def at(seq: int | None) -> Culprit | None:
        e = by_seq.get(seq) if seq is not None else None
        if e is None:
            return None
        if seq not in found:
            found[e.seq] = Culprit(e.seq, e.id, e.kind, _name(e))
        return found[e.seq]

    symptoms: list[tuple[Event, str]] = []
    for div, against in ((sibling, "a successful sibling run"), (expected, "the expected actions")):
        if div is None:
            continue
        if div.a_seq is not None and (c := at(div.a_seq)) is not None:
            other = f"{div.b.name}({div.b.arguments})" if div.b else "nothing (it had ended)"
            c.add("branch-point", f"first step that differs from {against}, which did {other}")
            symptoms.append((by_seq[div.a_seq], f"the branch point (seq {div.a_seq})"))
        for a_seq, b_seq, sig in div.differing_results:
            if (c := at(a_seq)) is not None:
                c.add("differed-from-sibling",
                      f"{sig.name} was called with the same arguments as in {against} "
                      f"(its seq {b_seq}) but returned a different result, before the runs "
                      "parted")
    for s in stale:
        if (c := at(s.seq)) is not None:
            c.add("stale", s.detail)
    for i, e in enumerate(events):
        if isinstance(e, ToolCallEvent) and e.status == "error" and i < len(events) - 1:
            later = [x for x in events[i + 1:] if isinstance(x, ToolCallEvent | CheckpointEvent)]
            if later and (c := at(e.seq)) is not None:
                c.add("error-continued", f"{e.tool} failed ({e.error.type if e.error else '?'})"
                      " and the run carried on")
        if isinstance(e, ToolCallEvent) and e.status == "denied" and e.denial is not None:
            if (c := at(e.seq)) is not None:
                c.add("denied", f"refused ({e.denial.code}): {e.denial.reason}")
            symptoms.append((e, f"the denied call (seq {e.seq})"))
        if isinstance(e, ApprovalEvent) and e.action in ("edit", "reject"):
            call = next((x for x in events if isinstance(x, ToolCallEvent)
                         and x.approval == e.request_id), None)
            if call is not None and (c := at(call.seq)) is not None:
                c.add("overridden", f"a human {'edited' if e.action == 'edit' else 'rejected'} "
                      f"this call ({e.by} via {e.channel}{': ' + e.reason if e.reason else ''})")
                symptoms.append((call, f"the overridden call (seq {call.seq})"))
    if counterfactual is not None:
        _weigh_counterfactuals(events, counterfactual, by_seq, at)
    traced: set[int] = set()
    for symptom, what in symptoms:
        if symptom.seq in traced:  # a call both overridden and denied is one symptom
            continue
        traced.add(symptom.seq)
        for source, key in _sources(events, symptom):
            if source.seq == symptom.seq:
                continue
            if (c := at(source.seq)) is not None:
                c.add("fed-symptom", f"its result became state '{key}', which {what} read")
    for c in found.values():  # the strongest evidence first
        c.evidence.sort(key=lambda ev: -ev.weight)
    ranked = sorted(found.values(), key=lambda c: (-c.score, c.seq))
    return ranked[:limit] if limit is not None else ranked
