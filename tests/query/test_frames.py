"""The frames API on each backend: columns and types, filters, and pandas == polars.

The runs are recorded with the real recorder under a grant and a policy that asks a human
before ``create_issue``: one approved, one edited, one rejected (an override each), plus an
ungoverned run whose tool fails once, so every column has something to show.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.model import ApprovalRequest
from agentlab.query import (
    APPROVAL_TYPES,
    CHECKPOINT_TYPES,
    RUN_TYPES,
    STEP_TYPES,
    approvals_df,
    checkpoints_df,
    run_filter,
    runs_df,
    steps_df,
    to_frame,
    to_us,
)
from agentlab.store import SqlStore

ASK = al.Policy([al.Rule("jira-needs-human", "approve", tool="create_issue")])
FRAMES = [runs_df, steps_df, checkpoints_df, approvals_df]
TYPES = {runs_df: RUN_TYPES, steps_df: STEP_TYPES, checkpoints_df: CHECKPOINT_TYPES,
         approvals_df: APPROVAL_TYPES}


def plain(value: Any) -> Any:
    """One cell as a plain Python value, so pandas and polars cells can be compared."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        return list(value.tolist() if hasattr(value, "tolist") else value)
    if hasattr(value, "item"):
        return value.item()
    return value


def records(frame: Any) -> list[dict[str, Any]]:
    rows = frame.to_dicts() if isinstance(frame, pl.DataFrame) else frame.to_dict("records")
    return [{k: plain(v) for k, v in r.items()} for r in rows]


