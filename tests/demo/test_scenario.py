"""The sample scenario as an analyst and an engineer meet it: the store `agentlab demo`
builds from sample_traces/ (a real SQLite file, one import into PostgreSQL when configured),
with enough runs for metrics to mean something, the seed story's runs findable by name, and
a run that waits for approval and can be finished."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlab.analysis import explain, metrics_summary
from agentlab.approval import ApprovalManager, auto_approve
from agentlab.demo import (
    FIXED_VERSION,
    LEAD,
    SampleStory,
    load_sample,
    plan_runs,
    record_waiting_run,
    sample_path,
    sample_story,
)
from agentlab.model import ApprovalEvent, RetryEvent, RunStartedEvent, ToolCallEvent
from agentlab.recovery import resume
from agentlab.store import SqlStore, open_store

try:
    from tests.conftest import PG_SKIP, PG_URL, drop_pg_schema
except ImportError:  # run from inside tests/
    from conftest import PG_SKIP, PG_URL, drop_pg_schema  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    store = open_store(tmp_path_factory.mktemp("scenario") / "sample.db")
    try:
        result = load_sample(store)
        assert len(result.imported) >= 300 and result.skipped == []
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def story(sample_store: SqlStore) -> SampleStory:
    return sample_story(sample_store)


def calls(store: SqlStore, run_id: str, tool: str | None = None) -> list[ToolCallEvent]:
    return [e for e in store.events(run_id, kinds=["tool_call"])
            if isinstance(e, ToolCallEvent) and (tool is None or e.tool == tool)]


def test_the_sample_spans_versions_teams_and_two_weeks(sample_store: SqlStore) -> None:
    runs = sample_store.runs()
    versions = Counter(r.agent_version for r in runs)
    assert set(versions) == {"1.0.0", FIXED_VERSION}
    assert min(versions.values()) >= 100
    assert Counter(r.team for r in runs).keys() == {
        "support-ops", "support-emea", "enterprise-success"}
    assert all(n >= 100 for n in Counter(r.team for r in runs).values())
    days = Counter(r.started_at.date().isoformat() for r in runs)
    assert len(days) == 14 and min(days) == "2024-05-27" and max(days) == "2024-06-09"
    assert {r.status for r in runs} == {"succeeded", "failed", "errored"}
    assert all(report.ok for report in sample_store.verify())


def test_the_sample_has_retries_tool_errors_overrides_and_costs(sample_store: SqlStore) -> None:
    runs = sample_store.runs()
    retried = [r for r in runs if r.retry_count]
    assert len(retried) >= 30
    retry = next(e for e in sample_store.events(retried[0].run_id, kinds=["retry"])
                 if isinstance(e, RetryEvent))
    assert "503 Service Unavailable" in retry.error.message
    errored = [r for r in runs if r.status == "errored"]
    assert errored and all(r.error_count >= 1 for r in errored)
    failed_call = [c for c in calls(sample_store, errored[0].run_id) if c.status == "error"]
    assert [c.tool for c in failed_call] == ["lookup_account"]  # out of retries
    decisions = Counter(e.action for r in runs if r.approval_count
                        for e in sample_store.events(r.run_id, kinds=["approval"])
                        if isinstance(e, ApprovalEvent))
    assert decisions["approve"] > 300 and decisions["edit"] >= 5 and decisions["reject"] >= 5
    assert decisions[None] >= 3  # requests nobody answered before they expired
    assert sum(r.override_count for r in runs) == decisions["edit"] + decisions["reject"]
    # Priced like a hosted model: a few tenths of a cent per run, tokens in the hundreds.
    finished = [r for r in runs if r.status != "errored"]
    per_run = statistics.median(r.cost_usd for r in finished)
    assert 0.001 < per_run < 0.02
    assert statistics.median(r.input_tokens for r in finished) > 500
    # Runs take minutes, mostly the leads' response time.
    assert 60 < statistics.median(r.duration_s or 0 for r in finished) < 1800


def test_metrics_tell_the_versions_and_days_apart(sample_store: SqlStore) -> None:
    by_version = {row.group["agent_version"]: row
                  for row in metrics_summary(sample_store, by=("agent_version",))}
    old, new = by_version["1.0.0"], by_version[FIXED_VERSION]
    assert old.completion_rate is not None and new.completion_rate is not None
    assert new.completion_rate > old.completion_rate + 0.05  # 1.1.0 fails less on stale caches
    assert old.override_rate is not None and new.override_rate is not None
    assert new.override_rate < old.override_rate  # the leads correct it less
    assert old.cost_per_success is not None and new.cost_per_success is not None
    assert new.cost_per_success < old.cost_per_success
    by_day = {row.bucket.date().isoformat(): row
              for row in metrics_summary(sample_store, by=(), bucket="day")
              if row.bucket is not None}
    # The CRM's bad day stands out in retries; the TTL cut ends the stale lookups.
    worst = max(by_day, key=lambda d: by_day[d].retry_rate or 0)
    assert worst == "2024-06-06"
    assert (by_day["2024-06-08"].incident_rate or 0) < 0.5 < (by_day["2024-05-28"].incident_rate
                                                               or 0)
    by_team = metrics_summary(sample_store, by=("team",))
    assert len(by_team) == 3 and len({row.override_rate for row in by_team}) == 3


def test_the_seed_story_is_findable_by_name(sample_store: SqlStore, story: SampleStory) -> None:
    good, bad, fixed = (sample_store.run(i) for i in (story.good_run_id, story.bad_run_id,
                                                      story.fixed_run_id))
    assert good.task_id == bad.task_id == fixed.task_id == "ticket:T-1001"
    assert (good.status, bad.status, fixed.status) == ("succeeded", "failed", "succeeded")
    assert (bad.agent_version, fixed.agent_version) == ("1.0.0", FIXED_VERSION)
    state = sample_store.state_at(bad.run_id)
    # Stale account context: wrong entitlement in the reply, wrong Jira issue, low priority.
    assert calls(sample_store, bad.run_id, "lookup_account")[0].result["source"] == "cache"
    assert (state["entitlement"]["tier"], state["issue"]["project"], state["priority"]) == (
        "Standard", "SUP", "normal")
    assert "Standard support with a 24-hour response time" in state["reply"]["body"]
    assert [c.tool for c in calls(sample_store, fixed.run_id)][1:3] == [
        "lookup_account", "refresh_account"]
    assert sample_store.state_at(fixed.run_id)["issue"]["project"] == "ENG"

    def actions(run_id: str) -> list[tuple[str | None, str | None]]:
        return [(e.action, e.by) for e in sample_store.events(run_id, kinds=["approval"])
                if isinstance(e, ApprovalEvent)]

    assert actions(story.rejected_run_id)[0] == ("reject", LEAD)
    assert actions(story.edited_run_id)[0] == ("edit", LEAD)
    assert sample_store.run(story.edited_run_id).status == "failed"
    assert actions(bad.run_id) == [("approve", "sam (on-call)")] * 2
    top = explain(sample_store, bad.run_id).culprits[0]
    assert (top.kind, top.name) == ("tool_call", "lookup_account")


def test_the_waiting_run_waits_and_can_be_finished(tmp_path: Path) -> None:
    store = open_store(tmp_path / "waiting.db")
    try:
        run_id, request_id = record_waiting_run(store)
        run = store.run(run_id)
        assert (run.status, run.task_id, run.agent_version) == (
            "running", "ticket:T-1006", FIXED_VERSION)
        [pending] = store.approvals(status="pending")
        assert (pending.id, pending.tool, pending.arguments["project"]) == (
            request_id, "create_issue", "ENG")
        started = store.events(run_id, kinds=["run_started"])[0]
        assert isinstance(started, RunStartedEvent)
        assert started.metadata["demo_story"] == "waiting"
        ApprovalManager(store).approve(request_id, by="a tester", reason="checked")
        result = resume(store, run_id, approver=auto_approve("a tester"))
        assert result.error is None
        assert store.run(run_id).status == "succeeded"
        assert store.state_at(run_id)["issue"]["key"] == "ENG-480"
    finally:
        store.close()


def test_a_store_without_the_story_says_how_to_build_it(tmp_path: Path) -> None:
    from agentlab.errors import RecordingError

    store = open_store(tmp_path / "empty.db")
    try:
        with pytest.raises(RecordingError, match="build it with `agentlab demo`"):
            sample_story(store)
    finally:
        store.close()


def test_the_plan_is_the_seed_s() -> None:
    first, again, other = plan_runs(), plan_runs(), plan_runs(7)
    assert first == again and first != other
    assert [p.start for p in first] == sorted(p.start for p in first)
    assert [p.story for p in first if p.story] == ["bad", "good", "rejected", "edited", "fixed"]
    assert sample_path().name == "support-triage-scenario.jsonl.gz"


@pytest.mark.postgres
def test_the_sample_imports_into_postgres() -> None:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = open_store(PG_URL, schema=schema)
    try:
        result = load_sample(store)
        assert len(result.imported) == len(store.runs()) >= 300
        assert all(report.ok for report in store.verify())
        rows = {row.group["agent_version"]: row.runs
                for row in metrics_summary(store, by=("agent_version",))}
        assert sum(rows.values()) == len(result.imported)
        assert sample_story(store).bad_run_id in result.imported
    finally:
        store.close()
        drop_pg_schema(schema)


def test_the_story_names_the_original_runs_after_replays_of_them(tmp_path: Path) -> None:
    """A replay of a story run carries its metadata; the story still names the original."""
    from agentlab.demo import ensure_grants, triage_fixed
    from agentlab.recovery import replay

    store = open_store(tmp_path / "replayed.db")
    try:
        load_sample(store)
        ensure_grants(store)  # the fixed code's new read runs live, through its grant
        before = sample_story(store)
        replayed = replay(store, before.bad_run_id, agent=triage_fixed, live_reads=True)
        assert replayed.flipped and store.run(replayed.run_id).run_kind == "replay"
        assert sample_story(store) == before
    finally:
        store.close()
