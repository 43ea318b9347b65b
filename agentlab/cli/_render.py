"""Plain-text rendering of runs and events for the terminal.

Sizes are said in the words of :class:`agentlab.model.RunCounts` (events, steps, calls,
state writes, approvals...), as every other view of a run says them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from agentlab.model import Event, RunCounts, RunSummary
from agentlab.model import describe_event as event_line

__all__ = ["event_line", "runs_table", "summary_block", "text_table", "timeline"]


def _unpriced(r: RunSummary) -> str:
    if not r.unpriced_count:
        return ""
    return (f" ({r.unpriced_count} of {r.llm_calls} model calls recorded no cost"
            f"{'' if r.unpriced_count == r.llm_calls else ': the figure counts the others'})")


def text_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header row first."""
    all_rows = [tuple(head), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in all_rows)


def runs_table(runs: Sequence[RunSummary], ids: Mapping[str, str] | None = None) -> str:
    """The runs, a line each; ``ids`` maps run ids to what to print (their shortest
    unique prefixes, from ``SqlStore.short_ids``; default: 12 characters)."""
    if not runs:
        return "no runs in this store (record one, or try `agentlab demo`)"
    head = ("RUN", "WORKFLOW", "AGENT", "STATUS", "OK", "EVENTS", "CALLS", "ERR", "COST",
            "STARTED")
    rows = []
    for r in runs:
        ok = "-" if r.success is None else ("yes" if r.success else "no")
        agent = r.agent_name + (f"@{r.agent_version}" if r.agent_version else "")
        status = r.shown_status + (f" ({r.run_kind})" if r.run_kind else "")
        rows.append((
            (ids or {}).get(r.run_id) or r.run_id[:12], r.workflow, agent, status, ok,
            f"{r.last_seq:,}",
            f"{r.llm_calls + r.tool_calls:,}", str(r.error_count), r.shown_cost, r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
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
        f"status   {r.shown_status}   success {r.success}   score {r.score}",
        *([f"         its recorder stopped renewing the run's lease at "
           f"{r.held_until:%Y-%m-%d %H:%M:%S} UTC (killed?): nothing will end it; "
           f"`agentlab resume {r.run_id}` carries it on"] if r.abandoned and r.held_until
          else []),
        *(["         its recorder paused it (waiting for a decision, say): resuming it "
           f"(`record_run(run_id=..., resume=True)`, `agentlab resume {r.run_id}`) carries "
           "it on"] if r.paused else []),
        f"counts   {c.phrase(governance=False)}",
        f"govern   {c.approvals} approvals{overrides}   {c.denied} denied   "
        f"{c.errors} errors   {c.retries} retries",
        f"cost     {r.shown_cost}{_unpriced(r)}   tokens {r.input_tokens} in / "
        f"{r.output_tokens} out",
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


_FULL_FIELDS = ("task_input", "arguments", "messages", "response", "result", "output",
                "content", "error", "denial", "actions", "outputs", "metadata")


def _payload_lines(e: Event, indent: str) -> list[str]:
    """The event's payloads in full, as indented JSON under its line (``show --full``)."""
    body = e.model_dump(mode="json", include=set(_FULL_FIELDS), exclude_none=True)
    lines: list[str] = []
    for name in _FULL_FIELDS:
        if name not in body or body[name] in ({}, []):
            continue
        text = json.dumps(body[name], indent=2, ensure_ascii=False, sort_keys=True)
        first, *rest = text.splitlines()
        lines.append(f"{indent}{name}: {first}")
        lines.extend(f"{indent}{' ' * (len(name) + 2)}{line}" for line in rest)
    return lines


def timeline(events: Sequence[Event], *, waits: Mapping[int, str] | None = None,
             full: bool = False) -> str:
    """Events as a tree: each step above the calls it contains, siblings in order.

    A step is written when it ends, after its children, so a parent is placed where its
    first descendant begins; the sequence number on each line keeps the true order visible.
    ``waits`` (seq to a duration such as ``14.7 s``) is shown on the decisions that
    people took that long to make. ``full`` writes every payload (arguments, results,
    messages, responses, errors) whole under its line instead of only the line's excerpt.
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
            if full:
                out.extend(_payload_lines(e, " " * 20 + "  " * depth))
            walk(e.id, depth + 1)

    walk(None, 0)
    return "\n".join(out)
