"""The checks that hold a run against what a correct run does (its expected outputs and
actions), and the tracing they share: where a wrong value entered the run.

Part of the default checks (:mod:`agentlab.analysis._checks`, where the whole set is
described); a value traced back lands on the step that first gave it, or, when nobody gave
it, on the step that first used it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from agentlab.analysis._evidence import WEIGHTS, Finding
from agentlab.analysis._values import (
    Holding,
    Value,
    as_value,
    holds,
    last_position,
    values_in,
)
from agentlab.analysis._view import RunView
from agentlab.model import Event, ExpectedAction, LLMCallEvent, MessageEvent, ToolCallEvent, dumps

__all__ = [
    "SPECIFIC",
    "align_actions",
    "answer_to",
    "expected_actions",
    "expected_outputs",
    "short_text",
    "side_effect_writes",
    "trace",
    "unanswered",
]

SPECIFIC = 0.6
"""Values at least this specific identify an entity (an id, an amount); smaller ones (a
digit, a short word) match by chance too often to tie two events together."""


def short_text(x: Any, width: int = 60) -> str:
    text = x if isinstance(x, str) else dumps(x).decode()
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- where a value entered ---------------------------------------------------------------------


def _responsible(view: RunView, h: Holding) -> Event | None:
    """The step to blame for a value first held at ``h``: the decision behind a call whose
    result or arguments held it, the step that said it, the user who typed it; None for the
    task's own input."""
    e = view.by_seq[h.seq]
    if isinstance(e, ToolCallEvent):
        return view.decision(e)
    if isinstance(e, LLMCallEvent) and h.part == "input":
        return None  # the model's prompt: given to it, like the task
    if e.kind in ("message", "llm_call", "step"):
        return e
    return None


def trace(view: RunView, value: Value, at: Event, why: str,
          expected: Value | None = None) -> Iterator[Finding]:
    """Evidence against the step where ``value`` (seen at ``at``, wrong because ``why``)
    entered the run, weighed by the value's specificity.

    A value that first came out of a tool's result was computed from the call's arguments:
    when an argument is a fact some earlier step stated with no source in the run (the
    model made it up), that step is where the fault entered (``fed-wrong-result``), and the
    step that made the call, which computed faithfully from what it was given, keeps only
    half the weight.

    A value a step stated first, while repeating facts of an earlier tool result that
    another step asked for, was read off that result: when the result does not hold the
    ``expected`` value either, the step that asked for it shares the fault
    (``fed-wrong-result``; the stating step keeps half). When the result does hold it, the
    step misread a right result and keeps the whole weight."""
    h = _entry(view, value, at)
    target = _responsible(view, h)
    if target is None:
        return
    origin = view.by_seq[h.seq]
    weight = WEIGHTS["wrong-value-origin"] * value.specificity
    if h.part == "result":
        where = (f"first appeared in the result of {view.name(origin)} at "
                 f"{view.address(origin)}, which this step asked for")
        assert isinstance(origin, ToolCallEvent)
        fed = list(_invented_inputs(view, origin, target))
        for step, v in fed:
            yield Finding(step.seq, "fed-wrong-result",
                          f"{v.text!r}, first stated here with no source in the run, went "
                          f"into {view.name(origin)} at {view.address(origin)}, whose result "
                          f"gave {value.text!r}, which {why}",
                          WEIGHTS["fed-wrong-result"] * min(v.specificity, 1.0))
        if fed:
            weight /= 2
    elif h.part == "output" and (basis := _result_basis(view, target, expected)) is not None:
        # the step that stated it was reading a tool's result that did not hold the right
        # value either: the step that asked for that result shares the fault
        call, v = basis
        where = ("first appears here" if target.seq == at.seq else "was first stated here") + \
            f", reading the result of {view.name(call)} at {view.address(call)}"
        yield Finding(view.decision(call).seq, "fed-wrong-result",
                      f"the result of {view.name(call)} at {view.address(call)}, which this "
                      f"step asked for, did not hold the expected value; "
                      f"{view.name(target)} at {view.address(target)} built on it "
                      f"({v.text!r}) when it gave {value.text!r}, which {why}",
                      WEIGHTS["fed-wrong-result"] * v.specificity)
        weight /= 2
    elif target.seq == at.seq and h.seq == at.seq:
        where = "first appears here, with no earlier source in the run"
    elif h.part == "input":
        where = "came from here"
    else:
        where = "was first stated here"
    yield Finding(target.seq, "wrong-value-origin", f"{value.text!r} {why}; it {where}", weight)


