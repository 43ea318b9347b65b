"""Timeline rows on runs recorded into a real SQLite store, and on hand-built edge cases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import agentlab as al
from agentlab.analysis import TimelineRow, timeline_rows
from agentlab.analysis._timeline import LANES, STATUSES
from agentlab.model import (
    ErrorInfo,
    RunStartedEvent,
    StepEvent,
    ToolCallEvent,
    ToolIntentEvent,
)
from agentlab.store import SqlStore
from agentlab.testing import allow_all

START_NS = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC


@al.tool
def lookup(account_id: str) -> dict[str, str]:
    return {"plan": "standard"}


@al.tool
def flaky(n: int) -> int:
    raise ConnectionError(f"upstream {n} unavailable")


@al.tool(side_effect=True, scope="x:write")
def forbidden(target: str) -> str:
    return target


@al.tool(side_effect=True, scope="x:write")
def write(target: str) -> str:
    return f"wrote {target}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = al.open_store(tmp_path / "timeline.db")
    try:
        yield s
    finally:
        s.close()


def record_small_run(store: SqlStore, *, clock: bool = True) -> str:
    """A run with nested steps, an LLM call with cost, a failed tool, a denied side effect,
    an allowed side effect, a handled error and a phase change."""
    kwargs = {}
    if clock:
        ticks = itertools.count(START_NS, 1_000_000)  # each clock read: 1 ms later
        ids = (f"{i:032x}" for i in itertools.count(1))
        kwargs = {"clock": lambda: next(ticks), "id_factory": lambda: next(ids)}
    grant = allow_all(store, agent="bot")
    policy = al.Policy([al.Rule("no", "deny", tool="forbidden")])
    with al.record_run("w", agent="bot", store=store, grants=[grant], policy=policy,
                       state={"ticket": "T-1"}, **kwargs) as run:  # type: ignore[arg-type]
        with al.step("outer"):
            with al.step("inner"):
                run.state["account"] = lookup("A-1")
            run.llm_call("gpt-4o", input_tokens=10, output_tokens=5, cost_usd=0.25)
            with pytest.raises(ConnectionError):
                flaky(3)
        run.enter_phase("act")
        with pytest.raises(al.ToolDeniedError):
            forbidden("prod")
        write("notes")
        run.error(ValueError("bad input"))
    return run.run_id


def test_rows_of_a_recorded_run(store: SqlStore) -> None:
    run_id = record_small_run(store, clock=False)
    events = store.events(run_id)
    rows = timeline_rows(events)
    by_name = {r.name: r for r in rows if r.kind != "checkpoint"}

    # Every step-like event, and nothing else: no run start/end, no finished intent.
    kinds = {e.kind for e in events}
    assert {"run_started", "run_ended", "tool_intent"} <= kinds
    assert {r.kind for r in rows} == kinds - {"run_started", "run_ended", "tool_intent"}
    assert len(rows) == len(events) - 3
    assert all(isinstance(r, TimelineRow) and r.run_id == run_id for r in rows)
    assert all(r.agent == "bot" for r in rows)
    assert {r.lane for r in rows} <= set(LANES) and {r.status for r in rows} <= set(STATUSES)

    outer, inner = by_name["outer"], by_name["inner"]
    assert (outer.lane, outer.depth, outer.parent_seq) == ("step", 0, None)
    assert (inner.lane, inner.depth, inner.parent_seq) == ("step", 1, outer.seq)
    look = by_name["lookup"]
    assert (look.lane, look.depth, look.parent_seq, look.status) == ("tool", 2, inner.seq, "ok")
    assert look.grant is None  # read-only and unscoped: no grant needed

    llm = by_name["gpt-4o"]
    assert (llm.lane, llm.depth, llm.status, llm.cost_usd) == ("llm", 1, "ok", 0.25)
    assert (llm.input_tokens, llm.output_tokens, llm.tokens) == (10, 5, 15)

    failed = by_name["flaky"]
    assert (failed.lane, failed.status, failed.depth) == ("tool", "error", 1)
    assert "ConnectionError: upstream 3 unavailable" in failed.summary

    denied = by_name["forbidden"]
    assert (denied.lane, denied.status, denied.depth) == ("tool", "denied", 0)
    assert denied.policy_rule == "no" and denied.duration_ms is None
    assert denied.start == denied.end
    assert "denied (policy)" in denied.summary

    wrote = by_name["write"]
    assert (wrote.status, wrote.grant, wrote.phase) == ("ok", "test-allow-all-bot", "act")

    assert by_name["act"].lane == "governance" and by_name["act"].phase == "act"
    err = by_name["ValueError"]
    assert (err.lane, err.status, err.summary) == ("error", "error", "ValueError: bad input (handled)")

    # Bars end where their duration says; rows come in order of start, parents first.
    for r in rows:
        expected = r.start + timedelta(milliseconds=r.duration_ms or 0)
        assert abs((r.end - expected).total_seconds()) < 1e-6
    assert [r.start for r in rows] == sorted(r.start for r in rows)
    assert rows.index(outer) < rows.index(inner) < rows.index(look)

    states = [r for r in rows if r.kind == "checkpoint"]
    assert [r.summary for r in states] == ["state writes ticket", "state writes account"]
    assert all(r.lane == "state" for r in states)
    assert [r.seq for r in timeline_rows(events, checkpoints=False)] == [
        r.seq for r in rows if r.kind != "checkpoint"]


def test_rows_are_frozen_and_deterministic(store: SqlStore) -> None:
    events = store.events(record_small_run(store))
    rows = timeline_rows(events)
    assert rows == timeline_rows(list(reversed(events)))
    with pytest.raises(AttributeError):
        rows[0].status = "error"  # type: ignore[misc]
    assert hash(rows[0]) == hash(timeline_rows(events)[0])


def test_snapshot_of_a_deterministic_run(store: SqlStore) -> None:
    rows = timeline_rows(store.events(record_small_run(store)))
    t0 = datetime.fromtimestamp(START_NS / 1e9, UTC)

    def ms(r: TimelineRow) -> tuple[float, float]:
        return ((r.start - t0) / timedelta(milliseconds=1),
                (r.end - t0) / timedelta(milliseconds=1))

    got = [(r.seq, r.kind, r.lane, r.depth, r.parent_seq, r.name, r.status, *ms(r),
            r.duration_ms, r.grant, r.approval, r.policy_rule, r.phase, r.cost_usd, r.tokens,
            r.summary) for r in rows]
    grant = "test-allow-all-bot"
    assert got == [
        (2, "checkpoint", "state", 0, None, "state", "ok", 1.0, 1.0, None, None, None, None,
         None, None, None, "state writes ticket"),
        (8, "step", "step", 0, None, "outer", "ok", 2.0, 11.0, 9.0, None, None, None, None,
         None, None, "step outer"),
        (5, "step", "step", 1, 8, "inner", "ok", 3.0, 7.0, 4.0, None, None, None, None, None,
         None, "step inner"),
        (3, "tool_call", "tool", 2, 5, "lookup", "ok", 4.0, 5.0, 1.0, None, None, "default",
         None, None, None, 'lookup({"account_id":"A-1"}) ok'),
        (4, "checkpoint", "state", 2, 5, "state", "ok", 6.0, 6.0, None, None, None, None, None,
         None, None, "state writes account"),
        (6, "llm_call", "llm", 1, 8, "gpt-4o", "ok", 8.0, 8.0, None, None, None, None, None,
         0.25, 15, "gpt-4o 10/5 tok $0.2500"),
        (7, "tool_call", "tool", 1, 8, "flaky", "error", 9.0, 10.0, 1.0, None, None, "default",
         None, None, None, 'flaky({"n":3}) failed: ConnectionError: upstream 3 unavailable'),
        (9, "phase", "governance", 0, None, "act", "ok", 12.0, 12.0, None, None, None, None,
         "act", None, None, "phase - -> act"),
        (10, "tool_call", "tool", 0, None, "forbidden", "denied", 14.0, 14.0, None, grant,
         None, "no", "act", None, None,
         'forbidden({"target":"prod"}) denied (policy): rule no says deny'),
        (12, "tool_call", "tool", 0, None, "write", "ok", 17.0, 18.0, 1.0, grant, None,
         "default", "act", None, None, 'write({"target":"notes"}) ok'),
        (13, "error", "error", 0, None, "ValueError", "error", 19.0, 19.0, None, None, None,
         None, None, None, None, "ValueError: bad input (handled)"),
    ]


def test_approvals_link_to_the_calls_they_decided(store: SqlStore) -> None:
    grant = allow_all(store, agent="bot")
    policy = al.Policy([al.Rule("ask", "approve", tool="write"),
                        al.Rule("ask-too", "approve", tool="forbidden")])

    def decide(request: al.ApprovalRequest, manager: al.ApprovalManager) -> None:
        if request.tool == "write":
            manager.approve(request.id, by="ana", channel="test", reason="fine")
        else:
            manager.reject(request.id, by="ana", channel="test", reason="not in prod")

    with al.record_run("w", agent="bot", store=store, grants=[grant], policy=policy,
                       approver=decide) as run:
        write("notes")
        with pytest.raises(al.ToolDeniedError):
            forbidden("prod")
    rows = timeline_rows(store.events(run.run_id))
    gov = [r for r in rows if r.kind == "approval"]
    assert [(r.name, r.status, r.lane, r.policy_rule) for r in gov] == [
        ("write", "approved", "governance", "ask"), ("forbidden", "rejected", "governance",
                                                      "ask-too")]
    assert gov[0].summary == "approve write by ana via test: fine"
    calls = {r.name: r for r in rows if r.kind == "tool_call"}
    assert calls["write"].status == "ok" and calls["write"].approval == gov[0].approval
    assert calls["forbidden"].status == "denied"
    assert calls["forbidden"].approval == gov[1].approval is not None


def test_retries_sit_in_the_error_lane(store: SqlStore) -> None:
    attempts: list[int] = []

    @al.tool(retries=2, backoff_s=0)
    def shaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) < 3:
            raise TimeoutError(f"try {len(attempts)}")
        return n

    with al.record_run("w", agent="bot", store=store) as run:
        with al.step("fetch"):
            shaky(1)
    rows = timeline_rows(store.events(run.run_id))
    retries = [r for r in rows if r.kind == "retry"]
    assert [(r.lane, r.name, r.status, r.depth) for r in retries] == [
        ("error", "shaky", "retry", 1)] * 2
    assert [r.summary for r in retries] == ["retry shaky attempt 1: TimeoutError: try 1",
                                            "retry shaky attempt 2: TimeoutError: try 2"]
    (call,) = [r for r in rows if r.kind == "tool_call"]
    assert call.status == "ok" and call.summary == 'shaky({"n":1}) ok (attempt 3)'


# -- hand-built events: what a recorder does not produce in an ordinary run -----------------

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _env(run: str, seq: int, parent: str | None = None, ms: float = 0.0) -> dict[str, object]:
    return {"id": f"{run}-{seq}", "run_id": run, "seq": seq, "parent_id": parent,
            "ts": T0 + timedelta(milliseconds=ms), "hash": "0" * 64}


def test_unfinished_intents_missing_parents_and_several_agents() -> None:
    events = [
        RunStartedEvent(**_env("r1", 1), workflow="w", agent_name="planner"),  # type: ignore[arg-type]
        ToolIntentEvent(**_env("r1", 2, ms=1), tool="send", call_id="c1",  # type: ignore[arg-type]
                        idempotency_key="k", grant="mailer", arguments={"to": "a"}),
        ToolIntentEvent(**_env("r1", 3, ms=2), tool="send", call_id="c2",  # type: ignore[arg-type]
                        idempotency_key="k2"),
        ToolCallEvent(**_env("r1", 4, ms=2), tool="send", call_id="c2",  # type: ignore[arg-type]
                      intent_id="c2", duration_ms=3.0, side_effect=True),
        RunStartedEvent(**_env("r2", 1), workflow="w", agent_name="writer"),  # type: ignore[arg-type]
        StepEvent(**_env("r2", 2, parent="gone", ms=0.5), name="draft",  # type: ignore[arg-type]
                  duration_ms=2.0, status="error",
                  error=ErrorInfo(type="KeyError", message="'x'")),
        ToolCallEvent(**_env("r3", 1, ms=5), tool="orphan"),  # type: ignore[arg-type]
    ]
    rows = timeline_rows(events)
    assert [(r.run_id, r.seq, r.agent, r.name, r.status, r.depth) for r in rows] == [
        ("r2", 2, "writer", "draft", "error", 0),  # its parent is not in the events: top level
        ("r1", 2, "planner", "send", "unfinished", 0),  # intent without a result
        ("r1", 4, "planner", "send", "ok", 0),
        ("r3", 1, "r3", "orphan", "ok", 0),  # no run_started: the run id stands in
    ]
    assert rows[0].summary == "step draft failed: KeyError: 'x'"
    assert rows[1].grant == "mailer" and rows[1].lane == "tool"
    assert rows[1].summary == 'send({"to":"a"}) started; no result recorded'
    assert timeline_rows([]) == []


def test_long_summaries_are_cut_and_flattened() -> None:
    events = [StepEvent(**_env("r", 1), name="s", status="error",  # type: ignore[arg-type]
                        error=ErrorInfo(type="E", message="line one\nline two " + "x" * 300))]
    (row,) = timeline_rows(events)
    assert len(row.summary) == 100 and row.summary.endswith("…")
    assert "\n" not in row.summary and row.summary.startswith("step s failed: E: line one line two")


def test_findings_waits_and_counts_of_the_demos_runs(tmp_path: Path) -> None:
    from agentlab.analysis import explain
    from agentlab.analysis._timeline import timeline_counts
    from agentlab.demo import run_demo
    from agentlab.model import count_events

    store = al.open_store(tmp_path / "demo.db")
    demo = run_demo(store)
    bad = demo.bad_run_id
    rows = timeline_rows(store.events(bad), approvals=store.approvals(run_id=bad),
                         explanation=explain(store, bad))
    marked = {(r.kind, r.name): r.finding for r in rows if r.finding}
    assert marked[("tool_call", "lookup_account")].startswith("culprit #1 (score ")
    assert marked[("tool_call", "lookup_account")].endswith("; stale read")
    assert marked[("approval", "create_issue")] == "edited by a human"
    waits = [r for r in rows if r.lane == "wait"]
    requests = {a.id: a for a in store.approvals(run_id=bad)}
    assert [(w.kind, w.name, w.status) for w in waits] == [
        ("approval_wait", "create_issue", "wait"), ("approval_wait", "draft_reply", "wait")]
    for w in waits:  # exactly the request's life, from the store's approval records
        assert w.approval is not None
        assert (w.start, w.end) == (requests[w.approval].requested_at,
                                    requests[w.approval].decided_at)
        assert w.summary.startswith("waited ") and " for a decision on " in w.summary
    # The rows count what they show in the vocabulary of the run's counts.
    shown, counted = timeline_counts(rows), count_events(store.events(bad))
    assert (shown.events, counted.events) == (None, 33)
    for name in ("steps", "model_calls", "tool_calls", "state_writes", "approvals", "denied"):
        assert getattr(shown, name) == getattr(counted, name), name
    assert timeline_rows(store.events(bad), waits=False) == [r for r in timeline_rows(
        store.events(bad)) if r.lane != "wait"]

    rejected = timeline_rows(store.events(demo.rejected_run_id))
    assert {(r.kind, r.finding) for r in rejected if r.name == "set_priority" and r.finding} \
        == {("approval", "rejected by a human"), ("tool_call", "denied")}
    store.close()
