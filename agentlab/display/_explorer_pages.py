"""What the run explorer shows, one bounded page at a time, as JSON-ready dicts.

Every answer is built from the store's bounded reads (``SqlStore.run_page``,
``event_page``, ``checkpoints_around``, ``event_histogram``): a store of 100,000 runs or a
run of 10,000 steps is never read whole for one view. Values are shown as the store holds
them: redacted when they were recorded, so no secret reaches the page. Long values are cut
to :data:`MAX_TEXT` characters (the answer says so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agentlab.analysis import Divergence, diff_trees, diff_values, first_divergence, timeline_rows
from agentlab.errors import ApprovalNotFoundError, ConfigError
from agentlab.model import Change, Event, RunCounts, RunSummary, ToolCallEvent
from agentlab.store import RunFilter, SqlStore

__all__ = ["COMPARE_BUDGET", "MAX_TEXT", "TIMELINE_ROWS", "ExplorerPages"]

MAX_TEXT = 20_000
"""Characters of one value shown in a step's detail before it is cut."""
TIMELINE_ROWS = 2_000
"""Runs with more events than this get an aggregated timeline plus one window of bars."""
MAX_PAGE = 200
MAX_CHANGES = 200
COMPARE_CHUNK = 500
"""Tool calls of each run read at a time while looking for the first divergence."""
COMPARE_BUDGET = 2_000
"""Tool calls of each run one comparison request reads at most (the page may ask on)."""
_CONTEXT = 5
_INPUTS = ("arguments", "messages", "task_input", "content", "actions")
_OUTPUTS = ("result", "response", "output", "outputs")


def _pretty(value: Any) -> dict[str, Any]:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    cut = len(text) > MAX_TEXT
    return {"text": text[:MAX_TEXT] + ("\n…" if cut else ""), "cut": cut, "chars": len(text)}


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _time(value: Any, name: str) -> int | None:
    """Microseconds since the epoch from an ISO date or date-time (UTC unless it says)."""
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not a date; use YYYY-MM-DD or "
                          "YYYY-MM-DDTHH:MM") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def _limit(value: Any, default: int = 50) -> int:
    try:
        n = int(value) if value is not None else default
    except (TypeError, ValueError):
        raise ConfigError(f"limit {value!r} is not a number") from None
    return max(1, min(n, MAX_PAGE))


def _argument_changes(a: Event | None, b: Event | None) -> list[dict[str, str]]:
    """Where two calls of the same tool differ in their arguments: the name, and each side's
    value as short JSON (empty when the tools differ or a side has ended)."""
    if not (isinstance(a, ToolCallEvent) and isinstance(b, ToolCallEvent)) or a.tool != b.tool:
        return []
    names = sorted(set(a.arguments) | set(b.arguments))
    return [{"name": n, "a": _short_json(a.arguments.get(n)), "b": _short_json(b.arguments.get(n))}
            for n in names if a.arguments.get(n) != b.arguments.get(n)][:MAX_CHANGES]


