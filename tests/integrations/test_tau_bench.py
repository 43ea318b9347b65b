"""The tau-bench importer on real runs nobody here wrote (vendored in sample_traces/third_party)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from agentlab.analysis import diff_values, metrics_summary
from agentlab.errors import ImportFormatError
from agentlab.integrations import import_tau_bench, tau_bench_read_only
from agentlab.integrations._files import read_source
from agentlab.query import runs_df
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
    # The file has no times: the runs say so, and latency does not count them.
    assert runs_df(store, engine="polars")["synthetic_times"].all()
    [row] = metrics_summary(store, by=())
    assert row.finished == 48 and row.latency_p50_s is None
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
    assert again == {"imported": [], "skipped": first["imported"], "failed": []}


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


def test_runs_are_timed_in_task_number_order_and_say_the_times_are_synthetic(
        tmp_path: Path, airline_subset: Path) -> None:
    store = open_store(tmp_path / "t.db")
    import_tau_bench(airline_subset, store)
    runs = store.runs()  # newest first
    oldest_first = list(reversed(runs))
    numbers = [int((r.task_id or "").rsplit(":", 1)[1]) for r in oldest_first]
    assert numbers == sorted(numbers) and numbers[:4] == [1, 1, 1, 1] and numbers[-1] == 47
    # Task names sort as their numbers do (2 before 12, as text too).
    names = sorted({r.task_id or "" for r in runs})
    assert names[:4] == ["tau-bench:airline:001", "tau-bench:airline:002",
                         "tau-bench:airline:005", "tau-bench:airline:012"]
    starts = [r.started_at for r in oldest_first]
    assert len(set(starts)) == len(starts) == 48
    assert all(a.ended_at is not None and a.ended_at < b.started_at
               for a, b in itertools.pairwise(oldest_first))
    first = store.events(oldest_first[0].run_id, kinds=["run_started"])[0]
    assert first.metadata["synthetic_times"] is True and first.metadata["task_index"] == 1
    assert [e.ts for e in store.events(runs[0].run_id)] == sorted(
        {e.ts for e in store.events(runs[0].run_id)})
    store.close()


def test_the_listing_shows_tasks_in_number_order(tmp_path: Path, airline_subset: Path) -> None:
    from click.testing import CliRunner

    from agentlab.cli import cli

    db = str(tmp_path / "l.db")
    CliRunner().invoke(cli, ["import", str(airline_subset), "--store", db])
    out = CliRunner().invoke(cli, ["runs", "--store", db, "--json"])
    tasks = [r["task_id"] for r in json.loads(out.stdout)]
    assert tasks == sorted(tasks, reverse=True) and tasks[0] == "tau-bench:airline:047"
    listing = CliRunner().invoke(cli, ["runs", "--store", db]).stdout
    assert "tau-bench-agent@gpt-4o" in listing and "@unknown" not in listing


def test_the_agent_and_model_come_from_the_file_name(tmp_path: Path, airline_subset: Path) -> None:
    from agentlab.integrations._tau_bench import file_name_hints

    assert file_name_hints(airline_subset) == ("gpt-4o", None, None, "airline")
    run_py = ("tool-calling-claude-3-5-sonnet-20241022-0.0_range_0--1_user-gpt-4o-llm_"
              "1030151523.json")
    assert file_name_hints(run_py) == ("claude-3-5-sonnet-20241022", "tool-calling", "gpt-4o",
                                       None)
    assert file_name_hints("results.json") == (None, None, None, None)
    store = open_store(tmp_path / "t.db")
    [one] = import_tau_bench(airline_subset, store)[:1]
    assert (store.run(one).agent_name, store.run(one).agent_version) == (
        "tau-bench-agent", "gpt-4o")
    named = tmp_path / run_py
    named.write_bytes(read_source(RETAIL))
    ids = import_tau_bench(named, store)
    run = store.run(ids[0])
    assert (run.agent_name, run.agent_version) == ("tau-bench-tool-calling",
                                                   "claude-3-5-sonnet-20241022")
    started = store.events(ids[0], kinds=["run_started"])[0]
    assert started.metadata["user_model"] == "gpt-4o"
    unnamed = tmp_path / "results.json"
    unnamed.write_bytes(read_source(airline_subset))
    other = open_store(tmp_path / "u.db")
    [bare, *_] = import_tau_bench(unnamed, other)
    assert other.run(bare).agent_version is None  # nothing names the model: none is made up
    [given, *_] = import_tau_bench(unnamed, open_store(tmp_path / "v.db"), model="gpt-4o")
    assert given == bare
    store.close()
    other.close()


def test_a_malformed_run_names_its_path_and_nothing_is_imported(tmp_path: Path,
                                                                airline_subset: Path) -> None:
    data = json.loads(read_source(airline_subset))
    data[30]["traj"][4]["tool_calls"][0]["function"] = "get_user_details"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    store = open_store(tmp_path / "t.db")
    with pytest.raises(ImportFormatError) as caught:
        import_tau_bench(bad, store)
    err = caught.value
    assert err.at == "$[30].traj[4].tool_calls[0].function" and err.file == str(bad)
    assert f"task {data[30]['task_id']!r}" in str(err) and "expected an object" in str(err)
    assert store.runs() == []
    store.close()
