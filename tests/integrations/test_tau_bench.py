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
    assert first.task_id == f"tau-bench:airline:{raw[0]['task_id']:03d}"
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


RETAIL = Path(__file__).parents[2] / "sample_traces/third_party/agentrx-tau-retail/tau_dataset_failed.json.gz"


def test_domain_is_read_from_the_tool_names(tmp_path: Path, airline_subset: Path) -> None:
    from agentlab.integrations._tau_bench import detect_domain

    store = open_store(tmp_path / "t.db")
    [first, *_] = import_tau_bench(airline_subset, store)
    assert store.events(first, kinds=["run_started"])[0].task_id.startswith("tau-bench:airline:")
    retail = json.loads(read_source(RETAIL))
    assert detect_domain(retail) == "retail"
    # A small constructed case: one retail tool name decides it.
    run = {"task_id": 1, "trial": 0, "traj": [{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "cancel_pending_order", "arguments": "{}"}}]}]}
    assert detect_domain([run]) == "retail"
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps([{"task_id": 1, "trial": 0, "traj": []}]))
    with pytest.raises(ImportFormatError, match="--domain"):
        import_tau_bench(nameless, store)
    # --domain still overrides what the names say.
    [ov] = import_tau_bench(nameless, store, domain="retail")
    assert store.events(ov, kinds=["run_started"])[0].task_id == "tau-bench:retail:001"
    store.close()


def test_deep_nesting_is_a_typed_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ImportFormatError, match="nested too deeply"):
        import_tau_bench(deep, open_store(tmp_path / "t.db"))


def test_cli_says_0_runs_on_an_empty_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agentlab.cli import cli

    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    out = CliRunner().invoke(cli, ["import", str(empty), "--format", "tau-bench",
                                   "--store", str(tmp_path / "e.db")])
    assert out.exit_code == 0 and "0 runs" in out.output
