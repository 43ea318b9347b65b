"""Timeline rows: one flat, chart-ready row per step-like event of a run.

A row says where an event sits (lane, nesting depth, start and end), what it was (tool,
model or step name; status) and what governed it (grant, credential, approval, policy rule),
with its cost, tokens, a one-line summary and what a postmortem found about it (culprit,
stale read, denied, rejected or edited call, error). Time spent waiting is a row of its own
in the ``wait`` lane: a human's approval (request to decision) and a retry's backoff. Rows
carry no pictures: the display layer turns them into a chart
(``agentlab.display.timeline_chart``), a notebook may turn them into a frame.

>>> rows = timeline_rows(store.events(rejected_run_id))         # doctest: +SKIP
>>> [(r.seq, r.lane, r.name, r.status) for r in rows if r.status != "ok"]   # doctest: +SKIP
[(18, 'governance', 'set_priority', 'rejected'), (19, 'tool', 'set_priority', 'denied'),
 (24, 'governance', 'draft_reply', 'approved')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, make_dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from agentlab.model import ApprovalRequest, Event, RunCounts, dumps

if TYPE_CHECKING:
    from agentlab.analysis._explain import Explanation

__all__ = [
    "LANES", "LANE_TITLES", "PROBLEM_STATUSES", "STATUSES", "Lane", "TimelineRow",
    "human_duration", "timeline_counts", "timeline_rows",
]

Lane = Literal["llm", "tool", "step", "message", "governance", "wait", "state", "error"]

LANES: tuple[Lane, ...] = (
    "step", "message", "llm", "tool", "governance", "wait", "state", "error",
)
"""Every lane, in the order a chart shows them (work first, then what governs it and the
time spent waiting, then what it recorded, errors last)."""

LANE_TITLES: dict[str, str] = {
    "step": "steps", "message": "messages", "llm": "model calls", "tool": "tool calls",
    "governance": "approvals & phases", "wait": "waits", "state": "state writes",
    "error": "errors & retries",
}
"""How a chart names each lane (the words of :mod:`agentlab.model._counts`)."""

STATUSES: tuple[str, ...] = (
    "ok", "wait", "approved", "edited", "retry", "unfinished", "no_decision", "rejected",
    "denied", "error",
)
"""Every status a row can have, from benign to bad (the order of a chart's legend)."""

PROBLEM_STATUSES: frozenset[str] = frozenset({"error", "denied", "rejected"})
"""Statuses that count as a problem in summaries: a failure, or a call refused before it
ran."""

_LANE_OF: dict[str, Lane] = {
    "llm_call": "llm",
    "tool_call": "tool",
    "tool_intent": "tool",
    "step": "step",
    "message": "message",
    "approval": "governance",
    "phase": "governance",
    "checkpoint": "state",
    "run_resumed": "state",
    "retry": "error",
    "error": "error",
}
_APPROVAL_STATUS = {"approve": "approved", "reject": "rejected", "edit": "edited"}
_STATUS_FINDING = {"denied": "denied", "rejected": "rejected by a human",
                   "edited": "edited by a human", "error": "error"}
_SUMMARY_WIDTH = 100
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One step-like event placed on a timeline."""

    run_id: str
    seq: int
    event_id: str
    kind: str
    """The event kind (``tool_call``, ``llm_call``, ``step``...)."""
    lane: Lane
    agent: str
    """The agent that took the step: the event's own ``agent`` in a run of several agents,
    else the run's (from ``run_started``; the run id if absent)."""
    depth: int
    """Nesting: 0 for a top-level event, 1 inside one step, and so on."""
    parent_seq: int | None
    name: str
    """Tool, model or step name; the retried target; the error type; the phase."""
    status: str
    """One of :data:`STATUSES`."""
    start: datetime
    end: datetime
    """``start + duration_ms``; equal to ``start`` for an instant (no duration recorded)."""
    duration_ms: float | None
    """None for events without a duration (checkpoints, approvals, phases, most errors)."""
    grant: str | None = None
    credential: str | None = None
    """Keyed fingerprint of the secret a tool call used."""
    approval: str | None = None
    """The approval request id (of a tool call that needed one, or of the decision)."""
    policy_rule: str | None = None
    phase: str | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    summary: str = ""
    finding: str = ""
    """What a postmortem found here, ``; ``-separated: ``culprit #1 (score 9)``, ``stale
    read``, ``denied``, ``rejected by a human``, ``edited by a human``, ``error``; empty
    for nothing. Culprits and stale reads come from an explanation given to
    :func:`timeline_rows`; the rest from the row's own status."""

    @property
    def tokens(self) -> int | None:
        """Input plus output tokens of an LLM call (None when neither was recorded)."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


# A frozen dataclass sets each of its 23 fields through object.__setattr__: about 5 µs a row,
# a fifth of the time to build 10,000 rows. Rows are built as an unfrozen twin with the same
# slots and then given their real class (allowed: the layouts are identical), 1 µs a row.
_Builder = make_dataclass("_Builder", [f.name for f in fields(TimelineRow)], slots=True,
                          init=True, repr=False, eq=False)


def _short(text: str, width: int = _SUMMARY_WIDTH) -> str:
    if len(text) <= width and text.isprintable() and "  " not in text:
        return text  # the usual case, about ten times cheaper than the general one
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _args(arguments: Mapping[str, Any] | None) -> str:
    if not arguments:
        return ""
    return _short(dumps(arguments).decode(), 40)


_Fields = tuple[str, str, str | None, str | None, str | None, str | None, str | None,
                float | None, int | None, int | None, str]
"""name, status, grant, credential, approval, policy_rule, phase, cost_usd, input_tokens,
output_tokens, summary: the row fields that depend on the event kind."""


def _fields(e: Event) -> _Fields:
    if e.kind == "tool_call":
        call = f"{e.tool}({_args(e.arguments)})"
        if e.status == "denied" and e.denial is not None:
            d = e.denial
            return (e.tool, "denied", e.grant or d.grant, e.credential, e.approval,
                    e.policy_rule or d.rule, e.phase, e.cost_usd, None, None,
                    f"{call} denied ({d.code}): {d.reason}")
        if e.status == "error":
            err = f"{e.error.type}: {e.error.message}" if e.error else "error"
            text = f"{call} failed: {err}"
        else:
            text = f"{call} ok" if e.attempt == 1 else f"{call} ok (attempt {e.attempt})"
        return (e.tool, e.status, e.grant, e.credential, e.approval, e.policy_rule, e.phase,
                e.cost_usd, None, None, text)
    if e.kind == "llm_call":
        cost = f" ${e.cost_usd:.4f}" if e.cost_usd is not None else ""
        text = f"{e.model} {e.input_tokens or 0}/{e.output_tokens or 0} tok{cost}"
        if e.error is not None:
            text += f" failed: {e.error.type}: {e.error.message}"
        return (e.model, e.status, None, None, None, None, None, e.cost_usd, e.input_tokens,
                e.output_tokens, text)
    if e.kind == "step":
        text = f"step {e.name}"
        if e.error is not None:
            text += f" failed: {e.error.type}: {e.error.message}"
        return (e.name, e.status, None, None, None, None, None, None, None, None, text)
    if e.kind == "message":
        who = e.agent or e.role
        text = f"{who}: {e.content if isinstance(e.content, str) else dumps(e.content).decode()}"
        return (who, "ok", None, None, None, None, None, None, None, None, text)
    if e.kind == "checkpoint":
        text = "state writes " + (", ".join(e.writes) or "-")
        if e.deletes:
            text += "; deletes " + ", ".join(e.deletes)
        return ("state", "ok", None, None, None, None, None, None, None, None, text)
    if e.kind == "approval":
        status = _APPROVAL_STATUS[e.action] if e.action is not None else "no_decision"
        who = f" by {e.by}" if e.by else ""
        via = f" via {e.channel}" if e.channel else ""
        why = f": {e.reason}" if e.reason else ""
        edit = f" -> {_args(e.arguments)}" if e.arguments is not None else ""
        what = e.action or "no decision"
        return (e.tool, status, None, None, e.request_id, e.rule, None, None, None, None,
                f"{what} {e.tool}{who}{via}{edit}{why}")
    if e.kind == "phase":
        return (e.phase, "ok", None, None, None, None, e.phase, None, None, None,
                f"phase {e.previous or '-'} -> {e.phase}")
    if e.kind == "run_resumed":
        why = f": {e.reason}" if e.reason else ""
        return ("resumed", "ok", None, None, None, None, None, None, None, None,
                f"run resumed after seq {e.from_seq}{why}")
    if e.kind == "retry":
        return (e.target, "retry", None, None, None, None, None, None, None, None,
                f"retry {e.target} attempt {e.attempt}: {e.error.type}: {e.error.message}")
    if e.kind == "error":
        handled = " (handled)" if e.handled else ""
        return (e.error.type, "error", None, None, None, None, None, None, None, None,
                f"{e.error.type}: {e.error.message}{handled}")
    assert e.kind == "tool_intent"
    return (e.tool, "unfinished", e.grant, e.credential, e.approval, e.policy_rule, e.phase,
            None, None, None, f"{e.tool}({_args(e.arguments)}) started; no result recorded")


def timeline_rows(
    events: Iterable[Event],
    *,
    checkpoints: bool = True,
    waits: bool = True,
    approvals: Iterable[ApprovalRequest] | None = None,
    explanation: Explanation | None = None,
) -> list[TimelineRow]:
    """One row per step-like event, in order of start time (a parent before the events it
    contains; ties by run, depth, seq).

    Included: LLM calls, tool calls (finished, failed or denied), steps, retries, errors,
    approvals, phase changes, resumptions, checkpoints (unless ``checkpoints=False``), and
    the intent of a side-effecting call that has no result (status ``unfinished``: in
    flight, or cut off by a crash). Left out: ``run_started``, ``run_ended`` and intents
    whose call finished. Events of several runs may be mixed; each row names its run and
    agent.

    With ``waits`` (the default), each approval decision and each retry with a backoff also
    gets a ``wait`` row (kind ``approval_wait`` or ``retry_wait``, status ``wait``): the
    time a human took to decide, from the request (``approvals``' ``requested_at``, when
    the store's approval requests are given; else the end of the run's previous event) to
    the decision; the time a retry slept (``delay_s``). ``explanation`` (from
    :func:`agentlab.analysis.explain`) marks its culprits and stale reads in ``finding``.

    >>> rows = timeline_rows(store.events(run_id), approvals=store.approvals(run_id=run_id),
    ...                      explanation=explain(store, run_id))   # doctest: +SKIP
    """
    events = list(events)
    agents: dict[str, str] = {}
    finished: set[tuple[str, str]] = set()
    by_id: dict[str, Event] = {}
    for e in events:
        by_id[e.id] = e
        if e.kind == "run_started":
            agents[e.run_id] = e.agent_name
        elif e.kind == "tool_call" and e.intent_id is not None:
            finished.add((e.run_id, e.intent_id))

    depths: dict[str, int] = {}

    def depth_of(e: Event) -> int:
        # Iterative: nesting may be deep. A parent missing from the events counts as the top.
        chain: list[str] = []
        cur: Event | None = e
        while cur is not None and cur.id not in depths:
            chain.append(cur.id)
            parent = by_id.get(cur.parent_id) if cur.parent_id is not None else None
            if parent is not None and parent.id in chain:  # a cycle: only corrupt data
                parent = None
            cur = parent
        base = depths[cur.id] + 1 if cur is not None else 0
        for offset, event_id in enumerate(reversed(chain)):
            depths[event_id] = base + offset
        return depths[e.id]

    rows: list[TimelineRow] = []
    append = rows.append
    lane_of = _LANE_OF
    for e in events:
        kind = e.kind
        lane = lane_of.get(kind)
        if lane is None or (kind == "checkpoint" and not checkpoints) or (
                e.kind == "tool_intent" and (e.run_id, e.call_id) in finished):
            continue
        name, status, grant, cred, approval, rule, phase, cost, tok_in, tok_out, summary = \
            _fields(e)
        parent_id = e.parent_id
        if parent_id is None:
            depth, parent_seq = 0, None
        else:
            parent = by_id.get(parent_id)
            above = depths.get(parent_id)
            depth = depth_of(e) if above is None else above + 1
            depths[e.id] = depth
            parent_seq = parent.seq if parent is not None else None
        duration = e.duration_ms
        if len(summary) > _SUMMARY_WIDTH or not summary.isprintable():
            summary = _short(summary)
        row = _Builder(
            e.run_id, e.seq, e.id, kind, lane, e.agent or agents.get(e.run_id, e.run_id), depth,
            parent_seq, name, status, e.ts, e.ts + _MS * duration if duration else e.ts,
            duration, grant, cred, approval, rule, phase, cost, tok_in, tok_out, summary, "",
        )
        row.__class__ = TimelineRow
        append(row)
    if waits:
        rows.extend(_waits(events, rows, approvals))
    if explanation is not None or any(r.status in _STATUS_FINDING for r in rows):
        rows = _with_findings(rows, explanation)
    rows.sort(key=_order)
    return rows


def _waits(events: Sequence[Event], rows: Sequence[TimelineRow],
           approvals: Iterable[ApprovalRequest] | None) -> list[TimelineRow]:
    """A row for each stretch of waiting: a human deciding an approval, a retry's backoff."""
    requests = {a.id: a for a in approvals} if approvals is not None else {}
    by_seq = {(r.run_id, r.seq): r for r in rows}
    out: list[TimelineRow] = []
    last_end: dict[str, datetime] = {}  # per run: the latest end of the events so far
    for e in events:
        run = e.run_id
        before = last_end.get(run)
        if e.kind == "approval":
            req = requests.get(e.request_id)
            start = req.requested_at if req is not None else before
            end = (req.decided_at or e.ts) if req is not None else e.ts
            if start is not None and end >= start:
                decided = by_seq.get((run, e.seq))
                out.append(_wait_row(e, decided, "approval_wait", start, end, e.tool,
                                     "a decision on " + e.tool, e.request_id))
        elif e.kind == "retry" and e.delay_s > 0:
            start = e.ts + _MS * (e.duration_ms or 0)
            end = start + timedelta(seconds=e.delay_s)
            out.append(_wait_row(e, by_seq.get((run, e.seq)), "retry_wait", start, end,
                                 e.target, f"retrying {e.target} (attempt {e.attempt})",
                                 None))
        end_of = e.ts + _MS * e.duration_ms if e.duration_ms else e.ts
        if before is None or end_of > before:
            last_end[run] = end_of
    return out


def _wait_row(e: Event, decided: TimelineRow | None, kind: str, start: datetime,
              end: datetime, name: str, what: str, approval: str | None) -> TimelineRow:
    ms = (end - start) / _MS
    outcome = f": {decided.summary}" if decided is not None and kind == "approval_wait" else ""
    return TimelineRow(
        run_id=e.run_id, seq=e.seq, event_id=e.id, kind=kind, lane="wait",
        agent=decided.agent if decided is not None else (e.agent or e.run_id),
        depth=decided.depth if decided is not None else 0,
        parent_seq=decided.parent_seq if decided is not None else None, name=name,
        status="wait", start=start, end=end, duration_ms=ms, approval=approval,
        policy_rule=decided.policy_rule if decided is not None else None,
        summary=_short(f"waited {human_duration(ms)} for {what}{outcome}"))


def human_duration(ms: float) -> str:
    """A wait as people say it: ``840 ms``, ``14.7 s``, ``3.2 min``."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _with_findings(rows: list[TimelineRow], explanation: Explanation | None
                   ) -> list[TimelineRow]:
    """The rows with ``finding`` set: the explanation's culprits and stale reads (in its
    run), and each row's own denial, rejection, edit or error."""
    found: dict[tuple[str, int], list[str]] = {}
    if explanation is not None:
        run = explanation.run.run_id
        for rank, c in enumerate(explanation.culprits, 1):
            found.setdefault((run, c.seq), []).append(f"culprit #{rank} (score {c.score:g})")
        for st in explanation.stale:
            found.setdefault((run, st.seq), []).append("stale read")
    out: list[TimelineRow] = []
    for r in rows:
        marks = list(found.get((r.run_id, r.seq), ())) if r.lane != "wait" else []
        own = _STATUS_FINDING.get(r.status)
        if own is not None:
            marks.append(own)
        out.append(r if not marks else _replace(r, finding="; ".join(marks)))
    return out


