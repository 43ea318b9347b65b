"""Strict replay: unchanged code reproduces a run exactly; changed code stops at the first
call that differs, naming its seq; a tampered record is an integrity error, never a
divergence. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.demo import demo_tokens, run_triage, triage, triage_fixed
from agentlab.demo.systems import Systems, build_systems
from agentlab.errors import IntegrityError, ReplayDivergence
from agentlab.model import ApprovalRequest
from agentlab.recovery import replay, run_shape
from agentlab.store import SqlStore

from . import agents
from .agents import GRANT, PLAN, WORLD, agent_for, mutations, original


def _reject_all(request: ApprovalRequest, manager: ApprovalManager) -> None:
    manager.reject(request.id, by="nobody", channel="tests", reason="not today")


APPROVERS: dict[str, Callable[[Systems], Any]] = {
    "lead": lambda world: None,  # run_triage's default: the scripted support lead
    "approve-all": lambda world: al.auto_approve("tests"),
    "reject-all": lambda world: _reject_all,
}
VARIATIONS = [(ticket, scenario, approver)
              for ticket in ("T-1001", "T-1002", "T-1003", "T-1004")
              for scenario in ("fresh", "stale")
              for approver in APPROVERS]


def test_twenty_four_recorded_demo_runs_replay_identically(store: SqlStore) -> None:
    assert len(VARIATIONS) >= 20
    recorded: list[str] = []
    for ticket, scenario, approver in VARIATIONS:
        world = build_systems(scenario, tokens=demo_tokens())
        recorded.append(run_triage(store, scenario=scenario, ticket_id=ticket, systems=world,
                                   approver=APPROVERS[approver](world),
                                   approval_timeout=timedelta(seconds=5)))
    outcomes = {(store.run(r).status, store.run(r).denied_count > 0) for r in recorded}
    assert len(outcomes) >= 3, f"the variations should take different paths: {outcomes}"
    for run_id, (ticket, scenario, approver) in zip(recorded, VARIATIONS, strict=True):
        world = build_systems(scenario, tokens=demo_tokens())
        result = replay(store, run_id, kwargs={"systems": world})
        what = f"{ticket}/{scenario}/{approver}"
        assert result.identical, (what, result.to_text())
        assert result.divergences == [] and result.error is None, what
        assert result.outcome == result.original, what
        new, old = store.events(result.run_id), store.events(run_id)
        assert run_shape(new) == run_shape(old), what  # same calls, steps, state hashes
        assert [c.root for c in store.checkpoints(result.run_id)] == \
            [c.root for c in store.checkpoints(run_id)], what
        assert world.writes == 0, f"{what}: a replay reached a system: {world.calls()}"
        summary = store.run(result.run_id)
        assert (summary.parent_run_id, summary.run_kind) == (run_id, "replay")
        assert store.verify(result.run_id)[0].ok
        # Served calls carry where they came from; no intent: nothing was executed.
        assert all(e.replayed is not None and e.replayed.source == "record"
                   for e in new if e.kind in ("tool_call", "llm_call")), what
        assert not [e for e in new if e.kind == "tool_intent"], what


@pytest.fixture
def plans(store: SqlStore) -> str:
    al.issue_grant(store, GRANT, principal=agents.AGENT, owner="tests", workflow=agents.WORKFLOW,
                   scopes=["plans:*"], expires_in=timedelta(hours=1))
    WORLD.clear()
    run_id = original.run(None, store=store).run_id
    assert WORLD == {"fetch": 3, "think": 2, "save": 2}
    WORLD.clear()
    return run_id


def test_the_original_plan_replays_identically_and_runs_nothing(store: SqlStore,
                                                                 plans: str) -> None:
    result = replay(store, plans)
    assert result.identical and result.counts["served"] == len(PLAN)
    assert sum(WORLD.values()) == 0


@pytest.mark.parametrize(("name", "plan", "first"), mutations(),
                         ids=[m[0] for m in mutations()])
def test_a_mutated_agent_stops_at_the_first_differing_call(
        store: SqlStore, plans: str, name: str, plan: list[tuple[str, str]],
        first: int | None) -> None:
    calls = [e for e in store.events(plans) if e.kind in ("tool_call", "llm_call")]
    expected_seq = calls[first].seq if first is not None else None
    with pytest.raises(ReplayDivergence) as caught:
        replay(store, plans, agent=agent_for(plan), mode="strict")
    stop = caught.value
    assert stop.seq == expected_seq, (name, str(stop))
    if first is not None:
        assert stop.expected is not None and stop.expected["name"] in ("fetch", "save",
                                                                         "fake-model")
    if first is not None and first < len(plan):
        assert stop.actual is not None  # the call the code made instead
    assert sum(WORLD.values()) == 0, f"{name}: a strict replay executed {dict(WORLD)}"
    # The stopped replay is recorded too, errored, with what it had done.
    assert stop.result is not None and stop.result.outcome.status == "errored"
    assert store.run(stop.result.run_id).parent_run_id == plans


def test_there_are_at_least_twenty_mutants() -> None:
    kinds = {m[0].rsplit(" ", 1)[0].split(" at")[0] for m in mutations()}
    assert len(mutations()) >= 20
    assert {"extra call", "changed arguments", "another model request"} <= kinds


def _sql(store: SqlStore, sql: str, **params: Any) -> None:
    with store._db.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.mark.parametrize("how", ["result", "dropped", "blob"])
def test_a_tampered_record_is_an_integrity_error_never_a_divergence(
        store: SqlStore, plans: str, how: str) -> None:
    call = next(e for e in store.events(plans) if e.kind == "tool_call")
    if how == "result":  # someone rewrote what a tool returned
        with store._db.read() as conn:
            body = conn.execute(text("SELECT body FROM agentlab_events WHERE run_id = :r "
                                     "AND seq = :s"), {"r": plans, "s": call.seq}).scalar_one()
        _sql(store, "UPDATE agentlab_events SET body = :b WHERE run_id = :r AND seq = :s",
             b=body.replace('"n":3', '"n":4'), r=plans, s=call.seq)
    elif how == "dropped":  # an event removed from the middle
        _sql(store, "DELETE FROM agentlab_events WHERE run_id = :r AND seq = :s",
             r=plans, s=call.seq)
    else:  # a state blob corrupted
        root = store.checkpoints(plans)[0].root
        _sql(store, "UPDATE agentlab_blobs SET data = :d WHERE hash = :h", d=b"garbage", h=root)
    with pytest.raises(IntegrityError, match="fails verification"):
        replay(store, plans)
    with pytest.raises(IntegrityError):
        replay(store, plans, agent=agent_for(PLAN), mode="after_fix", live_reads=True)
    assert sum(WORLD.values()) == 0


def test_the_demo_fix_is_a_divergence_under_strict_replay(store: SqlStore) -> None:
    world = build_systems("stale", tokens=demo_tokens())
    bad = run_triage(store, scenario="stale", systems=world)
    lookup = next(e for e in store.events(bad, kinds=["tool_call"])
                  if e.tool == "check_entitlement")
    with pytest.raises(ReplayDivergence) as caught:
        replay(store, bad, agent=triage_fixed, mode="strict")
    assert caught.value.seq == lookup.seq  # the fix reads the CRM where 1.0 checked entitlement
    assert caught.value.actual == {"kind": "tool_call", "name": "refresh_account",
                                   "arguments": {"account_id": "ACME-1042"}}
    # The recorded entry point is found with no flags.
    assert store.events(bad)[0].code.entry == "agentlab.demo._agent:triage"  # type: ignore[union-attr]
    assert replay(store, bad).entry == triage.entry
