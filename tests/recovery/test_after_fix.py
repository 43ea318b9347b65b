"""Replay after a fix, forks and counterfactual culprits, on the demo's bad run and on small
constructed runs. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.analysis import explain
from agentlab.demo import demo_tokens, run_triage, triage_fixed
from agentlab.demo.systems import build_systems
from agentlab.errors import RecoveryError, ReplayDivergence
from agentlab.model import ToolCallEvent
from agentlab.recovery import Budget, counterfactuals, fork, replay
from agentlab.store import SqlStore

from . import agents
from .agents import GRANT, PLAN, WORLD, agent_for, original


@pytest.fixture
def demo(store: SqlStore) -> dict[str, Any]:
    good_world = build_systems("fresh", tokens=demo_tokens())
    bad_world = build_systems("stale", tokens=demo_tokens())
    good = run_triage(store, scenario="fresh", systems=good_world)
    bad = run_triage(store, scenario="stale", systems=bad_world)
    assert store.run(good).success is True and store.run(bad).success is False
    return {"good": good, "bad": bad}


def _tool(store: SqlStore, run_id: str, name: str) -> ToolCallEvent:
    found = next(e for e in store.events(run_id, kinds=["tool_call"])
                 if isinstance(e, ToolCallEvent) and e.tool == name)
    assert isinstance(found, ToolCallEvent)
    return found


def test_replay_after_the_fix_flips_the_bad_run_with_no_live_side_effect(
        store: SqlStore, demo: dict[str, Any]) -> None:
    world = build_systems("stale", tokens=demo_tokens())
    result = replay(store, demo["bad"], agent=triage_fixed, live_reads=True,
                    kwargs={"systems": world})
    assert result.mode == "after_fix" and result.version == "1.1.0"
    assert result.original.success is False and result.outcome.success is True
    assert result.flipped
    assert world.writes == 0, f"a side effect reached a system: {world.calls()}"
    assert world.calls()["cache.refresh"] == 1  # the fix's one new read ran live
    handled = {(d.handled, (d.actual or {}).get("name")) for d in result.divergences}
    assert ("live", "refresh_account") in handled
    assert {("stub", "create_issue"), ("stub", "set_priority"),
            ("stub", "draft_reply")} <= handled
    assert result.counts["stub"] == 3 and result.counts["served"] >= 3
    summary = store.run(result.run_id)
    assert (summary.parent_run_id, summary.run_kind) == (demo["bad"], "replay")
    started = store.events(result.run_id)[0]
    assert started.replay_mode == "after_fix"  # type: ignore[union-attr]
    changed = {c.path for c in result.state_diff}
    assert "/account/plan" in changed and "/decision/project" in changed
    # The stubbed calls are recorded as such; no intent was written, nothing executed.
    events = store.events(result.run_id)
    stubbed = [e for e in events if isinstance(e, ToolCallEvent) and e.replayed is not None
               and e.replayed.source == "stub"]
    assert {e.tool for e in stubbed} == {"create_issue", "set_priority", "draft_reply"}
    assert not [e for e in events if e.kind == "tool_intent"]
    assert store.verify(result.run_id)[0].ok


def test_a_replay_after_a_fix_stops_at_a_read_it_may_not_run(store: SqlStore,
                                                             demo: dict[str, Any]) -> None:
    world = build_systems("stale", tokens=demo_tokens())
    with pytest.raises(ReplayDivergence, match="--live-reads") as caught:
        replay(store, demo["bad"], agent=triage_fixed, kwargs={"systems": world})
    assert caught.value.actual is not None and caught.value.actual["name"] == "refresh_account"
    assert sum(world.calls().values()) <= 1  # the ticket, read by nobody live but the judge
    assert caught.value.result is not None
    assert [d.handled for d in caught.value.result.divergences] == ["refused"]


@pytest.fixture
def plans(store: SqlStore) -> str:
    al.issue_grant(store, GRANT, principal=agents.AGENT, owner="tests", workflow=agents.WORKFLOW,
                   scopes=["plans:*"], expires_in=timedelta(hours=1))
    WORLD.clear()
    run_id = original.run(None, store=store).run_id
    WORLD.clear()
    return run_id


def test_a_side_effect_the_record_lacks_is_stubbed_or_refused_never_run(
        store: SqlStore, plans: str) -> None:
    changed = [*PLAN[:3], ("save", "other"), *PLAN[4:]]
    result = replay(store, plans, agent=agent_for(changed))  # the tool's own stub answers
    assert WORLD["save"] == 0
    stub = next(d for d in result.divergences if d.handled == "stub")
    assert stub.actual == {"kind": "tool_call", "name": "save",
                           "arguments": {"key": "other", "value": 3}}
    assert stub.expected is not None and stub.expected["arguments"] == {"key": "a", "value": 3}
    calls: list[dict[str, Any]] = []
    result = replay(store, plans, agent=agent_for(changed),
                    stubs={"save": lambda key, value: calls.append({"key": key}) or {"x": 1}})
    assert calls == [{"key": "other"}] and WORLD["save"] == 0  # the caller's stub wins

    import agentlab.recovery._modes as modes

    # Without any stub the replay stops: a side effect is never executed in a replay.
    own = agents.save.agentlab.stub  # type: ignore[attr-defined]
    object.__setattr__(agents.save.agentlab, "stub", None)  # type: ignore[attr-defined]
    try:
        with pytest.raises(ReplayDivergence, match="never executed in a replay"):
            replay(store, plans, agent=agent_for(changed))
    finally:
        object.__setattr__(agents.save.agentlab, "stub", own)  # type: ignore[attr-defined]
    assert WORLD["save"] == 0
    assert modes.ReplayMode  # the mode that made these decisions


def test_missing_and_inserted_calls_are_reported_and_identical_ones_served(
        store: SqlStore, plans: str) -> None:
    fewer = [p for p in PLAN if p != ("fetch", "b")]
    more = [*PLAN, ("think", "extra")]
    result = replay(store, plans, agent=agent_for(fewer))
    missing = [(d.expected or {}).get("arguments") for d in result.divergences
               if d.handled == "missing"]
    # fetch b is gone, and save's value is the step's position, so both saves moved: the
    # new save(a, 2) is stubbed and the recorded save(a, 3) is missing; save(b, 5) takes
    # the place of the recorded save(b, 6) (the same tool where the record has it).
    assert missing == [{"key": "b"}, {"key": "a", "value": 3}]
    assert [(d.actual or {}).get("arguments") for d in result.divergences
            if d.handled == "stub"] == [{"key": "a", "value": 2}, {"key": "b", "value": 5}]
    result = replay(store, plans, agent=agent_for(more), live_reads=True)
    assert [(d.handled, (d.actual or {}).get("name")) for d in result.divergences] == [
        ("live", "fake-model")]
    assert WORLD == {"think": 1}  # only the new model call ran


def test_a_fork_that_substitutes_the_fresh_account_flips_the_bad_run(
        store: SqlStore, demo: dict[str, Any]) -> None:
    stale, fresh = _tool(store, demo["bad"], "lookup_account"), _tool(store, demo["good"],
                                                                       "lookup_account")
    result = fork(store, demo["bad"], at=stale.seq, result=fresh.result,
                  kwargs={"systems": build_systems("stale", tokens=demo_tokens())})
    assert result.kind == "fork" and result.fork_seq == stale.seq
    assert result.flipped and result.outcome.success is True
    summary = store.run(result.run_id)
    assert (summary.parent_run_id, summary.fork_seq, summary.run_kind) == (
        demo["bad"], stale.seq, "fork")
    edited = _tool(store, result.run_id, "lookup_account")
    assert edited.replayed is not None and edited.replayed.source == "edit"
    assert edited.result == fresh.result
    # Before the fork point the record is served, not executed.
    assert _tool(store, result.run_id, "read_ticket").replayed.source == "record"  # type: ignore[union-attr]


def test_a_state_fork_applies_after_the_checkpoint_and_runs_on(store: SqlStore,
                                                               demo: dict[str, Any]) -> None:
    wrote_account = next(c for c in store.checkpoints(demo["bad"]) if "account" in c.writes)
    result = fork(store, demo["bad"], at=wrote_account.seq,
                  state={"account/plan": "enterprise"},
                  kwargs={"systems": build_systems("stale", tokens=demo_tokens())})
    assert store.state_at(result.run_id)["account"]["plan"] == "enterprise"
    assert result.flipped  # the entitlement follows the plan, and the rest follows that
    assert result.notes == []
    # Edited before the code writes the key, the edit is replaced: the result says so.
    lookup = _tool(store, demo["bad"], "lookup_account")
    early = fork(store, demo["bad"], at=lookup.seq, state={"account/plan": "enterprise"},
                 kwargs={"systems": build_systems("stale", tokens=demo_tokens())})
    assert not early.flipped and "replacing it" in early.notes[0]
    assert early.divergences[0].seq < lookup.seq  # applied after the checkpoint before it
    with pytest.raises(RecoveryError, match="no checkpoint at or before seq 1"):
        fork(store, demo["bad"], at=1, state={"x": 1})
    with pytest.raises(RecoveryError, match="is not one of its calls"):
        fork(store, demo["bad"], at=wrote_account.seq, result={"x": 1})
    with pytest.raises(ValueError, match="exactly one edit"):
        fork(store, demo["bad"], at=wrote_account.seq)


def test_explain_with_counterfactuals_ranks_the_stale_lookup_first(
        store: SqlStore, demo: dict[str, Any]) -> None:
    ex = explain(store, demo["bad"], counterfactual=True)
    top = ex.culprit
    assert top is not None and top.name == "lookup_account"
    kinds = [e.kind for e in top.evidence]
    assert kinds[0] == "counterfactual", kinds  # the strongest evidence leads
    assert ex.counterfactual is not None
    flips = {t.name for t in ex.counterfactual.flipping}
    assert "lookup_account" in flips
    fork_run = next(t.fork_run_id for t in ex.counterfactual.flipping
                    if t.name == "lookup_account")
    assert fork_run is not None and fork_run in top.evidence[0].detail
    assert store.run(fork_run).success is True
    # A flip downstream of an earlier flip is weighed less: its input came from the lookup.
    downstream = [c for c in ex.culprits if any(e.kind == "counterfactual-downstream"
                                                for e in c.evidence)]
    assert all(c.score < top.score for c in downstream)
    assert "counterfactuals:" in ex.to_text() and "counterfactual" in ex._repr_html_()
    assert ex.to_dict()["counterfactual"]["trials"]


def test_the_counterfactual_search_respects_its_budget_and_explains_skips(
        store: SqlStore, demo: dict[str, Any]) -> None:
    report = counterfactuals(store, demo["bad"], budget=Budget(forks=1))
    assert len(report.trials) == 1 and report.exhausted
    assert any(why == "budget exhausted" for _, why in report.skipped)
    assert any(why == "the sibling saw the same value" for _, why in report.skipped)
    with pytest.raises(RecoveryError, match="succeeded"):
        counterfactuals(store, demo["good"])


def test_counterfactuals_take_given_values_without_a_sibling(store: SqlStore) -> None:
    al.issue_grant(store, GRANT, principal=agents.AGENT, owner="tests", workflow=agents.WORKFLOW,
                   scopes=["plans:*"], expires_in=timedelta(hours=1))

    @al.tool
    def measure(x: int) -> int:
        return x

    @al.record.agent("cf", version="1", name="cf-bot")
    def judge(task_input: Any) -> None:
        run = al.current_run()
        assert run is not None
        run.outcome(success=measure(1) > 5)

    bad = judge.run(None, store=store).run_id
    call = _tool(store, bad, "measure")
    report = counterfactuals(store, bad, values={call.seq: 9}, agent=judge)
    assert [t.flipped for t in report.trials] == [True]
    assert report.trials[0].source == "given"
    ex = explain(store, bad)  # without counterfactuals the run has no evidence at all
    assert ex.culprits == [] or ex.culprits[0].name == "measure"