def _short_json(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def run_row(r: RunSummary) -> dict[str, Any]:
    return {
        "run_id": r.run_id, "workflow": r.workflow, "agent": r.agent_name,
        "agent_version": r.agent_version, "task_id": r.task_id, "status": r.shown_status,
        "success": r.success, "started": _iso(r.started_at), "duration_s": r.duration_s,
        "events": r.last_seq, "calls": r.llm_calls + r.tool_calls,
        "counts": RunCounts.of_summary(r).phrase(),
        "errors": r.error_count, "denied": r.denied_count,
        "approvals": r.approval_count, "cost_usd": r.cost_usd,
        "unpriced_calls": r.unpriced_count, "run_kind": r.run_kind,
    }


def _node(e: Event, label: tuple[str, str, str] | None, children: int) -> dict[str, Any]:
    if label is None:
        label = _label(e)
    name, status, summary = label
    return {"id": e.id, "seq": e.seq, "kind": e.kind, "name": name, "status": status,
            "summary": summary, "children": children, "duration_ms": e.duration_ms}


def _label(e: Event) -> tuple[str, str, str]:
    """Name, status and summary of the events a timeline leaves out."""
    if e.kind == "run_started":
        return (e.workflow, "ok", f"run started: {e.agent_name} on task {e.task_id or '-'}")
    if e.kind == "run_ended":
        return (e.status, "error" if e.status != "succeeded" else "ok",
                f"run ended {e.status}" + (f" (success={e.success})"
                                           if e.success is not None else ""))
    if e.kind == "tool_intent":
        return (e.tool, "intent", f"intent to call {e.tool} (committed before it ran)")
    if e.kind == "expectation":
        return ("expectation", "ok", e.note or "expected actions and outputs")
    return (e.kind, "ok", e.kind)


def _labels(events: Sequence[Event]) -> dict[int, tuple[str, str, str]]:
    shown = [e for e in events if e.kind != "tool_intent"]
    return {r.seq: (r.name, r.status, r.summary) for r in timeline_rows(shown)}


class ExplorerPages:
    """The explorer's answers over one store; each method is one request of the page."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one request of the front end: ``{"type": ..., ...}`` gives the data of
        that view; an unknown type or a bad value is answered with ``error``."""
        kind = request.get("type")
        handler = {"runs": self.runs, "facets": self.facets, "tree": self.tree,
                   "step": self.step, "timeline": self.timeline,
                   "compare": self.compare}.get(str(kind))
        if handler is None:
            raise ConfigError(f"unknown request type {kind!r}; use runs, facets, tree, "
                              "step, timeline or compare")
        return handler(request)

    # -- the run list -------------------------------------------------------------------

    def facets(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"facets": self.store.run_facets()}

    def runs(self, request: Mapping[str, Any]) -> dict[str, Any]:
        f = request.get("filters") or {}
        where = RunFilter(
            workflow=f.get("workflow") or None, agent_name=f.get("agent") or None,
            agent_version=f.get("agent_version") or None, status=f.get("status") or None,
            since_us=_time(f.get("since"), "since"), until_us=_time(f.get("until"), "until"))
        after = request.get("after")
        cursor = (int(after[0]), str(after[1])) if after else None
        page = self.store.run_page(where, search=(f.get("search") or "").strip() or None,
                                   after=cursor, limit=_limit(request.get("limit")))
        return {"rows": [run_row(r) for r in page.runs],
                "next": list(page.next) if page.next else None}

    # -- one run ------------------------------------------------------------------------

    def tree(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a run's steps: the top level, or the children of ``parent``."""
        run_id = self.store.resolve(str(request["run_id"]))
        parent = request.get("parent")
        limit = _limit(request.get("limit"))
        page = self.store.event_page(run_id, parent_id=parent, top=parent is None,
                                     after_seq=int(request.get("after") or 0), limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        counts = self.store.child_counts(run_id, [e.id for e in page])
        labels = _labels(page)
        out: dict[str, Any] = {
            "run_id": run_id, "parent": parent,
            "nodes": [_node(e, labels.get(e.seq), counts.get(e.id, 0)) for e in page],
            "next": page[-1].seq if more else None,
        }
        if parent is None and not request.get("after"):
            out["run"] = run_row(self.store.run(run_id, exact=True))
        return out

    def step(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A step's detail: inputs, outputs, error, governance, and the state it changed."""
        run_id = self.store.resolve(str(request["run_id"]))
        seq = int(request["seq"])
        found = self.store.event_page(run_id, seqs=[seq], limit=1)
        if not found:
            raise ConfigError(f"run {run_id} has no step {seq}")
        e = found[0]
        fields = e.model_dump(mode="json")
        label = _labels([e]).get(seq) or _label(e)
        out: dict[str, Any] = {
            "run_id": run_id, "seq": seq, "id": e.id, "kind": e.kind, "name": label[0],
            "status": label[1], "summary": label[2], "ts": _iso(e.ts),
            "duration_ms": e.duration_ms, "agent": e.agent, "redacted": e.redacted,
            "reads": e.reads,
            "inputs": {k: _pretty(fields[k]) for k in _INPUTS if fields.get(k) not in (None, {}, [])},
            "outputs": {k: _pretty(fields[k]) for k in _OUTPUTS if fields.get(k) is not None},
            "error": fields.get("error"), "denial": fields.get("denial"),
            "stale": fields.get("stale"),
            "governance": {k: fields.get(k) for k in ("grant", "credential", "scope",
                                                      "policy_rule", "phase", "approval")
                           if fields.get(k) is not None},
        }
        request_id = fields.get("approval") or fields.get("request_id")
        out["approval"] = self._approval(request_id) if request_id else None
        out["state"] = self._state(run_id, e)
        return out

    def _approval(self, request_id: str) -> dict[str, Any] | None:
        try:
            a = self.store.approval(request_id)
        except ApprovalNotFoundError:
            return {"id": request_id, "status": "not stored"}
        return {"id": a.id, "status": a.status, "action": a.action, "decided_by": a.decided_by,
                "channel": a.channel, "reason": a.reason, "rule": a.rule,
                "decided_at": _iso(a.decided_at), "arguments": _pretty(a.arguments),
                "edited_arguments": (_pretty(a.edited_arguments)
                                     if a.edited_arguments is not None else None)}

    def _state(self, run_id: str, e: Event) -> dict[str, Any] | None:
        """The state this step changed: its checkpoint (or, for a step that encloses
        others, its last one inside) against the checkpoint before it."""
        start, end = e.seq, e.seq
        if e.kind == "step":
            first = self.store.event_page(run_id, parent_id=e.id, limit=1)
            start = first[0].seq if first else e.seq
            before, _ = self.store.checkpoints_around(run_id, start)
            last, _ = self.store.checkpoints_around(run_id, end)
            after = last if last is not None and last.seq > start else None
        elif e.kind == "checkpoint":
            before, after = self.store.checkpoints_around(run_id, e.seq)
        else:
            before, nxt = self.store.checkpoints_around(run_id, e.seq)
            following = self.store.event_page(run_id, after_seq=e.seq, limit=1)
            # the recorder writes a step's state change right after it, under the same parent
            after = nxt if (nxt is not None and following and following[0].seq == nxt.seq
                            and following[0].parent_id == e.parent_id) else None
        if after is None:
            return None
        reader = self.store.tree_reader()
        changes: list[Change] = (diff_trees(reader, before.root, after.root) if before
                                 else diff_values({}, reader.value(after.root)))
        return {"from_seq": before.seq if before else 0, "to_seq": after.seq,
                "total": len(changes),
                "changes": [{"op": c.op, "path": c.path,
                             "old": "" if c.op == "add" else _pretty(c.old)["text"],
                             "new": "" if c.op == "remove" else _pretty(c.new)["text"]}
                            for c in changes[:MAX_CHANGES]]}

    def timeline(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Bars for a run's steps: every one for a short run; for a long run, the events
        counted in time buckets plus the bars of one window of ``TIMELINE_ROWS`` events."""
        run_id = self.store.resolve(str(request["run_id"]))
        summary = self.store.run(run_id, exact=True)
        after = int(request.get("after") or 0)
        window = self.store.event_page(run_id, after_seq=after, limit=TIMELINE_ROWS + 1)
        more = len(window) > TIMELINE_ROWS
        window = window[:TIMELINE_ROWS]
        rows = timeline_rows(window)
        t0 = summary.started_at
        out: dict[str, Any] = {
            "run_id": run_id, "after": after, "next": window[-1].seq if more else None,
            "rows": [[r.seq, r.lane, r.name, r.status, (r.start - t0).total_seconds() * 1000,
                      r.duration_ms or 0.0, r.depth, r.summary] for r in rows],
            "histogram": None,
        }
        if summary.last_seq > TIMELINE_ROWS:
            h = self.store.event_histogram(run_id)
            out["histogram"] = {"start_ms": (h.start_us - int(t0.timestamp() * 1e6)) / 1000,
                                "bucket_ms": h.bucket_us / 1000, "buckets": h.buckets,
                                "counts": [list(c) for c in h.counts]}
        return out

    # -- two runs -----------------------------------------------------------------------

    def compare(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Two runs side by side at their first divergence (tool calls aligned by
        signature, as :func:`agentlab.analysis.first_divergence` does), read
        ``COMPARE_CHUNK`` calls of each at a time. After ``COMPARE_BUDGET`` calls without
        one, the answer carries ``resume``: send it back as ``from`` to look further."""
        a = self.store.resolve(str(request["a"]))
        b = self.store.resolve(str(request["b"]))
        start = request.get("from") or {}
        done = first = int(start.get("index") or 0)
        after_a, after_b = int(start.get("a_seq") or 0), int(start.get("b_seq") or 0)
        differing: list[tuple[int, int, str]] = [
            (int(x), int(y), str(t)) for x, y, t in start.get("differing") or []]
        prev_a: list[Event] = []
        prev_b: list[Event] = []
        ca: list[Event] = []
        cb: list[Event] = []
        found: Divergence | None = None
        resume: dict[str, Any] | None = None
        while True:
            if done - first >= COMPARE_BUDGET:
                resume = {"index": done, "a_seq": after_a, "b_seq": after_b,
                          "differing": [list(x) for x in differing[:MAX_CHANGES]]}
                break
            ca = self.store.event_page(a, kinds=["tool_call"], after_seq=after_a,
                                       limit=COMPARE_CHUNK)
            cb = self.store.event_page(b, kinds=["tool_call"], after_seq=after_b,
                                       limit=COMPARE_CHUNK)
            if not ca and not cb:
                break
            d = first_divergence(ca, cb, calls_only=False)
            if d is not None:
                differing.extend((x, y, sig.name) for x, y, sig in d.differing_results)
                if d.a is not None or d.b is not None:
                    found = Divergence(done + d.index, d.a, d.b, d.a_seq, d.b_seq)
                    break
            if len(ca) < COMPARE_CHUNK:
                break
            done += len(ca)
            prev_a, prev_b = ca[-_CONTEXT:], cb[-_CONTEXT:]
            after_a, after_b = ca[-1].seq, cb[-1].seq
        rows: list[dict[str, Any]] = []
        if found is not None:
            calls_a, calls_b = [*prev_a, *ca], [*prev_b, *cb]
            base = done - len(prev_a)
            diff_seqs = {(x, y) for x, y, _ in differing}
            for i in range(max(0, found.index - _CONTEXT - base),
                           found.index - base + _CONTEXT + 1):
                ea = calls_a[i] if i < len(calls_a) else None
                eb = calls_b[i] if i < len(calls_b) else None
                if ea is None and eb is None:
                    break
                rows.append({"index": base + i, "a": self._call(ea), "b": self._call(eb),
                             "diverges": base + i == found.index,
                             "result_differs": (ea.seq if ea else None,
                                                eb.seq if eb else None) in diff_seqs})
        return {
            "a": run_row(self.store.run(a, exact=True)),
            "b": run_row(self.store.run(b, exact=True)),
            "compared": (found.index if found is not None
                         else resume["index"] if resume is not None else done + len(ca)),
            "resume": resume,
            "differing_results": [{"a_seq": x, "b_seq": y, "tool": t}
                                  for x, y, t in differing[:MAX_CHANGES]],
            "divergence": None if found is None else {
                "index": found.index, "a_seq": found.a_seq, "b_seq": found.b_seq,
                "a": found.a.name if found.a else None, "b": found.b.name if found.b else None,
                "arguments": _argument_changes(
                    next((e for e in ca if e.seq == found.a_seq), None),
                    next((e for e in cb if e.seq == found.b_seq), None))},
            "rows": rows,
        }

    def _call(self, e: Event | None) -> dict[str, Any] | None:
        if e is None:
            return None
        name, status, summary = _labels([e]).get(e.seq) or _label(e)
        return {"seq": e.seq, "name": name, "status": status, "summary": summary}
