"""The demo story end to end, on a real SQLite store: a good run and a bad run of ticket
T-1001 whose difference is a stale cached account record (and the lead's edit it drew), and
a third run, on T-1004, whose priority drop the lead rejects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentlab.demo import DemoResult, run_demo, run_triage
from agentlab.demo.systems import PRIORITY_RANK
from agentlab.model import LLMCallEvent, StepEvent, ToolCallEvent, ToolIntentEvent
from agentlab.store import SqlStore, open_store

SIDE_EFFECTS = {"create_issue", "set_priority", "draft_reply"}
STATE_KEYS = {"ticket", "classification", "account", "entitlement", "decision", "issue",
              "priority", "reply"}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    store = open_store(tmp_path_factory.mktemp("demo") / "demo.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def demo(demo_store: SqlStore) -> DemoResult:
    return run_demo(demo_store)


def tool_calls(store: SqlStore, run_id: str, name: str) -> list[ToolCallEvent]:
    return [e for e in store.events(run_id, kinds=["tool_call"])
            if isinstance(e, ToolCallEvent) and e.tool == name]


def steps(store: SqlStore, run_id: str) -> dict[str, StepEvent]:
    return {e.name: e for e in store.events(run_id, kinds=["step"]) if isinstance(e, StepEvent)}


def test_three_runs_are_recorded_and_verify(demo_store: SqlStore, demo: DemoResult) -> None:
    runs = {r.run_id: r for r in demo_store.runs()}
    assert set(runs) == set(demo.run_ids)
    for run in runs.values():
        assert (run.workflow, run.agent_name, run.agent_version) == (
            "support-triage", "triage-bot", "1.0.0")
        assert run.phase == "draft"  # read -> act -> draft: the reply comes last
        assert (run.owner, run.team) == ("dana.reyes@example.com", "support-ops")
    for run_id in (demo.good_run_id, demo.bad_run_id):
        assert runs[run_id].task_id == "ticket:T-1001"
        assert (runs[run_id].llm_calls, runs[run_id].tool_calls) == (3, 6)
    rejected = runs[demo.rejected_run_id]
    assert rejected.task_id == "ticket:T-1004"
    assert (rejected.llm_calls, rejected.tool_calls) == (3, 5)  # no issue; one call refused
    assert all(report.ok for report in demo_store.verify())


def test_good_run_succeeds_and_the_others_fail(demo_store: SqlStore, demo: DemoResult) -> None:
    good, bad = demo_store.run(demo.good_run_id), demo_store.run(demo.bad_run_id)
    rejected = demo_store.run(demo.rejected_run_id)
    assert (good.status, good.success, good.score) == ("succeeded", True, 1.0)
    # The lead's edit put the issue in the right project; the rest still follows the stale plan.
    assert (bad.status, bad.success, bad.score) == ("failed", False, 0.25)
    # The rejection kept the priority; the issue the agent never filed is still missing.
    assert (rejected.status, rejected.success, rejected.score) == ("failed", False, 0.75)


def test_lookup_results_show_where_the_account_came_from(
        demo_store: SqlStore, demo: DemoResult) -> None:
    [good] = tool_calls(demo_store, demo.good_run_id, "lookup_account")
    [bad] = tool_calls(demo_store, demo.bad_run_id, "lookup_account")
    assert good.arguments == bad.arguments == {"account_id": "ACME-1042"}
    assert good.result["source"] == "crm"
    assert good.result["plan"] == "enterprise"
    assert good.result["cached_at"] is None
    assert good.result["as_of"] == "2024-06-03T09:00:00Z"
    assert good.result["updated_at"] == "2024-06-01T14:30:00Z"
    assert bad.result["source"] == "cache"
    assert bad.result["plan"] == "standard"
    assert bad.result["cached_at"] == bad.result["as_of"] == "2024-05-31T22:00:00Z"
    assert bad.result["cache_age_s"] == 59 * 3600
    # Visible from the records alone: the copy was taken before the account last changed.
    assert bad.result["cached_at"] < good.result["updated_at"]


def test_bad_run_acts_on_the_stale_plan(demo_store: SqlStore, demo: DemoResult) -> None:
    good = demo_store.state_at(demo.good_run_id)
    bad = demo_store.state_at(demo.bad_run_id)

    assert good["entitlement"]["tier"] == "Premier"
    assert bad["entitlement"]["tier"] == "Standard"
    assert (good["reply"]["tier"], good["reply"]["sla_hours"]) == ("Premier", 1)
    assert (bad["reply"]["tier"], bad["reply"]["sla_hours"]) == ("Standard", 24)
    assert "Premier support with a 1-hour response time" in good["reply"]["body"]
    assert "Standard support with a 24-hour response time" in bad["reply"]["body"]

    assert bad["decision"]["project"] == "SUP" and bad["decision"]["priority"] == "normal"
    # The agent asked for SUP/normal; the lead's edit is what ran.
    [request] = [a for a in demo_store.approvals(run_id=demo.bad_run_id)
                 if a.tool == "create_issue"]
    assert (request.tool, request.arguments["project"], request.status) == (
        "create_issue", "SUP", "edited")
    [created] = tool_calls(demo_store, demo.bad_run_id, "create_issue")
    assert (created.arguments["project"], created.result["project"]) == ("ENG", "ENG")
    assert (good["issue"]["key"], good["issue"]["project"]) == ("ENG-101", "ENG")
    assert (bad["issue"]["key"], bad["issue"]["priority"]) == ("ENG-101", "urgent")

    assert (good["priority"], bad["priority"]) == ("urgent", "normal")
    assert PRIORITY_RANK[bad["priority"]] < PRIORITY_RANK[good["priority"]]

    failed = [c["name"] for c in steps(demo_store, demo.bad_run_id)["check"].output["checks"]
              if not c["ok"]]
    assert failed == ["reply quotes the support tier", "reply quotes the response time",
                      "ticket priority"]


def test_side_effects_are_written_ahead_and_finished(
        demo_store: SqlStore, demo: DemoResult) -> None:
    ran = {demo.good_run_id: SIDE_EFFECTS, demo.bad_run_id: SIDE_EFFECTS,
           demo.rejected_run_id: {"draft_reply"}}  # a refused call never gets an intent
    for run_id, expected in ran.items():
        intents = [e for e in demo_store.events(run_id, kinds=["tool_intent"])
                   if isinstance(e, ToolIntentEvent)]
        assert {e.tool for e in intents} == expected
        actions = demo_store.actions(run_id)
        assert {a.tool for a in actions} == expected
        assert all(a.state == "finished" for a in actions)
        reads = {"read_ticket", "lookup_account", "check_entitlement"}
        assert all(not c.side_effect for name in reads
                   for c in tool_calls(demo_store, run_id, name))
    [issue] = [a for a in demo_store.actions(demo.bad_run_id) if a.tool == "create_issue"]
    assert issue.idempotency_key == "triage:T-1001:issue"


def test_final_state_has_every_key(demo_store: SqlStore, demo: DemoResult) -> None:
    for run_id in demo.run_ids:
        assert set(demo_store.state_at(run_id)) == STATE_KEYS


def test_rejected_run_keeps_the_priority_and_files_nothing(
        demo_store: SqlStore, demo: DemoResult) -> None:
    state = demo_store.state_at(demo.rejected_run_id)
    assert state["classification"]["category"] == "question"  # what misled the agent
    assert (state["decision"]["open_issue"], state["decision"]["priority"]) == (False, "normal")
    assert (state["issue"], state["priority"]) == (None, "high")
    assert state["reply"]["draft_version"] == 1
    failed = [c["name"] for c in
              steps(demo_store, demo.rejected_run_id)["check"].output["checks"] if not c["ok"]]
    assert failed == ["issue project"]


def test_steps_record_which_state_keys_they_read(demo_store: SqlStore, demo: DemoResult) -> None:
    by_name = steps(demo_store, demo.bad_run_id)
    assert list(by_name) == ["triage", "account", "entitlement", "decide", "act", "reply",
                             "check"]
    assert by_name["account"].reads == ["ticket"]
    assert by_name["entitlement"].reads == ["account"]
    assert {"account", "entitlement"} <= set(by_name["decide"].reads)
    assert {"decision", "ticket"} <= set(by_name["act"].reads)
    assert {"entitlement", "issue"} <= set(by_name["reply"].reads)
    assert by_name["decide"].output["project"] == "SUP"


def test_policy_decisions_are_recorded_as_llm_calls(demo_store: SqlStore, demo: DemoResult) -> None:
    calls = [e for e in demo_store.events(demo.bad_run_id, kinds=["llm_call"])
             if isinstance(e, LLMCallEvent)]
    assert [c.model for c in calls] == ["scripted-policy"] * 3
    for call in calls:
        text = "".join(m["content"] for m in call.messages)
        assert call.input_tokens == len(text) // 4
        assert call.output_tokens and call.output_tokens > 0
    decide = calls[1]
    assert '"plan": "standard"' in decide.messages[1]["content"]
    assert decide.response["project"] == "SUP"
    assert {"account", "entitlement"} <= set(decide.reads)


def _decisions(store: SqlStore, run_id: str) -> list[Any]:
    """What a run decided and did, without ids, times and run-specific keys."""
    out: list[Any] = []
    for e in store.events(run_id):
        if isinstance(e, LLMCallEvent):
            out.append(("llm", e.response))
        elif isinstance(e, ToolCallEvent):
            out.append(("tool", e.tool, e.arguments, e.result))
        elif isinstance(e, StepEvent):
            out.append(("step", e.name, e.reads, e.output))
    return [*out, store.state_at(run_id)]


def test_running_the_demo_twice_repeats_every_decision(tmp_path: Path) -> None:
    store = open_store(tmp_path / "demo.db")
    try:
        first, second = run_demo(store), run_demo(store)
        assert len(store.runs()) == 6
        assert {r.task_id for r in store.runs()} == {"ticket:T-1001", "ticket:T-1004"}
        for a, b in zip(first.run_ids, second.run_ids, strict=True):
            assert _decisions(store, a) == _decisions(store, b)
        assert _decisions(store, first.good_run_id) != _decisions(store, first.bad_run_id)
    finally:
        store.close()


def test_out_receives_progress_lines(tmp_path: Path) -> None:
    lines: list[str] = []
    store = open_store(tmp_path / "demo.db")
    try:
        result = run_demo(store, out=lines.append)
    finally:
        store.close()
    text = "\n".join(lines)
    assert all(run_id in text for run_id in result.run_ids)
    assert "create_issue: ENG-101 (urgent)\n" in text
    assert "decide: open an issue in SUP, priority normal" in text
    assert ("dana (support lead) edits create_issue (jira-issue-needs-lead): "
            "project SUP -> ENG, priority normal -> urgent") in text
    assert "create_issue: ENG-101 (urgent), as the approver edited it" in text
    assert "plan 'standard' from the cache" in text
    assert "set_priority high -> normal: refused (rejected): rejected by dana" in text


@pytest.mark.parametrize(
    ("ticket_id", "issue", "priority"),
    [("T-1002", None, "low"), ("T-1003", "SUP", "high")],
)
def test_other_tickets_follow_the_handbook(tmp_path: Path, ticket_id: str, issue: str | None,
                                           priority: str) -> None:
    store = open_store(tmp_path / "demo.db")
    try:
        run_id = run_triage(store, scenario="stale", ticket_id=ticket_id)
        state = store.state_at(run_id)
        assert store.run(run_id).success is True
        assert store.run(run_id).task_id == f"ticket:{ticket_id}"
        assert (state["issue"]["project"] if state["issue"] else None) == issue
        assert state["priority"] == priority
    finally:
        store.close()
