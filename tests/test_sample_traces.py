"""The committed sample traces stay readable: format stability across versions."""

from __future__ import annotations

from pathlib import Path

from agentlab.model import ApprovalEvent, ToolCallEvent
from agentlab.store import open_store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "support-triage-demo.jsonl"


def test_demo_sample_imports_verifies_and_tells_its_story(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    result = store.import_runs(SAMPLE)
    assert len(result.imported) == 3 and result.skipped == []
    assert all(r.ok for r in store.verify())
    good, bad, rejected = (store.run(run_id) for run_id in result.imported)
    assert (good.status, bad.status, rejected.status) == ("succeeded", "failed", "failed")
    assert good.task_id == bad.task_id == "ticket:T-1001"
    assert rejected.task_id == "ticket:T-1004"
    bad_lookup = next(e for e in store.events(bad.run_id, kinds=["tool_call"])
                      if e.tool == "lookup_account")
    assert bad_lookup.result["source"] == "cache"
    assert store.state_at(bad.run_id)["priority"] != store.state_at(good.run_id)["priority"]

    # The governance story survives the round trip: who approved, edited and rejected.
    actions = {r.run_id: [e.action for e in store.events(r.run_id, kinds=["approval"])
                          if isinstance(e, ApprovalEvent)] for r in (good, bad, rejected)}
    assert actions == {good.run_id: ["approve", "approve"], bad.run_id: ["edit", "approve"],
                       rejected.run_id: ["reject", "approve"]}
    assert (bad.override_count, rejected.override_count, rejected.denied_count) == (1, 1, 1)
    calls = [e for r in (good, bad, rejected) for e in store.events(r.run_id, kinds=["tool_call"])
             if isinstance(e, ToolCallEvent)]
    assert all(c.grant and c.credential for c in calls)
    assert store.import_runs(SAMPLE).skipped == result.imported
    store.close()