def _entry(view: RunView, value: Value, at: Event) -> Holding:
    """Where ``value``, seen at ``at``, entered the run: its earliest holder. A value too
    small to identify anything (``0``, ``3``) has chance holders all through a run, so its
    earliest one says nothing; the nearest tool result before ``at`` that holds it is where
    the run most likely read it, and is taken when there is one."""
    h = view.values.origin(value.key, before=at.seq + 1) or Holding(at.seq, "output")
    if value.specificity >= SPECIFIC:
        return h
    near = [x for x in view.values.holders(value.key) if x.seq <= at.seq and x.part == "result"]
    return near[-1] if near else h


def _result_basis(view: RunView, step: Event, expected: Value | None
                  ) -> tuple[ToolCallEvent, Value] | None:
    """The latest tool result, asked for by another step, whose facts ``step`` repeats,
    when that result does not hold the ``expected`` value (when it does, the step misread
    a right result, and the fault is its own). None without an expected value."""
    if expected is None:
        return None
    best: tuple[ToolCallEvent, Value] | None = None
    for v in values_in(view.said(step), code=False).values():
        if not _fact(view, v):
            continue
        h = view.values.origin(v.key, before=step.seq)
        if h is None or h.part != "result":
            continue
        call = view.by_seq[h.seq]
        assert isinstance(call, ToolCallEvent)
        if view.decision(call).seq == step.seq:
            continue
        if best is None or call.seq > best[0].seq:
            best = (call, v)
    if best is not None and holds(best[0].result, expected):
        return None
    return best


def _fact(view: RunView, v: Value) -> bool:
    """A value that states a fact: a specific figure or name, not a code symbol
    (snake_case, one word) or a participant's name."""
    return v.specificity >= SPECIFIC and v.key not in view.participants and not (
        v.kind == "text" and " " not in v.key)


def _invented_inputs(view: RunView, call: ToolCallEvent, decision: Event
                     ) -> Iterator[tuple[Event, Value]]:
    """Specific values among ``call``'s arguments that an earlier step (not the one that
    made the call) was the first to state, with no source before it."""
    seen: set[int] = set()
    for v in view.values.at(call.seq, "arguments").values():
        if not _fact(view, v):
            continue
        h = view.values.origin(v.key, before=call.seq)
        if h is None or h.part != "output" or h.seq == decision.seq or h.seq in seen:
            continue
        seen.add(h.seq)
        yield view.by_seq[h.seq], v


# -- expected outputs -------------------------------------------------------------------------


def _statements(view: RunView) -> Iterator[Event]:
    """What the agent said, newest first: assistant messages and model responses' text."""
    for e in reversed(view.events):
        if (isinstance(e, MessageEvent) and e.role == "assistant") or (
                isinstance(e, LLMCallEvent) and view.said(e) is not None):
            yield e


_HEADING = re.compile(r"(?m)^[ \t]*#+[ \t].*$|\*\*[^*\n]{1,80}:\*\*|^[ \t]*[^\n]{1,60}:[ \t]*$")
_ENUMERATOR = re.compile(r"(?im)^[ \t>*-]*(?:step[ \t]+)?\d{1,2}[.):][ \t]|\bstep[ \t]+\d{1,2}\b"
                         r"|(?<![\w(])\(\d{1,2}\)(?=[ \t])")


