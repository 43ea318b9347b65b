"""Plain-text rendering of runs and events for the terminal.

Sizes are said in the words of :class:`agentlab.model.RunCounts` (events, steps, calls,
state writes, approvals...), as every other view of a run says them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentlab.model import Event, RunCounts, RunSummary

__all__ = ["event_line", "runs_table", "summary_block", "text_table", "timeline"]


def _cost(c: float) -> str:
    return f"${c:,.4f}"


def text_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header row first."""
    all_rows = [tuple(head), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in all_rows)


def runs_table(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return "no runs in this store (record one, or try `agentlab demo`)"
    head = ("RUN", "WORKFLOW", "AGENT", "STATUS", "OK", "EVENTS", "CALLS", "ERR", "COST",
            "STARTED")
    rows = []
    for r in runs:
        ok = "-" if r.success is None else ("yes" if r.success else "no")
        agent = r.agent_name + (f"@{r.agent_version}" if r.agent_version else "")
        status = r.status + (f" ({r.run_kind})" if r.run_kind else "")
        rows.append((
            r.run_id[:12], r.workflow, agent, status, ok, f"{r.last_seq:,}",
            f"{r.llm_calls + r.tool_calls:,}", str(r.error_count), _cost(r.cost_usd), r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        ))
    return text_table(head, rows)


def summary_block(r: RunSummary, counts: RunCounts | None = None, *,
                  waited: str | None = None) -> str:
    """The summary of a run, a field a line. ``counts`` (from
    :func:`~agentlab.model.count_events` over the run's events) adds what the summary does
    not keep (steps, state writes); ``waited`` says how long the run waited for people."""
    c = counts if counts is not None else RunCounts.of_summary(r)
    overrides = f" ({r.override_count} overridden)" if r.override_count else ""
    lines = [
        f"run      {r.run_id}",
        f"workflow {r.workflow}   agent {r.agent_name} {r.agent_version or ''}".rstrip(),
        f"task     {r.task_id or '-'}   owner {r.owner or '-'}   team {r.team or '-'}   "
        f"phase {r.phase or '-'}",
        f"status   {r.status}   success {r.success}   score {r.score}",
        f"counts   {c.phrase(governance=False)}",
        f"govern   {c.approvals} approvals{overrides}   {c.denied} denied   "
        f"{c.errors} errors   {c.retries} retries",
        f"cost     {_cost(r.cost_usd)}   tokens {r.input_tokens} in / {r.output_tokens} out",
    ]
    if waited:
        lines.append(f"waited   {waited}")
    if r.duration_s is not None:
        lines.append(f"duration {r.duration_s:.3f} s")
    if r.parent_run_id:
        what = {"replay": "replay of", "rollback": "rollback of"}.get(r.run_kind or "",
                                                                      "forked from")
        at = f" at seq {r.fork_seq}" if r.fork_seq is not None else ""
        lines.append(f"origin   {what} {r.parent_run_id}{at}")
    return "\n".join(lines)


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


def event_line(e: Event) -> str:
    """One line describing an event, without its position."""
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


def timeline(events: Sequence[Event], *, waits: Mapping[int, str] | None = None) -> str:
    """Events as a tree: each step above the calls it contains, siblings in order.

    A step is written when it ends, after its children, so a parent is placed where its
    first descendant begins; the sequence number on each line keeps the true order visible.
    ``waits`` (seq to a duration such as ``14.7 s``) is shown on the decisions that
    people took that long to make.
    """
    waits = waits or {}
    ids = {e.id for e in events}
    children: dict[str | None, list[Event]] = {}
    for e in events:
        parent = e.parent_id if e.parent_id in ids else None
        children.setdefault(parent, []).append(e)
    first: dict[str, int] = {}

    def first_seq(e: Event) -> int:
        if e.id not in first:
            first[e.id] = min([e.seq, *(first_seq(c) for c in children.get(e.id, []))])
        return first[e.id]

    out: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for e in sorted(children.get(parent, []), key=first_seq):
            dur = f"{e.duration_ms:8.2f} ms" if e.duration_ms is not None else " " * 11
            wait = f"  [waited {waits[e.seq]}]" if e.seq in waits else ""
            out.append(f"{e.seq:>5}  {dur}  {'  ' * depth}{event_line(e)}{wait}")
            walk(e.id, depth + 1)

    walk(None, 0)
    return "\n".join(out)
