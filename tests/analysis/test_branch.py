"""Branch points on the sample agent's runs and on real tau-bench trials."""

from __future__ import annotations

import json
from pathlib import Path

import agentlab as al
from agentlab.analysis import (
    Signature,
    divergence_from_expected,
    expectations_of,
    first_divergence,
)
from agentlab.demo import run_demo
from agentlab.integrations import import_tau_bench
from agentlab.integrations._files import read_source
from agentlab.model import RunSummary, ToolCallEvent


def test_demo_runs_part_at_the_entitlement_check_after_the_stale_lookup(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "d.db")
    r = run_demo(store)
    good, bad = store.events(r.good_run_id), store.events(r.bad_run_id)
    d = first_divergence(good, bad)
    assert d is not None
    assert d.a == Signature("tool_call", "check_entitlement", '{"plan":"enterprise"}')
    assert d.b == Signature("tool_call", "check_entitlement", '{"plan":"standard"}')
    lookup = next(e for e in bad if e.kind == "tool_call" and e.tool == "lookup_account")
    assert [(sb, sig.name) for _, sb, sig in d.differing_results] == [(lookup.seq, "lookup_account")]
    assert first_divergence(good, good) is None
    store.close()


def test_divergence_from_expected_actions(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "e.db")

    @al.tool
    def cancel(reservation_id: str) -> str:
        return "ok"

    with al.record_run("w", agent="a", store=store) as run:
        cancel("Z7GOZK")
        cancel("OTHER1")
    events = store.events(run.run_id)
    expected = [{"name": "cancel", "kwargs": {"reservation_id": "Z7GOZK"}}]
    d = divergence_from_expected(events, expected)
    assert d is not None and d.index == 1 and d.b is None
    assert d.a == Signature("tool_call", "cancel", '{"reservation_id":"OTHER1"}')
    assert divergence_from_expected(events, [*expected, {"name": "cancel", "kwargs": {
        "reservation_id": "OTHER1"}}]) is None
    store.close()


def test_tau_bench_failed_trials_part_from_passing_ones(tmp_path: Path, airline_subset: Path) -> None:
    raw = json.loads(read_source(airline_subset))
    store = al.open_store(tmp_path / "t.db")
    import_tau_bench(airline_subset, store, model="gpt-4o")
    by_task: dict[str, list[RunSummary]] = {}
    for r in store.runs():
        by_task.setdefault(r.task_id or "", []).append(r)
    mixed = {t: rs for t, rs in by_task.items()
             if {True, False} <= {r.success for r in rs}}
    tasks_with_both = {r["task_id"] for r in raw} - {
        t for t in {r["task_id"] for r in raw}
        if len({x["reward"] for x in raw if x["task_id"] == t}) == 1}
    assert len(mixed) == len(tasks_with_both) == 10

    def is_write(e: ToolCallEvent) -> bool:
        return not e.tool.startswith(("get_", "search_", "list_", "calculate", "think"))

    tasks_parted = set()
    for task, runs in mixed.items():
        ok = next(r for r in runs if r.success)
        for bad in (r for r in runs if r.success is False):
            if first_divergence(store.events(ok.run_id), store.events(bad.run_id)) is not None:
                tasks_parted.add(task)
    assert tasks_parted == set(mixed)  # in every mixed task a failing trial parts from a pass
    off_script = 0
    for r in store.runs():
        events = store.events(r.run_id)
        gold = [{"name": a.name, "kwargs": a.arguments}
                for a in expectations_of(events).actions or []]
        d = divergence_from_expected(events, gold, keep=is_write)
        if r.success:
            continue
        off_script += d is not None
    assert off_script > 0
    store.close()
