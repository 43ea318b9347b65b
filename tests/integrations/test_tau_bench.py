"""The tau-bench importer on real runs nobody here wrote (vendored in sample_traces/third_party)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlab.analysis import diff_values
from agentlab.errors import ImportFormatError
from agentlab.integrations import import_tau_bench, tau_bench_read_only
from agentlab.integrations._files import read_source
from agentlab.store import open_store


def test_imports_the_airline_subset_faithfully(tmp_path: Path, airline_subset: Path) -> None:
    raw = json.loads(read_source(airline_subset))
    store = open_store(tmp_path / "tau.db")
    ids = import_tau_bench(airline_subset, store, model="gpt-4o")
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
    [gold] = store.events(ids[0], kinds=["expectation"])
    writes = [a for a in raw[0]["info"]["task"]["actions"] if not tau_bench_read_only(a["name"])]
    assert [(a.name, a.arguments) for a in gold.actions or []] == [
        (a["name"], a["kwargs"]) for a in writes] and writes
    assert gold.outputs == raw[0]["info"]["task"]["outputs"]
    assert first.task_id == f"tau-bench:airline:{raw[0]['task_id']}"
    assert len({r.task_id for r in runs}) == 12
    # Re-importing the same file adds nothing.
    assert import_tau_bench(airline_subset, store, model="gpt-4o") == ids
    assert len(store.runs()) == 48 and sum(r.tool_calls for r in store.runs()) == 240
    store.close()


def test_failed_trials_part_from_their_gold_actions(tmp_path: Path, airline_subset: Path) -> None:
    store = open_store(tmp_path / "tau.db")
    import_tau_bench(airline_subset, store)
    parted = 0
    for r in store.runs():
        writes = [{"name": e.tool, "kwargs": e.arguments}
                  for e in store.events(r.run_id, kinds=["tool_call"]) if e.side_effect]
        [exp] = store.events(r.run_id, kinds=["expectation"])
        gold = [{"name": a.name, "kwargs": a.arguments} for a in exp.actions or []]
        if r.success is False and diff_values(gold, writes):
            parted += 1
    assert parted > 0
    store.close()


def test_rejects_files_that_are_not_tau_bench(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ImportFormatError, match="not a tau-bench results file"):
        import_tau_bench(bad, open_store(tmp_path / "t.db"))


def test_cli_imports_tau_bench(tmp_path: Path, airline_subset: Path) -> None:
    from click.testing import CliRunner

    from agentlab.cli import cli

    db = str(tmp_path / "cli.db")
    args = ["import", str(airline_subset), "--format", "tau-bench", "--store", db, "--json"]
    first = json.loads(CliRunner().invoke(cli, args).output)
    assert len(first["imported"]) == 48 and first["skipped"] == []
    again = json.loads(CliRunner().invoke(cli, args).output)
    assert again == {"imported": [], "skipped": first["imported"]}


def test_gzipped_and_plain_files_import_as_the_same_runs(tmp_path: Path, airline_subset: Path) -> None:
    plain = tmp_path / "airline.json"
    plain.write_bytes(read_source(airline_subset))
    store = open_store(tmp_path / "t.db")
    assert import_tau_bench(plain, store) == import_tau_bench(airline_subset, store)
    assert len(store.runs()) == 48
    damaged = tmp_path / "damaged.json.gz"
    damaged.write_bytes(airline_subset.read_bytes()[:5000])
    with pytest.raises(ImportFormatError, match="damaged gzip"):
        import_tau_bench(damaged, store)
    with pytest.raises(ImportFormatError, match="no such file"):
        import_tau_bench(tmp_path / "absent.json", store)
    assert len(store.runs()) == 48 and all(v.ok for v in store.verify())
    store.close()
