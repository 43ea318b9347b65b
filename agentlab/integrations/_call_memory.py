"""Which of a run's adapter tool calls already ended, by the model's tool-call id.

Agent frameworks may invoke a tool wrapper again for a call that already ran: a node
re-executed when a graph resumes, a retrying layer, a run continued by another process.
Each adapter keys its calls on the model's tool-call id (side effects under ``PREFIX<id>``,
read-only calls recording the id as ``call_id``) and asks :func:`calls_of` first: a call id
that ended gets its first outcome back, and nothing runs or is recorded again.

The memory is kept per run recorder. A resumed run seeds it from the store, so a process
that continues a run knows what its earlier processes did; a side effect whose intent was
recorded without a result (its process died while it ran) is ``blocked``: nobody can tell
whether it took effect (:func:`blocked_error`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from agentlab.errors import ResumeBlockedError
from agentlab.model import ToolCallEvent, ToolIntentEvent

__all__ = ["Outcome", "blocked_error", "calls_of"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: ``ok`` (``value``: its result), ``denied`` (the denial), ``error``
    (the exception, or its recorded ``Type: message`` when read from the store) or
    ``blocked`` (the tool's name: an earlier process began it and never recorded an end)."""

    status: Literal["ok", "denied", "error", "blocked"]
    value: Any


_memory: weakref.WeakKeyDictionary[Any, dict[str, dict[str, Outcome]]] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def calls_of(run: Any, prefix: str) -> dict[str, Outcome]:
    """The ended calls of ``run`` (a :class:`~agentlab.record.RunRecorder`) whose side
    effects are keyed ``prefix<tool-call id>``, by tool-call id; the adapter adds each call
    it makes as it ends. Read from the store the first time a resumed run asks."""
    with _lock:
        by_prefix = _memory.setdefault(run, {})
        ended = by_prefix.get(prefix)
        if ended is None:
            ended = by_prefix[prefix] = _recorded(run, prefix) \
                if run._taken_up_us is not None else {}  # only a resumed run has a past
        return ended


def _recorded(run: Any, prefix: str) -> dict[str, Outcome]:
    ended: dict[str, Outcome] = {}
    intents: dict[str, str] = {}
    for e in run.store.events(run.run_id, kinds=["tool_intent", "tool_call"]):
        key = getattr(e, "idempotency_key", None) or ""
        if isinstance(e, ToolIntentEvent):
            if key.startswith(prefix):
                intents[key[len(prefix):]] = e.tool
            continue
        assert isinstance(e, ToolCallEvent)
        # A side effect of ours by its key; a read-only call (no key, no intent, not made
        # inside another tool) by the model's id it recorded as call_id.
        call_id = key[len(prefix):] if key.startswith(prefix) else \
            e.call_id if not key and e.intent_id is None and not e.in_tool else None
        if call_id is None:
            continue
        intents.pop(call_id, None)
        if e.status == "ok":
            ended[call_id] = Outcome("ok", e.result)
        elif e.status == "denied" and e.denial is not None:
            ended[call_id] = Outcome("denied", e.denial)
        else:
            err = e.error
            ended[call_id] = Outcome("error", f"{err.type}: {err.message}" if err else
                                     "the call failed")
    for call_id, tool_name in intents.items():
        ended[call_id] = Outcome("blocked", tool_name)
    return ended


def blocked_error(tool_name: str) -> ResumeBlockedError:
    """The error for a side effect an earlier process began and never recorded an end of."""
    return ResumeBlockedError(
        f"{tool_name}'s side effect started in an earlier process and never recorded a "
        "result: nobody can tell whether it took effect. Check the target system, then start "
        "a new run (the adapter does not reconcile a call an earlier process began)")
