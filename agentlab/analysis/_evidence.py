"""Evidence against a step: its kinds, what each means in words, and how much it weighs.

A check (``agentlab.analysis._checks``) yields :class:`Finding` s: a step (by seq), an
evidence kind and a sentence that says what was seen. The weight of a finding is the
kind's weight, scaled down by the check when the evidence is less certain (a value that
could match by chance, say). Weights are ordered by how *specific* the evidence is to the
failure: a substitution that flips the outcome proves a cause; a wrong value traced to
where it entered names one; being upstream of the failure, or failing and being retried at
once, says little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["KINDS", "WEIGHTS", "Evidence", "Finding"]

KINDS: Mapping[str, tuple[float, str]] = {
    # Proof of cause.
    "counterfactual": (5.0, "answering this step as a successful run did flips the outcome"),
    # Where a wrong value entered the run.
    "wrong-value-origin": (3.0, "a value that contradicts what was expected entered the run "
                           "here (weighed by how specific the value is)"),
    "fed-wrong-result": (3.0, "this step fed the wrong value: a fact it first stated with no "
                         "source went into the computation that gave it, or a result it "
                         "asked for, without the right value, is what a later step read it "
                         "off (weighed by how specific the shared value is)"),
    "differed-from-sibling": (3.0, "same call as a successful run of the task, other result, "
                              "before the runs parted"),
    "ignored-correct-value": (2.5, "the run held the expected value, and this step stated "
                              "another one (weighed by how specific the value is)"),
    "stale": (2.5, "the result was older than allowed, or a newer one existed"),
    # What the step did, held against expectations and rules.
    "wrong-arguments": (2.0, "a side-effecting call the expected actions make, with other "
                        "arguments"),
    "unexpected-write": (2.0, "a side-effecting call that no expected action makes"),
    "invented-value": (2.0, "a value used here that no earlier event holds (the model made it "
                       "up; weighed by how specific the value is)"),
    "stand-in": (2.0, "the step says it assumes, simulates or makes up what it should have "
                 "found out (\"let's assume\", placeholder or sample data)"),
    "denied": (2.0, "the agent asked for a call its grant or the policy refused"),
    "precondition": (2.0, "a later call failed on what this write had changed"),
    "contradicts-result": (2.0, "the answer states a figure a tool result gives otherwise"),
    "unconfirmed-write": (1.5, "a write made without the user's explicit confirmation, which "
                          "the run's system prompt asks for"),
    "fed-symptom": (1.5, "its result became state that a failing step read"),
    "branch-point": (1.0, "the first step that differs from a successful run of the task"),
    "error-continued": (1.0, "a call that failed and was not put right"),
    "missing-write": (1.0, "the run ended without a side-effecting call the expected "
                      "actions make"),
    "repeated-write": (1.0, "the same write again on the same entity"),
    # Symptoms: where the failure shows, not usually where it starts.
    "wrong-answer": (0.5, "the statement that gave the answer (the agent's last one with a "
                     "value in the expected one's place) does not state what was expected"),
    "overridden": (0.5, "a human edited or rejected this call (a symptom: the results it "
                   "was decided on are traced back through the state)"),
    "counterfactual-downstream": (0.5, "its substitution flips the outcome too, but its input "
                                  "came from an earlier flipping step"),
    "error-recovered": (0.2, "a call that failed, and the next call of the same tool "
                        "succeeded"),
    "ended-here": (0.1, "the run failed and nothing more specific points anywhere: the last "
                   "thing the agent did"),
}
"""Every evidence kind: (weight, what it means)."""

WEIGHTS: Mapping[str, float] = {k: w for k, (w, _) in KINDS.items()}


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check saw about one step: ``seq``, the evidence ``kind`` (a key of
    :data:`KINDS`, or a rule pack's own), a sentence, and its weight (default: the kind's)."""

    seq: int
    kind: str
    detail: str
    weight: float | None = None

    @property
    def strength(self) -> float:
        if self.weight is not None:
            return self.weight
        return WEIGHTS.get(self.kind, 1.0)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence on a ranked culprit."""

    kind: str
    weight: float
    detail: str