def _candidates(view: RunView, said: Any, expected: Value, given: set[str]) -> list[Value]:
    """Values a statement gives in the place of ``expected``: of its kind, not given in the
    task, not the expected one itself, not a participant's name, not a list's numbering."""
    if isinstance(said, str):
        said = _HEADING.sub(" ", _ENUMERATOR.sub(" ", said))
    vals = values_in(said, code=False)
    out = [v for v in vals.values() if v.kind == expected.kind and v.key not in given
           and v.key != expected.key and not _names_participant(view, v)]
    if expected.kind == "text":
        # a text answer is a word or a phrase: not a number in disguise, not a long code
        out = [v for v in out if not any(c.isdigit() for c in v.key)
               or any(c.isdigit() for c in expected.key)]
    return out


def _names_participant(view: RunView, v: Value) -> bool:
    """Whether a value is, or holds, the name of an agent or a tool of the run (written
    with spaces for underscores or not)."""
    text = v.key.replace("_", " ")
    return v.key in view.participants or any(
        " " in p and p in text for p in view.participant_words)


def _shape(v: Value) -> tuple[bool, bool, int]:
    """What a value looks like, apart from what it says: a number with a fraction or not,
    text in capitals or not, and its size (digits of a number, words of a text)."""
    if v.kind == "number":
        return "." in v.key, False, len(v.key.lstrip("-").replace(".", ""))
    return False, v.text.isupper(), len(v.key.split())


def _likeness(v: Value, expected: Value) -> tuple[int, int]:
    """How much ``v`` looks like ``expected``: same form (fraction, capitals), then size."""
    a, b = _shape(v), _shape(expected)
    return (a[0] == b[0]) + (a[1] == b[1]), -abs(a[2] - b[2])


def _given(view: RunView) -> set[str]:
    started = view.started
    return set(values_in(started.task_input).keys()) if started is not None and \
        started.task_input is not None else set()


def answer_to(view: RunView, expected: Value, given: set[str] | None = None
              ) -> tuple[Event, Value] | None:
    """The agent's latest statement that gives a value in ``expected``'s place, and that
    value (the likeliest, when it gives several); None when nothing it said does."""
    given = _given(view) if given is None else given
    for e in _statements(view):
        said = view.said(e)
        if said is None:
            continue
        cands = _candidates(view, said, expected, given)
        if cands:
            text = said if isinstance(said, str) else dumps(said).decode()
            return e, max(cands, key=lambda v: (_likeness(v, expected), v.specificity,
                                                last_position(text, v)))
    return None


def unanswered(view: RunView) -> bool:
    """Whether the run has expected outputs and got nowhere near any of them: no statement
    holds an expected value or gives another in its place, and no tool result holds one
    (a value too small to tell, like ``3``, is not taken as held by a result that merely
    has it somewhere: it is in most of them)."""
    outputs = [v for out in view.expected.outputs or () if (v := as_value(out)) is not None]
    if not outputs:
        return False
    final = view.final_answer
    said = view.said(final) if final is not None else None
    given = _given(view)
    return not any((said is not None and holds(said, v)) or answer_to(view, v, given)
                   or (v.specificity >= SPECIFIC and any(
                       c.result is not None and holds(c.result, v) for c in view.calls))
                   for v in outputs)


def expected_outputs(view: RunView) -> Iterator[Finding]:
    outputs = view.expected.outputs
    if not outputs:
        return
    given = _given(view)
    final = view.final_answer
    for out in outputs:
        expected = as_value(out)
        if expected is None:
            continue
        if final is not None and holds(view.said(final), expected):
            continue  # stated: this output is not what failed
        answer = answer_to(view, expected, given)
        statement, stated = answer if answer is not None else (None, None)
        if statement is None or stated is None:
            if final is not None:
                yield Finding(final.seq, "wrong-answer",
                              f"the final answer does not state the expected {out!r}")
            continue
        yield Finding(statement.seq, "wrong-answer",
                      f"states {stated.text!r} where {out!r} was expected")
        yield from trace(view, stated, statement, f"is stated where {out!r} was expected",
                         expected)
        seen = view.values.find_text(expected, before=statement.seq)
        if seen is not None and seen.part in ("result", "input"):
            source = view.by_seq[seen.seq]
            yield Finding(statement.seq, "ignored-correct-value",
                          f"the run had {out!r} ({view.name(source)} at "
                          f"{view.address(source)}) but this step stated {stated.text!r}",
                          WEIGHTS["ignored-correct-value"] * expected.specificity)


