"""One vocabulary of counts for a run, and the one function that counts.

Every view of a run (``agentlab show``, ``agentlab verify``, the timeline's title, explain's
text, a run summary's text and HTML) says how big it is with these words, so the numbers of
one run agree wherever they are printed:

- **events**: every record in the run's hash chain, from ``run_started`` to ``run_ended``
  (what ``verify`` checks; a run summary's ``last_seq``);
- **steps**: the named step spans (``al.step("triage")``);
- **calls**: model calls plus tool calls, a refused tool call included (it was asked for
  and recorded);
- **messages**: conversation turns (user, assistant, or one agent of several);
- **state writes**: checkpoints of the run state;
- **approvals**: decisions a human made (approve, reject or edit); a request that got no
  decision is **undecided**;
- **denied**: tool calls refused before they ran (by a grant, a policy rule or a human);
- **errors**: failed calls and errors raised in the run, each exception once;
- **retries**: failed attempts that were tried again.

>>> counts = count_events(store.events(run_id))     # doctest: +SKIP
>>> counts.phrase()
'33 events: 7 steps, 8 calls (3 model, 5 tool), 11 state writes, 2 approvals, 1 denied'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentlab.model._events import Event
from agentlab.model._run import RunSummary
from agentlab.model._stats import ZERO, event_stats

__all__ = ["RunCounts", "count_events"]


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How many of each thing a run recorded (see the module docstring for the words)."""

    events: int | None = None
    """None when only part of the record was counted (timeline rows, say)."""
    steps: int | None = None
    """None when counted from a run summary, which does not keep it."""
    model_calls: int = 0
    tool_calls: int = 0
    messages: int | None = None
    state_writes: int | None = None
    approvals: int = 0
    undecided: int | None = None
    denied: int = 0
    errors: int = 0
    retries: int = 0

    @property
    def calls(self) -> int:
        """Model calls plus tool calls."""
        return self.model_calls + self.tool_calls

    @classmethod
    def of_summary(cls, summary: RunSummary) -> RunCounts:
        """The counts a run summary keeps (its counters are the same rules, kept current
        as events are written); ``steps``, ``messages``, ``state_writes`` and ``undecided``
        are unknown there."""
        return cls(events=summary.last_seq, model_calls=summary.llm_calls,
                   tool_calls=summary.tool_calls, approvals=summary.approval_count,
                   denied=summary.denied_count, errors=summary.error_count,
                   retries=summary.retry_count)

    def calls_phrase(self) -> str:
        """``8 calls (3 model, 5 tool)``."""
        return f"{_n(self.calls, 'call')} ({self.model_calls:,} model, {self.tool_calls:,} tool)"

    def phrase(self, *, governance: bool = True) -> str:
        """The counts in one line, zeros of the optional kinds left out:
        ``33 events: 7 steps, 8 calls (3 model, 5 tool), 11 state writes, 2 approvals``."""
        parts = [] if self.steps is None else [_n(self.steps, "step")]
        parts.append(self.calls_phrase())
        if self.messages:
            parts.append(_n(self.messages, "message"))
        if self.state_writes:
            parts.append(_n(self.state_writes, "state write"))
        if governance:
            if self.approvals:
                parts.append(_n(self.approvals, "approval"))
            if self.undecided:
                parts.append(f"{self.undecided:,} undecided")
            if self.denied:
                parts.append(f"{self.denied:,} denied")
            if self.errors:
                parts.append(_n(self.errors, "error"))
            if self.retries:
                parts.append(_n(self.retries, "retry", "retries"))
        body = ", ".join(parts)
        return body if self.events is None else f"{_n(self.events, 'event')}: {body}"


def count_events(events: Iterable[Event]) -> RunCounts:
    """Count a run's events in the vocabulary of this module (events of several runs are
    summed). Calls, errors, retries, refusals and decisions are counted by the run summary's
    own rule (:func:`agentlab.model._stats.event_stats`), so a complete run's counts agree
    with :meth:`RunCounts.of_summary` of its summary; steps, messages, state writes and
    undecided requests are what the summary does not keep."""
    total = steps = messages = writes = undecided = 0
    stats = ZERO
    for e in events:
        total += 1
        stats += event_stats(e.kind, e.__dict__)  # the event's fields, not a dump of them
        if e.kind == "step":
            steps += 1
        elif e.kind == "checkpoint":
            writes += 1
        elif e.kind == "message":
            messages += 1
        elif e.kind == "approval" and e.action is None:
            undecided += 1
    return RunCounts(events=total, steps=steps, model_calls=stats.llm_calls,
                     tool_calls=stats.tool_calls, messages=messages, state_writes=writes,
                     approvals=stats.approvals, undecided=undecided, denied=stats.denials,
                     errors=stats.errors, retries=stats.retries)