@pytest.fixture
def recorded(store: SqlStore) -> dict[str, str]:
    """Four runs: approved, edited (v2, phase act), rejected (fails), and an ungoverned one."""
    al.issue_grant(store, "jira", principal="bot", owner="team", workflow="triage",
                   scopes=["jira:write:SUP-*"], expires_in=timedelta(days=1))

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str, priority: int = 3) -> str:
        return f"{project}-1"

    @al.tool
    def lookup(key: str) -> str:
        if key == "missing":
            raise KeyError(key)
        return key.upper()

    @al.tool(freshness=timedelta(hours=1))
    def cached_invoice(number: int) -> dict[str, Any]:
        return {"number": number, "age_s": 7200}  # two hours old: a stale-state incident

    def edit(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.edit(req.id, {**req.arguments, "priority": "1"}, by="ann", reason="enterprise")

    def reject(req: ApprovalRequest, mgr: ApprovalManager) -> None:
        mgr.reject(req.id, by="bob", reason="duplicate")

    ids: dict[str, str] = {}
    for name, approver, version in (("approved", al.auto_approve("ann"), "1"),
                                    ("edited", edit, "2"), ("rejected", reject, "2")):
        with al.record_run("triage", agent="bot", agent_version=version, store=store,
                           task_id=f"T-{name}", grants=["jira"], policy=ASK,
                           approver=approver) as run:
            run.state["ticket"] = {"id": name}
            run.llm_call("m-1", input_tokens=100, output_tokens=20, cost_usd=0.01)
            if name == "edited":
                run.enter_phase("act")
            try:
                create_issue("SUP-1", title="printer")
            except al.ToolDeniedError:
                run.outcome(success=False)
            else:
                run.outcome(success=True)
        ids[name] = run.run_id
    with al.record_run("billing", agent="bot", agent_version="1", store=store,
                       task_id="T-bill") as run:
        run.state["invoice"] = 7
        run.state["invoice"] = 8
        try:
            lookup("missing")
        except KeyError:
            run.outcome(success=False)
        lookup("present")
        cached_invoice(8)
    ids["billing"] = run.run_id
    return ids


@pytest.mark.parametrize("fn", FRAMES, ids=lambda f: f.__name__)
def test_each_frame_has_its_declared_columns_and_types_in_both_engines(
        store: SqlStore, recorded: dict[str, str], fn: Any) -> None:
    types = TYPES[fn]
    pdf, plf = fn(store), fn(store, engine="polars")
    assert list(pdf.columns) == list(types) == plf.columns
    assert len(pdf) == plf.height > 0
    assert records(pdf) == records(plf)
    for name, kind in types.items():
        if kind == "time":
            assert str(pdf[name].dtype) == "datetime64[us, UTC]", name
            assert plf.schema[name] == pl.Datetime("us", "UTC"), name
        if kind == "int":
            assert str(pdf[name].dtype) == "int64" and plf.schema[name] == pl.Int64, name


@pytest.mark.parametrize("fn", FRAMES, ids=lambda f: f.__name__)
def test_an_empty_store_gives_empty_frames_with_the_columns(store: SqlStore, fn: Any) -> None:
    pdf, plf = fn(store), fn(store, engine="polars")
    assert list(pdf.columns) == list(TYPES[fn]) == plf.columns
    assert len(pdf) == plf.height == 0
    assert plf.schema == to_frame({c: [] for c in TYPES[fn]}, TYPES[fn], engine="polars").schema


def test_runs_df_holds_the_summaries(store: SqlStore, recorded: dict[str, str]) -> None:
    runs = runs_df(store)
    assert list(runs.run_id) == [recorded[k] for k in ("approved", "edited", "rejected",
                                                       "billing")]  # oldest first
    by_id = runs.set_index("run_id")
    for rid in recorded.values():
        s = store.run(rid)
        row = by_id.loc[rid]
        assert row.started_at.to_pydatetime() == s.started_at
        assert row.ended_at.to_pydatetime() == s.ended_at
        assert row.duration_s == pytest.approx(s.duration_s, abs=1e-6)
        assert (row.status, row.approval_count, row.override_count, row.denied_count) == \
            (s.status, s.approval_count, s.override_count, s.denied_count)
        assert row.stale_count == s.stale_count
        assert row.incident_count == (s.error_count + s.retry_count + s.denied_count
                                      + s.stale_count)
    edited, rejected = by_id.loc[recorded["edited"]], by_id.loc[recorded["rejected"]]
    assert (edited.phase, edited.override_count, edited.success) == ("act", 1, True)
    assert (rejected.status, rejected.override_count, rejected.denied_count) == ("failed", 1, 1)
    billing = by_id.loc[recorded["billing"]]
    assert (billing.error_count, billing.stale_count, billing.incident_count) == (1, 1, 2)


def test_filters_select_runs(store: SqlStore, recorded: dict[str, str]) -> None:
    def ids(**kw: Any) -> set[str]:
        return set(runs_df(store, **kw).run_id)

    everything = set(recorded.values())
    assert ids(workflow="billing") == {recorded["billing"]}
    assert ids(workflow="triage", agent_version="2") == {recorded["edited"], recorded["rejected"]}
    assert ids(status="failed") == {recorded["rejected"], recorded["billing"]}
    assert ids(phase="act") == {recorded["edited"]}
    assert ids(task="T-approved") == {recorded["approved"]}
    assert ids(agent="bot") == everything and ids(agent="other") == set()
    started = sorted((store.run(r).started_at, r) for r in everything)
    middle = started[1][0]
    assert ids(since=middle) == {r for _, r in started[1:]}
    assert ids(until=middle) == {started[0][1]}
    assert ids(since=middle.isoformat()) == ids(since=middle.replace(tzinfo=None))
    assert ids(since=date.today() + timedelta(days=2)) == set()
    # run ids, alone or with filters, in every frame
    pick = [recorded["edited"], recorded["billing"]]
    assert set(runs_df(store, pick).run_id) == set(pick)
    assert set(runs_df(store, pick, workflow="triage").run_id) == {recorded["edited"]}
    assert set(steps_df(store, pick).run_id) == set(pick)
    assert set(checkpoints_df(store, pick, engine="polars")["run_id"]) == set(pick)
    assert set(approvals_df(store, pick).run_id) == {recorded["edited"]}
    assert set(steps_df(store, recorded["billing"]).run_id) == {recorded["billing"]}
    assert steps_df(store, []).empty and approvals_df(store, status="running").empty
    assert set(steps_df(store, workflow="billing").run_id) == {recorded["billing"]}


def test_steps_df_extracts_the_step_fields(store: SqlStore, recorded: dict[str, str]) -> None:
    steps = steps_df(store)
    for rid in recorded.values():  # every event, in order
        assert list(steps[steps.run_id == rid].seq) == list(range(1, store.run(rid).last_seq + 1))
    rejected = steps[steps.run_id == recorded["rejected"]]
    [approval] = rejected[rejected.kind == "approval"].itertuples()
    assert (approval.name, approval.status) == ("create_issue", "reject")
    [denied] = rejected[rejected.kind == "tool_call"].itertuples()
    assert (denied.name, denied.status, denied.denial_code) == ("create_issue", "denied",
                                                                "rejected")
    edited = steps[steps.run_id == recorded["edited"]]
    [call] = edited[edited.kind == "tool_call"].itertuples()
    [req] = store.approvals(run_id=recorded["edited"])
    assert (call.status, call.grant, call.approval, call.phase) == ("ok", "jira", req.id, "act")
    assert list(edited[edited.kind == "approval"].status) == ["edit"]
    [llm] = edited[edited.kind == "llm_call"].itertuples()
    assert (llm.name, llm.cost_usd, llm.input_tokens, llm.output_tokens) == ("m-1", 0.01, 100, 20)
    billing = steps[steps.run_id == recorded["billing"]]
    calls = billing[billing.kind == "tool_call"]
    assert list(calls.name) == ["lookup", "lookup", "cached_invoice"]
    assert list(calls.status) == ["error", "ok", "ok"]
    assert [plain(v) for v in calls.error_type] == ["KeyError", None, None]
    assert list(calls.attempt) == [1, 1, 1] and list(calls.stale) == [False, False, True]
    assert steps.stale.sum() == 1
    assert list(billing[billing.kind == "run_ended"].status) == ["failed"]
    only = steps_df(store, kinds=["tool_call", "approval"], engine="polars")
    assert set(only["kind"]) == {"tool_call", "approval"}
    assert steps_df(store, kinds=[]).empty


def test_checkpoints_and_approvals(store: SqlStore, recorded: dict[str, str]) -> None:
    cps = checkpoints_df(store, [recorded["billing"]])
    assert list(cps.writes) == [["invoice"], ["invoice"]] and list(cps.deletes) == [[], []]
    assert store.value(cps.root.iloc[-1]) == {"invoice": 8}
    assert list(cps.seq) == [c.seq for c in store.checkpoints(recorded["billing"])]
    apps = approvals_df(store).set_index("run_id")
    assert list(apps.loc[[recorded[k] for k in ("approved", "edited", "rejected")]].status) == \
        ["approved", "edited", "rejected"]
    assert list(apps.overridden) == [False, True, True]
    assert apps.loc[recorded["rejected"]].reason == "duplicate"
    assert (apps.wait_s >= 0).all()
    assert apps.loc[recorded["edited"]].grant == "jira"
    assert '"priority":"1"' in apps.loc[recorded["edited"]].edited_arguments
    assert pd.isna(apps.loc[recorded["rejected"]].consumed_at)


def test_bad_filter_values_say_what_to_write(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="not a run status"):
        runs_df(store, status="done")
    with pytest.raises(ValueError, match="not a phase"):
        steps_df(store, phase="write")
    with pytest.raises(ValueError, match="ISO 8601"):
        runs_df(store, since="last tuesday")
    with pytest.raises(ValueError, match="not after since"):
        runs_df(store, since="2025-03-02", until="2025-03-01")
    with pytest.raises(ValueError, match="engine"):
        runs_df(store, engine="spark")  # type: ignore[arg-type]


def test_times_convert_as_utc() -> None:
    assert to_us("1970-01-01T00:00:01Z") == 1_000_000
    assert to_us(date(1970, 1, 2)) == 86_400_000_000
    assert to_us(datetime(1970, 1, 1, 1)) == to_us("1970-01-01T02:00:00+01:00") == 3_600_000_000
    assert to_us(datetime(2025, 3, 1, tzinfo=UTC)) == 1_740_787_200_000_000
    assert run_filter(agent="bot", task="T-1").agent_name == "bot"


def test_importing_the_read_path_imports_no_frame_library() -> None:
    code = ("import sys, agentlab.query, agentlab.analysis; "
            "assert not {'pandas', 'polars'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_misspelt_filter_is_an_error_not_every_run(tmp_path: Path) -> None:
    from agentlab.query import runs_df

    store = al.open_store(tmp_path / "typo.db")
    with pytest.raises(TypeError, match="unknown run filter"):
        runs_df(store, wokflow="triage")  # type: ignore[call-arg]