# -- expected actions -------------------------------------------------------------------------


def side_effect_writes(view: RunView) -> list[ToolCallEvent]:
    """Side-effecting calls that took effect (a failed write changed nothing)."""
    return [c for c in view.calls if c.side_effect and c.status == "ok" and not c.in_tool]


def _matches(call: ToolCallEvent, action: ExpectedAction) -> bool:
    return call.tool == action.name and all(
        k in call.arguments and _same(call.arguments[k], v) for k, v in action.arguments.items())


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    va, vb = as_value(a), as_value(b)
    return va is not None and vb is not None and va.key == vb.key and not isinstance(
        a, dict | list) and not isinstance(b, dict | list)


def align_actions(writes: Sequence[ToolCallEvent], actions: Sequence[ExpectedAction]
                  ) -> tuple[list[tuple[ToolCallEvent, ExpectedAction]],
                             list[tuple[ToolCallEvent, ExpectedAction]],
                             list[ExpectedAction], list[ToolCallEvent]]:
    """(matched, same tool with other arguments, missing, extra): expected actions paired
    with the run's writes, exact matches first, then by tool in order."""
    free = list(writes)
    matched: list[tuple[ToolCallEvent, ExpectedAction]] = []
    left: list[ExpectedAction] = []
    for a in actions:
        hit = next((w for w in free if _matches(w, a)), None)
        if hit is None:
            left.append(a)
        else:
            free.remove(hit)
            matched.append((hit, a))
    differing: list[tuple[ToolCallEvent, ExpectedAction]] = []
    missing: list[ExpectedAction] = []
    for a in left:
        hit = next((w for w in free if w.tool == a.name), None)
        if hit is None:
            missing.append(a)
        else:
            free.remove(hit)
            differing.append((hit, a))
    return matched, differing, missing, free


def _first_difference(call: ToolCallEvent, action: ExpectedAction) -> tuple[str, Any, Any]:
    """The first argument (in the expected action's order) whose value differs."""
    for k, v in action.arguments.items():
        if k not in call.arguments or not _same(call.arguments[k], v):
            return k, call.arguments.get(k), v
    return "", None, None


def _wrong_leaves(got: Any, want: Any) -> list[Any]:
    """The scalar parts of ``got`` that differ from ``want`` (whole when not alike)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return [x for k in got for x in _wrong_leaves(got[k], want.get(k))]
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [x for g, w in zip(got, want, strict=True) for x in _wrong_leaves(g, w)]
    return [] if _same(got, want) else [got]


def expected_actions(view: RunView) -> Iterator[Finding]:
    actions = view.expected.actions
    if actions is None:
        return
    _, differing, missing, extra = align_actions(side_effect_writes(view), actions)
    for call, action in differing:
        decision = view.decision(call)
        key, got, want = _first_difference(call, action)
        yield Finding(decision.seq, "wrong-arguments",
                      f"{call.tool} at {view.address(call)} was called with "
                      f"{key}={short_text(got, 40)} (expected {short_text(want, 40)})")
        for leaf in _wrong_leaves(got, want):
            if (v := as_value(leaf)) is not None and not isinstance(leaf, dict | list):
                yield from trace(view, v, decision,
                                 f"was passed as {key} to {call.tool} where "
                                 f"{short_text(want, 30)} was expected",
                                 None if isinstance(want, dict | list) else as_value(want))
    for call in extra:
        yield Finding(view.decision(call).seq, "unexpected-write",
                      f"{call.tool}({short_text(call.arguments, 60)}) at {view.address(call)} "
                      "is not among the expected actions")
    if missing:
        end = view.final_answer or (view.steps[-1] if view.steps else None)
        if end is not None:
            for action in missing:
                yield Finding(end.seq, "missing-write",
                              f"the run ended without {action.name}"
                              f"({short_text(action.arguments, 60)})")
