"""Checks: each looks at a failed run and yields evidence against its steps.

A check is any callable ``check(view: RunView) -> Iterable[Finding]``. The default set is
deterministic and needs no network; a team adds its own (a domain rule, a model acting as
judge) with ``explain(..., checks=[...])`` or installs a rule pack that declares an entry
point in the ``agentlab.checks`` group (the entry point is a check, or a list of them).

The default checks, each described on the evidence it yields:

* :func:`expected_outputs` - the final answer against the expected outputs: the value it
  states in an expected one's place is traced back to where it entered the run;
* :func:`expected_actions` - side-effecting calls aligned with the expected ones on tool
  and arguments (a failed write had no effect and matches nothing): wrong arguments (with
  the wrong value traced back), unexpected writes, missing writes;
* :func:`invented_values` - a side-effecting call's argument that no earlier event holds;
* :func:`tool_errors` - a failed call that was retried successfully at once weighs little;
  one the run never put right weighs more;
* :func:`preconditions` - a call that failed on an entity an earlier write had changed
  points back to that write;
* :func:`repeated_writes` - the same write twice on the same entity;
* :func:`unconfirmed_writes` - a write with no explicit confirmation from the user since the
  agent last spoke, in a run whose system prompt asks for one;
* :func:`contradicting_answer` - the final answer gives a figure for a field that a tool
  result gives otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from agentlab.analysis._evidence import WEIGHTS, Finding
from agentlab.analysis._expectation_checks import (
    SPECIFIC,
    expected_actions,
    expected_outputs,
    short_text,
    side_effect_writes,
    trace,
    unanswered,
)
from agentlab.analysis._values import (
    Value,
    as_value,
    is_leaf_value,
)
from agentlab.analysis._view import RunView
from agentlab.model import Event, LLMCallEvent, MessageEvent, ToolCallEvent, dumps

__all__ = [
    "DEFAULT_CHECKS",
    "Check",
    "contradicting_answer",
    "expected_actions",
    "expected_outputs",
    "installed_checks",
    "invented_values",
    "preconditions",
    "repeated_writes",
    "stand_ins",
    "tool_errors",
    "trace",
    "unconfirmed_writes",
]

Check = Callable[[RunView], Iterable[Finding]]

# -- values nobody gave -----------------------------------------------------------------------


def invented_values(view: RunView) -> Iterator[Finding]:
    """A side-effecting call's argument value that no earlier event holds, or that the
    model call deciding it was the first to say: the agent made it up (an id, an amount, a
    date nobody said)."""
    for call in view.calls:
        if not call.side_effect or call.in_tool:
            continue
        decision = view.decision(call)
        for key, v in _field_values(call.arguments):
            if v.specificity < SPECIFIC or v.key in view.participants:
                continue
            h = view.values.origin(v.key, before=call.seq + 1)
            # first held by the call itself, or first said by the model that chose it
            if h is not None and (h.seq == call.seq or (
                    h.seq == decision.seq and h.part == "output")):
                yield Finding(decision.seq, "invented-value",
                              f"{call.tool} was given {key}={v.text!r}, which no earlier "
                              "event of the run holds",
                              WEIGHTS["invented-value"] * v.specificity)


def _field_values(x: Any, key: str = "") -> Iterator[tuple[str, Value]]:
    """(field, value) for each field of ``x`` whose whole value is a value: an id, an
    amount, a date. Prose (a ticket's description, a message body) is written by the agent
    as a matter of course; the values inside it are not arguments it was given."""
    if isinstance(x, dict):
        for k, item in x.items():
            yield from _field_values(item, str(k))
    elif isinstance(x, list | tuple):
        for item in x:
            yield from _field_values(item, key)
    else:
        whole = (isinstance(x, int | float) and not isinstance(x, bool)) or (
            isinstance(x, str) and is_leaf_value(x))
        v = as_value(x) if whole else None
        if v is not None:
            yield key, v


_STAND_IN = re.compile(
    r"\b(?:(?:let'?s|we|i)(?:'ll|'d| will| can| could| must| need to| have to| shall)?"
    r"(?:\s+\w+){0,2}?\s+(?:assume|simulate|pretend|hypothesi[sz]e|make up|invent)|assuming|"
    r"(?:on|under|with|based on) the assumption|hypothetical(?:ly)?|simulated|placeholders?|"
    r"dummy|mock(?:ed)? (?:data|values?|results?)|made[- ]up|"
    r"for (?:the sake of )?(?:demonstration|illustration)|"
    r"(?:sample|example|synthetic|fake) (?:data|values?|figures?|numbers?))\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def stand_ins(view: RunView) -> Iterator[Finding]:
    """A step that says, in its own words, that it assumes, simulates or makes up what it
    should have found out: the values it goes on with stand in for facts nobody looked up.
    A sentence the step repeats from an earlier event is not its own; a word the task
    itself uses ("simulate" in a task about simulations) is no confession."""
    started = view.started
    task = _flat(started.task_input) if started is not None else ""
    earlier: list[str] = []
    for e in view.events:
        text = _own_text(view, e)
        if text is None:
            if isinstance(e, MessageEvent | ToolCallEvent):
                earlier.append(_flat(e.content if isinstance(e, MessageEvent) else e.result))
            continue
        for m in _SENTENCE.finditer(text):
            sentence = m.group().strip()
            hit = _STAND_IN.search(sentence)
            if hit is None or hit.group().casefold() in task:
                continue
            if any(sentence.casefold() in prior for prior in earlier):
                continue
            yield Finding(e.seq, "stand-in", f"says {short_text(sentence, 90)!r}")
            break
        earlier.append(text.casefold())


def _own_text(view: RunView, e: Event) -> str | None:
    """What the agent wrote at ``e``: an assistant message or a model's text."""
    if (isinstance(e, MessageEvent) and e.role == "assistant") or isinstance(e, LLMCallEvent):
        said = view.said(e)
        return said if isinstance(said, str) else None
    return None


def _flat(x: Any) -> str:
    if x is None:
        return ""
    return (x if isinstance(x, str) else dumps(x).decode()).casefold()


# -- errors -----------------------------------------------------------------------------------


def tool_errors(view: RunView) -> Iterator[Finding]:
    """A failed call weighs little when the next call of the same tool succeeded, more when
    the run never put it right. A run that was to give an answer, and neither gave one nor
    ever got the expected value from a tool, did not recover from anything: a retry that
    ran without error still left it short of its goal, so there every failure counts as
    not put right."""
    calls = [c for c in view.calls if not c.in_tool]
    stuck: bool | None = None
    for i, call in enumerate(calls):
        if call.status != "error":
            continue
        after = next((c for c in calls[i + 1:] if c.tool == call.tool), None)
        kind = call.error.type if call.error is not None else "error"
        where = f"{call.tool} failed at {view.address(call)} ({kind})"
        if after is not None and after.status == "ok":
            if stuck is None:
                stuck = unanswered(view)
            if not stuck:
                yield Finding(view.decision(call).seq, "error-recovered",
                              f"{where}; the next {call.tool} call succeeded")
                continue
            yield Finding(view.decision(call).seq, "error-continued",
                          f"{where}; the next {call.tool} call ran, but the run never got "
                          "the answer nor gave one")
        else:
            yield Finding(view.decision(call).seq, "error-continued",
                          f"{where} and was not put right")


def _targets(view: RunView, call: ToolCallEvent) -> set[str]:
    """The entities a call is about: the specific values among its arguments."""
    return {v.key for v in view.values.at(call.seq, "arguments").values()
            if v.specificity >= SPECIFIC}


def preconditions(view: RunView) -> Iterator[Finding]:
    """A call that failed on an entity an earlier successful write had changed: the write
    is the likelier cause."""
    writes: list[ToolCallEvent] = []
    for call in view.calls:
        if call.in_tool:
            continue
        if call.status == "error":
            targets = _targets(view, call)
            for w in reversed(writes):
                shared = targets & _targets(view, w)
                if shared:
                    yield Finding(view.decision(w).seq, "precondition",
                                  f"{call.tool} at {view.address(call)} failed on "
                                  f"{sorted(shared)[0]!r}, which {w.tool} at "
                                  f"{view.address(w)} had changed")
                    break
        elif call.side_effect and call.status == "ok":
            writes.append(call)


def repeated_writes(view: RunView) -> Iterator[Finding]:
    """The same write made twice on the same entity."""
    first: dict[tuple[str, str], ToolCallEvent] = {}
    for call in side_effect_writes(view):
        targets = sorted(_targets(view, call))
        earlier = next(((t, first[(call.tool, t)]) for t in targets if (call.tool, t) in first),
                       None)
        if earlier is not None:
            yield Finding(view.decision(call).seq, "repeated-write",
                          f"{call.tool} at {view.address(call)} repeats the one at "
                          f"{view.address(earlier[1])} on {earlier[0]!r}")
        for t in targets:
            first.setdefault((call.tool, t), call)


# -- confirmation -----------------------------------------------------------------------------

_ASKS_CONFIRMATION = re.compile(
    r"explicit(?:ly)?\s+(?:user\s+)?confirm|confirmation|confirm\s+(?:with|before)",
    re.IGNORECASE)
_NEGATIVE = re.compile(r"\b(?:no|not|don'?t|do not|never|stop|cancel|wait|hold on)\b",
                       re.IGNORECASE)
_AFFIRMATIVE = re.compile(
    r"\b(?:yes|yeah|yep|sure|ok(?:ay)?|confirm(?:ed)?|go ahead|proceed|please do|do it|"
    r"correct|that'?s right|sounds good)\b", re.IGNORECASE)


def unconfirmed_writes(view: RunView) -> Iterator[Finding]:
    """A write with no explicit confirmation from the user since the agent last spoke, in a
    run whose system prompt asks for one."""
    if not any(isinstance(e, MessageEvent) and e.role == "system"
               and _ASKS_CONFIRMATION.search(str(e.content)) for e in view.events):
        return
    # A confirmation covers the writes made before the agent next speaks: once it has
    # written and then said something more, the next write needs a new "yes".
    last_user: MessageEvent | None = None
    wrote = False
    for e in view.events:
        if isinstance(e, MessageEvent) and e.role == "user":
            last_user, wrote = e, False
        elif (isinstance(e, LLMCallEvent) and view.said(e) is not None and not (
                isinstance(e.response, dict) and e.response.get("tool_calls"))) or (
                isinstance(e, MessageEvent) and e.role == "assistant"):
            if wrote:
                last_user, wrote = None, False
        elif isinstance(e, ToolCallEvent) and e.side_effect and e.status == "ok":
            words = "" if last_user is None else str(last_user.content)
            ok = bool(_AFFIRMATIVE.search(words)) and not _NEGATIVE.search(words)
            if not ok:
                said = ("no user message since the agent last spoke" if last_user is None
                        else f"the user's last words {short_text(last_user.content, 50)!r}, "
                        "which confirm nothing")
                yield Finding(view.decision(e).seq, "unconfirmed-write",
                              f"{e.tool} at {view.address(e)} was made after {said}")
            wrote = True


# -- the answer against the results -----------------------------------------------------------


def _figures(x: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field name, number) pairs of a structured result."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _figures(v, str(k))
    elif isinstance(x, list):
        for v in x:
            yield from _figures(v, path)
    elif isinstance(x, int | float) and not isinstance(x, bool) and path:
        yield path, x


def contradicting_answer(view: RunView) -> Iterator[Finding]:
    """The final answer names a field of a tool result and gives, right after the name, a
    figure that differs from the result's while no result gives the stated one."""
    final = view.final_answer
    said = view.said(final) if final is not None else None
    if not isinstance(said, str):
        return
    text = said.casefold()
    for call in view.calls:
        if call.status != "ok" or call.seq > final.seq:  # type: ignore[union-attr]
            continue
        for name, figure in _figures(call.result):
            field = name.replace("_", " ").casefold()
            if len(field) < 4:
                continue
            for m in re.finditer(rf"\b{re.escape(field)}\b\W{{0,20}}?([-$€£]?[\d,]+(?:\.\d+)?)",
                                 text):
                stated = as_value(m.group(1))
                wanted = as_value(figure)
                if stated is None or wanted is None or stated.key == wanted.key:
                    continue
                if view.values.origin(stated.key, before=final.seq) is not None:  # type: ignore[union-attr]
                    continue
                yield Finding(final.seq, "contradicts-result",  # type: ignore[union-attr]
                              f"the answer gives {field} as {m.group(1)}, where {call.tool} "
                              f"at {view.address(call)} gave {figure}")
                break


DEFAULT_CHECKS: tuple[Check, ...] = (
    expected_outputs, expected_actions, invented_values, stand_ins, tool_errors,
    preconditions, repeated_writes, unconfirmed_writes, contradicting_answer,
)
"""The checks ``explain`` runs by default (deterministic, no network)."""


@cache
def installed_checks() -> tuple[Check, ...]:
    """Checks of installed rule packs: each entry point of the ``agentlab.checks`` group
    loads a check or a list of checks. Read once per process (``installed_checks.
    cache_clear()`` reads them again)."""
    out: list[Check] = []
    for ep in entry_points(group="agentlab.checks"):
        loaded = ep.load()
        if callable(loaded):
            out.append(loaded)
        else:
            out.extend(loaded)
    return tuple(out)
