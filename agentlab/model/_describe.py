"""One line of text per event: how every front end (the CLI, the notebook views) names
what an event did, so they read the same."""

from __future__ import annotations

from typing import Any

from agentlab.model._events import Event

__all__ = ["describe_event"]


def _cost(c: float) -> str:
    return f"${c:,.4f}"


def _short(value: Any, width: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _origin(e: Event) -> str:
    """How a call in a replay, fork or resume got its answer, when it was not executed."""
    replayed = getattr(e, "replayed", None)
    if replayed is None:
        return ""
    at = f" seq {replayed.seq}" if replayed.seq is not None else ""
    return {"record": f" [served from the record{at}]", "stub": " [stub]",
            "edit": f" [edited by the fork{at}]"}[replayed.source]


def describe_event(e: Event) -> str:
    """One line describing an event, without its position: what the terminal's ``show``
    and the notebook's views print for it."""
    return _event_line(e) + _origin(e)


def _event_line(e: Event) -> str:
    if e.kind == "tool_call":
        fx = " [side effect]" if e.side_effect else ""
        via = f" via {e.grant}" if e.grant else ""
        if e.status == "denied" and e.denial is not None:
            return (f"tool {e.tool}({_short(e.arguments, 40)}){fx} -> DENIED "
                    f"({e.denial.code}) {_short(e.denial.reason, 60)}")
        status = "ok" if e.status == "ok" else f"ERROR {e.error.type if e.error else ''}"
        shown = e.result if e.status == "ok" else (e.error.message if e.error else "")
        return (f"tool {e.tool}({_short(e.arguments, 40)}){fx}{via} -> {status} "
                f"{_short(shown, 50)}")
    if e.kind == "tool_intent":
        via = f" via {e.grant}" if e.grant else ""
        return f"intent {e.tool}{via} key={e.idempotency_key}"
    if e.kind == "approval":
        if e.action is None:
            return f"approval {e.tool}: no decision ({_short(e.reason or '', 50)})"
        edit = f" -> {_short(e.arguments, 40)}" if e.arguments is not None else ""
        why = f": {_short(e.reason, 40)}" if e.reason else ""
        return f"approval {e.tool}: {e.action} by {e.by} via {e.channel}{edit}{why}"
    if e.kind == "phase":
        return f"phase {e.previous or '-'} -> {e.phase}"
    if e.kind == "run_resumed":
        return f"run resumed after seq {e.from_seq}" + (f": {e.reason}" if e.reason else "")
    if e.kind == "llm_call":
        cost = _cost(e.cost_usd) if e.cost_usd is not None else "cost ?"
        return f"llm {e.model} {e.input_tokens or 0}/{e.output_tokens or 0} tok {cost} -> " \
               f"{_short(e.response, 50)}"
    if e.kind == "checkpoint":
        return f"state writes {', '.join(e.writes) or '-'}" + (
            f" deletes {', '.join(e.deletes)}" if e.deletes else "")
    if e.kind == "step":
        return f"step {e.name}" + ("" if e.status == "ok" else " ERROR")
    if e.kind == "retry":
        return f"retry {e.target} attempt {e.attempt}: {_short(e.error.message, 50)}"
    if e.kind == "error":
        return f"error {e.error.type}: {_short(e.error.message, 60)}"
    if e.kind == "message":
        return f"{e.agent or e.role}: {_short(e.content, 70)}"
    if e.kind == "expectation":
        parts = ([f"{len(e.actions)} action(s)"] if e.actions is not None else []) + (
            [f"outputs {_short(e.outputs, 40)}"] if e.outputs is not None else [])
        return "expected: " + ", ".join(parts)
    if e.kind == "run_started":
        return f"run started ({e.workflow} / {e.agent_name})"
    assert e.kind == "run_ended"
    return f"run ended: {e.status}" + (f" success={e.success}" if e.success is not None else "")
