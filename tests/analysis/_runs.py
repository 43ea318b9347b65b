"""Small support-agent runs recorded from a script, for the culprit and check tests.

A script is a list of steps (a user's or system message, what the agent says, a model
response, a tool call with its result or error); :func:`record` plays it through the real
recorder (tools are ``@al.tool`` functions, writes are side-effecting and granted) into a
store and says which seq each step got.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import agentlab as al
from agentlab.model import Event
from agentlab.store import RunStore
from agentlab.testing import allow_all

__all__ = ["Call", "Model", "Recorded", "Say", "System", "ToolFailed", "User", "record"]


@dataclass(frozen=True)
class User:
    text: str


@dataclass(frozen=True)
class System:
    text: str


@dataclass(frozen=True)
class Say:
    """What the agent tells the user (its last one is the final answer)."""

    content: Any


@dataclass(frozen=True)
class Model:
    """A model call's response: text, or ``{"tool_calls": [...]}`` asking for tools."""

    response: Any


@dataclass(frozen=True)
class Call:
    """A tool call: its result, or (``error``) the message of the exception it raised.
    ``write=True`` makes it a side-effecting tool (scoped, granted)."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    write: bool = False


Step = User | System | Say | Model | Call


class ToolFailed(RuntimeError):
    """What a scripted tool raises."""


@dataclass
class Recorded:
    store: RunStore
    run_id: str
    seqs: list[int]
    """The seq of each script step, in script order."""

    def events(self) -> list[Event]:
        return list(self.store.events(self.run_id))


def _tool(step: Call) -> Any:
    def impl(**kwargs: Any) -> Any:
        if step.error is not None:
            raise ToolFailed(step.error)
        return step.result

    return al.tool(name=step.tool, side_effect=step.write,
                   scope=f"support:{step.tool}" if step.write else None)(impl)


def record(store: RunStore, steps: Sequence[Step], *, success: bool | None = False,
           expected: Mapping[str, Any] | None = None, task_id: str | None = None,
           task_input: Any = None, agent: str = "support-bot") -> Recorded:
    """Record ``steps`` as one run of ``agent`` (``success`` its outcome; None: not set)."""
    with al.record_run("support", agent=agent, store=store, task_id=task_id,
                       task_input=task_input, expected=dict(expected) if expected else None,
                       grants=[allow_all(store, agent=agent)]) as run:
        for step in steps:
            if isinstance(step, User):
                run.message(step.text, role="user")
            elif isinstance(step, System):
                run.message(step.text, role="system")
            elif isinstance(step, Say):
                run.message(step.content)
            elif isinstance(step, Model):
                run.llm_call("gpt-test", messages=[{"role": "user", "content": "..."}],
                             response=step.response, input_tokens=10, output_tokens=5)
            else:
                with contextlib.suppress(ToolFailed):
                    _tool(step)(**step.args)
        if success is not None:
            run.outcome(success=success)
    seqs = [e.seq for e in store.events(run.run_id)
            if e.kind in ("message", "llm_call", "tool_call")]
    assert len(seqs) == len(steps), (seqs, steps)
    return Recorded(store, run.run_id, seqs)
