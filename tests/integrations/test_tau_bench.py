"""The tau-bench importer on the real runs in ../shared/real_traces (nobody here wrote them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlab.analysis import diff_values
from agentlab.errors import ImportFormatError
from agentlab.integrations import import_tau_bench
from agentlab.store import open_store

TRACES = Path(__file__).resolve().parents[3] / "shared" / "real_traces"
AIRLINE = TRACES / "tau-bench" / "gpt-4o-airline.subset.json"

needs_traces = pytest.mark.skipif(
    not AIRLINE.exists(),
    reason=f"real traces not found at {AIRLINE} (they live in ../shared beside the repo)",
)


@needs_traces
def test_imports_the_airline_subset_faithfully(tmp_path: Path) -> None:
    raw = json.loads(AIRLINE.read_text())
    store = open_store(tmp_path / "tau.db")
    ids = import_tau_bench(AIRLINE, store, model="gpt-4o")
    assert len(ids) == len(set(ids)) == len(raw) == 48
    runs = store.runs()
    assert sum(r.success is True for r in runs) == sum(r["reward"] == 1.0 for r in raw)
    assert sum(r.tool_calls for r in runs) == 240
    tool_errors = sum(
        1 for r in runs for e in store.events(r.run_id, kinds=["tool_call"]) if e.status == "error"
    )
    assert tool_errors == 21
    assert all(v.ok for v in store.verify())
    # Gold actions travel with the run; tasks group trials as siblings.
    first = store.events(ids[0], kinds=["run_started"])[0]
    assert first.metadata["expected_actions"] == raw[0]["info"]["task"]["actions"]
    assert first.task_id == f"tau-bench:airline:{raw[0]['task_id']}"
    assert len({r.task_id for r in runs}) == 12
    # Re-importing the same file adds nothing.
    assert import_tau_bench(AIRLINE, store, model="gpt-4o") == ids
    assert len(store.runs()) == 48 and sum(r.tool_calls for r in store.runs()) == 240
    store.close()


@needs_traces
def test_failed_trials_part_from_their_gold_actions(tmp_path: Path) -> None:
    store = open_store(tmp_path / "tau.db")
    import_tau_bench(AIRLINE, store)
    parted = 0
    for r in store.runs():
        started = store.events(r.run_id, kinds=["run_started"])[0]
        writes = [{"name": e.tool, "kwargs": e.arguments}
                  for e in store.events(r.run_id, kinds=["tool_call"])
                  if not e.tool.startswith(("get_", "search_", "list_", "calculate", "think"))]
        gold = [a for a in started.metadata["expected_actions"]
                if not a["name"].startswith(("get_", "search_", "list_", "calculate", "think"))]
        if r.success is False and diff_values(gold, writes):
            parted += 1
    assert parted > 0
    store.close()


def test_rejects_files_that_are_not_tau_bench(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ImportFormatError, match="not a tau-bench results file"):
        import_tau_bench(bad, open_store(tmp_path / "t.db"))


@needs_traces
def test_cli_imports_tau_bench(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agentlab.cli import cli

    db = str(tmp_path / "cli.db")
    args = ["import", str(AIRLINE), "--format", "tau-bench", "--store", db, "--json"]
    first = json.loads(CliRunner().invoke(cli, args).output)
    assert len(first["imported"]) == 48 and first["skipped"] == []
    again = json.loads(CliRunner().invoke(cli, args).output)
    assert again == {"imported": [], "skipped": first["imported"]}