def _replace(row: TimelineRow, **changes: Any) -> TimelineRow:
    values = {f.name: getattr(row, f.name) for f in fields(TimelineRow)}
    values.update(changes)
    return TimelineRow(**values)


def timeline_counts(rows: Iterable[TimelineRow]) -> RunCounts:
    """What timeline rows show, in the words of :class:`~agentlab.model.RunCounts`: steps,
    calls, messages, state writes, approvals, undecided requests and denied calls. The
    number of events is not known from rows (``run_started``, ``run_ended`` and finished
    intents are not rows): count the events themselves with
    :func:`~agentlab.model.count_events` for it. Errors are left at 0 for the same reason
    (an error event may repeat a failed call's)."""
    n: dict[str, int] = {}
    approvals = undecided = denied = 0
    for r in rows:
        n[r.kind] = n.get(r.kind, 0) + 1
        if r.kind == "approval":
            if r.status == "no_decision":
                undecided += 1
            else:
                approvals += 1
        elif r.status == "denied":
            denied += 1
    return RunCounts(events=None, steps=n.get("step", 0), model_calls=n.get("llm_call", 0),
                     tool_calls=n.get("tool_call", 0), messages=n.get("message", 0),
                     state_writes=n.get("checkpoint", 0), approvals=approvals,
                     undecided=undecided, denied=denied)


def _order(r: TimelineRow) -> tuple[datetime, str, int, int]:
    return (r.start, r.run_id, r.depth, r.seq)
