"""The committed sample traces stay readable: format stability across versions."""

from __future__ import annotations

from pathlib import Path

from agentlab.store import open_store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "support-triage-demo.jsonl"


def test_demo_sample_imports_verifies_and_tells_its_story(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    result = store.import_runs(SAMPLE)
    assert len(result.imported) == 2 and result.skipped == []
    assert all(r.ok for r in store.verify())
    runs = {r.status: r for r in store.runs()}
    assert set(runs) == {"succeeded", "failed"}
    assert runs["succeeded"].task_id == runs["failed"].task_id == "ticket:T-1001"
    bad_lookup = next(e for e in store.events(runs["failed"].run_id, kinds=["tool_call"])
                      if e.tool == "lookup_account")
    assert bad_lookup.result["source"] == "cache"
    assert store.state_at(runs["failed"].run_id)["priority"] != store.state_at(
        runs["succeeded"].run_id)["priority"]
    assert store.import_runs(SAMPLE).skipped == result.imported
    store.close()
