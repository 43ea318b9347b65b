"""Measured attribution: ranked culprits scored against labelled failures.

A label names, for one failed run, the step that caused it and the agent that took it:
``{"run_id": ..., "step": "history[3]" | 7, "agent": "Verification_Expert"}`` (``step`` is
the source position of an imported event, or a seq). :func:`score_attribution` explains
each labelled run and counts how often the first culprit (and any of the first three) is
the labelled step, and how often the culprit's agent is the labelled agent, by exact
match; next to it, the same counts for trivial baselines computed on the same runs, so a
figure always comes with what it must beat:

* ``always index 1``: the run's second step (the step at index 1);
* ``first state-changing call``: the decision behind the first side-effecting call (the
  first tool call when none changes anything, the first step when there is no call);
* ``last assistant message``: the final answer (the last step when there is none);
* ``agent of the first message`` (agents only): who took the first step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlab.analysis._culprits import Culprit
from agentlab.analysis._explain import explain
from agentlab.analysis._view import RunView
from agentlab.errors import AgentlabError
from agentlab.model import Event
from agentlab.store import RunStore

__all__ = ["AttributionReport", "Label", "LabelError", "Tally", "read_labels", "score_attribution"]


class LabelError(AgentlabError, ValueError):
    """A labels file that cannot be read; the message says which line and why."""


@dataclass(frozen=True, slots=True)
class Label:
    run_id: str
    step: str | int
    agent: str | None = None


def read_labels(path: str | Path) -> list[Label]:
    """Labels from a JSON-lines file (one ``{"run_id", "step", "agent"}`` per line)."""
    out: list[Label] = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            step = d["step"]
            if isinstance(step, bool) or not isinstance(step, str | int):
                raise TypeError(f"step must be a source position or a seq, not {step!r}")
            agent = d.get("agent")
            out.append(Label(str(d["run_id"]), step, None if agent is None else str(agent)))
        except (ValueError, KeyError, TypeError) as exc:
            raise LabelError(f"{path}:{n}: not a label ({exc!r}); each line is a JSON object "
                             "with run_id, step (source position or seq) and agent") from None
    return out


@dataclass(frozen=True, slots=True)
class _Pick:
    seq: int | None
    source: str | None
    agent: str | None

    def is_step(self, step: str | int) -> bool:
        return self.source == step if isinstance(step, str) else self.seq == step


@dataclass
class Tally:
    """Hits out of runs for one method."""

    step_top1: int = 0
    step_top3: int = 0
    agent_top1: int = 0
    runs: int = 0
    agent_runs: int = 0
    """Runs whose label names an agent (the denominator of agent top-1)."""
    ranked: bool = True
    """Whether the method ranks (top-3 means something) or picks one step."""
    picks_steps: bool = True
    """Whether the method names a step (a baseline may name only an agent)."""

    def rate(self, hits: int) -> float:
        return hits / self.runs if self.runs else 0.0

    def agent_rate(self) -> float:
        return self.agent_top1 / self.agent_runs if self.agent_runs else 0.0

    def to_dict(self) -> dict[str, float | int | None]:
        return {"runs": self.runs,
                "step_top1": round(self.rate(self.step_top1), 4) if self.picks_steps else None,
                "step_top3": round(self.rate(self.step_top3), 4) if self.ranked else None,
                "agent_top1": round(self.agent_rate(), 4)}


@dataclass
class AttributionReport:
    """Accuracy of the ranking and of each baseline, and each run's outcome."""

    ranking: Tally
    baselines: dict[str, Tally]
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"ranking": self.ranking.to_dict(),
                "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
                "seconds": round(self.seconds, 3), "runs": self.rows}

    def to_text(self) -> str:
        n = self.ranking.runs
        lines = [f"{n} labelled runs, {self.seconds:.1f} s "
                 f"({1000 * self.seconds / max(n, 1):.1f} ms per explain)", "",
                 f"{'method':<38} {'step top-1':>10} {'step top-3':>10} {'agent top-1':>11}"]

        def row(name: str, t: Tally) -> str:
            one = f"{t.rate(t.step_top1):>10.1%}" if t.picks_steps else f"{'-':>10}"
            three = f"{t.rate(t.step_top3):>10.1%}" if t.ranked else f"{'-':>10}"
            return f"{name:<38} {one} {three} {t.agent_rate():>11.1%}"
        lines.append(row("ranked culprits (explain)", self.ranking))
        lines.extend(row(f"baseline: {k}", v) for k, v in self.baselines.items())
        return "\n".join(lines)


def _pick(view: RunView, e: Event | None) -> _Pick:
    if e is None:
        return _Pick(None, None, None)
    return _Pick(e.seq, e.source, view.agent_of(e))


_AGENT_ONLY = frozenset({"agent of the first message"})


def _baselines(view: RunView) -> dict[str, _Pick]:
    steps = view.steps
    calls = [c for c in view.calls if not c.in_tool]
    writes = [c for c in calls if c.side_effect]
    first_call = next(iter(writes or calls), None)
    first = view.decision(first_call) if first_call is not None else (steps[0] if steps else None)
    return {
        "always index 1": _pick(view, steps[1] if len(steps) > 1 else None),
        "first state-changing call": _pick(view, first),
        "last assistant message": _pick(view, view.final_answer or (steps[-1] if steps else None)),
        "agent of the first message": _pick(view, steps[0] if steps else None),
    }


def score_attribution(
    store: RunStore,
    labels: Iterable[Label | Mapping[str, Any]],
    *,
    explainer: Callable[[RunStore, str], list[Culprit]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AttributionReport:
    """Explain each labelled run and score its ranked culprits (see the module docstring).
    ``explainer(store, run_id)`` ranks a run another way (default: :func:`explain` with
    its defaults)."""
    items = [lb if isinstance(lb, Label) else Label(str(lb["run_id"]), lb["step"],
                                                      lb.get("agent")) for lb in labels]
    rank = explainer or (lambda s, r: explain(s, r, limit=10).culprits)
    ranking = Tally()
    baselines: dict[str, Tally] = {}
    rows: list[dict[str, Any]] = []
    spent = 0.0
    for i, lb in enumerate(items):
        events = store.events(lb.run_id)
        view = RunView.of(events)
        t0 = time.perf_counter()
        culprits = rank(store, lb.run_id)
        spent += time.perf_counter() - t0
        picks = [_Pick(c.seq, c.source, c.agent) for c in culprits]
        top = picks[0] if picks else _Pick(None, None, None)
        ranking.runs += 1
        ranking.agent_runs += lb.agent is not None
        ranking.step_top1 += top.is_step(lb.step)
        ranking.step_top3 += any(p.is_step(lb.step) for p in picks[:3])
        ranking.agent_top1 += lb.agent is not None and top.agent == lb.agent
        for name, p in _baselines(view).items():
            t = baselines.setdefault(name, Tally(ranked=False,
                                                 picks_steps=name not in _AGENT_ONLY))
            t.runs += 1
            t.agent_runs += lb.agent is not None
            t.step_top1 += p.is_step(lb.step)
            t.agent_top1 += lb.agent is not None and p.agent == lb.agent
        rows.append({"run_id": lb.run_id, "label_step": lb.step, "label_agent": lb.agent,
                     "top": [p.source if p.source is not None else p.seq for p in picks[:3]],
                     "top_agent": top.agent, "hit": top.is_step(lb.step)})
        if progress is not None:
            progress(i + 1, len(items))
    return AttributionReport(ranking, baselines, rows, spent)
