"""``agentlab import --format who-and-when`` and ``agentlab eval-attribution`` through click's
runner, on a real SQLite file and the vendored Who&When runs."""

from __future__ import annotations

import gzip
import json
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import agentlab as al
from agentlab.analysis import score_attribution
from agentlab.cli import cli

BASELINES = {"always index 1", "first state-changing call", "last assistant message",
             "agent of the first message"}
LABEL_KEYS = {"run_id", "step", "agent", "reason"}


@pytest.fixture(autouse=True)
def _no_store_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)


@pytest.fixture(scope="session")
def folder(third_party: Path) -> Path:
    """The 126 algorithm-generated Who&When runs, one gzipped JSON file each."""
    return third_party / "who-and-when" / "algorithm-generated"


@pytest.fixture
def few(folder: Path, tmp_path: Path) -> Path:
    """A folder of four of the runs (1..4), to keep the explain-heavy tests quick."""
    out = tmp_path / "few"
    out.mkdir()
    for n in (1, 2, 3, 4):
        shutil.copy(folder / f"{n}.json.gz", out)
    return out


def ok(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command, with nothing on stdout."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentlab: error: ")
    return lines[0]


def source(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return data


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- import --------------------------------------------------------------------------------


def test_import_one_file_then_the_folder(folder: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    first = json.loads(ok("import", str(folder / "1.json.gz"), "--format", "who-and-when",
                          "--store", db, "--json").stdout)
    assert len(first["imported"]) == 1 and first["skipped"] == []
    (one,) = first["imported"]
    with closing(al.open_store(db)) as store:
        run = store.run(one)
        events = store.events(one)
    assert run.workflow == "who-and-when" and run.status == "failed"
    # One step per history entry, each with its position in the file.
    history = source(folder / "1.json.gz")["history"]
    assert [e.source for e in events if e.source] == [f"history[{i}]"
                                                      for i in range(len(history))]

    text = ok("import", str(folder), "--format", "who-and-when", "--store", db).stdout
    lines = text.splitlines()
    assert len(lines) == 126
    assert sum(line.startswith("imported  ") for line in lines) == 125
    assert [line for line in lines if line.startswith("skipped")] == [
        f"skipped   {one} (already stored, identical)"]

    again = json.loads(ok("import", str(folder), "--format", "who-and-when", "--store", db,
                          "--json").stdout)
    assert again["imported"] == [] and len(again["skipped"]) == 126 and one in again["skipped"]
    with closing(al.open_store(db)) as store:
        runs = store.runs()
        assert len(runs) == 126 and {r.workflow for r in runs} == {"who-and-when"}
        assert store.events(one) == events  # the re-import changed nothing
        assert all(r.ok for r in store.verify())


def test_labels_out_writes_the_human_labels(folder: Path, tmp_path: Path) -> None:
    db, labels = str(tmp_path / "w.db"), tmp_path / "labels.jsonl"
    result = ok("import", str(folder), "--format", "who-and-when", "--store", db, "--json",
                "--labels-out", str(labels))
    ids = json.loads(result.stdout)["imported"]
    assert f"wrote 126 label(s) to {labels}" in result.stderr
    assert not labels.with_name("labels.jsonl.partial").exists()
    rows = read_jsonl(labels)
    assert len(rows) == 126 and all(set(r) == LABEL_KEYS for r in rows)
    assert [r["run_id"] for r in rows] == ids  # the same runs, in the same (file) order
    assert all(r["step"].startswith("history[") and r["agent"] and r["reason"] for r in rows)
    # The first file's label is its mistake_step / mistake_agent / mistake_reason, and names
    # a step the stored run has, taken by that agent's turn.
    data = source(folder / "1.json.gz")
    assert rows[0]["step"] == f"history[{int(data['mistake_step'])}]"
    assert rows[0]["agent"] == data["mistake_agent"]
    assert rows[0]["reason"] == data["mistake_reason"]
    with closing(al.open_store(db)) as store:
        stored = {e.source for e in store.events(rows[0]["run_id"]) if e.source}
    assert rows[0]["step"] in stored
    # The labels are not part of the stored run.
    exported = tmp_path / "run.jsonl"
    ok("export", rows[0]["run_id"], "--store", db, "-o", str(exported))
    assert data["mistake_reason"] not in exported.read_text()


def test_labels_out_that_cannot_be_written_imports_nothing(folder: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    target = tmp_path / "missing-folder" / "labels.jsonl"
    line = one_line_error(CliRunner().invoke(cli, [
        "import", str(folder / "1.json.gz"), "--format", "who-and-when", "--store", db,
        "--labels-out", str(target)]))
    assert "No such file or directory" in line and "missing-folder" in line
    with closing(al.open_store(db)) as store:
        assert store.runs() == []


def test_labels_out_needs_the_who_and_when_format(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    for fmt in ("agentlab", "tau-bench"):
        line = one_line_error(CliRunner().invoke(cli, [
            "import", str(folder / "1.json.gz"), "--format", fmt, "--store", str(db),
            "--labels-out", str(tmp_path / "labels.jsonl")]))
        assert f"--labels-out writes Who&When labels; it needs --format who-and-when, not " \
               f"--format {fmt}" in line
    assert not db.exists() and not (tmp_path / "labels.jsonl").exists()


@pytest.mark.parametrize("fmt", ["agentlab", "tau-bench"])
def test_a_folder_is_refused_by_the_file_formats(fmt: str, folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    args = ["import", str(folder), "--store", str(db)]
    line = one_line_error(CliRunner().invoke(cli, [*args, "--format", fmt]))
    assert f"{folder} is a folder; --format {fmt} reads one file" in line
    assert not db.exists()


def test_a_folder_without_run_files_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_error(CliRunner().invoke(cli, [
        "import", str(empty), "--format", "who-and-when", "--store", str(tmp_path / "w.db")]))
    assert "no .json or .json.gz files in this folder" in line


# -- eval-attribution ----------------------------------------------------------------------


@pytest.fixture
def scored(few: Path, tmp_path: Path) -> tuple[str, Path]:
    """A store holding runs 1..4 and their labels file."""
    db, labels = str(tmp_path / "w.db"), tmp_path / "labels.jsonl"
    ok("import", str(few), "--format", "who-and-when", "--store", db, "--labels-out",
       str(labels))
    return db, labels


def test_eval_attribution_json_agrees_with_the_labels(scored: tuple[str, Path]) -> None:
    db, labels = scored
    expected = read_jsonl(labels)
    report = json.loads(ok("eval-attribution", str(labels), "--store", db, "--json").stdout)
    assert set(report) == {"ranking", "baselines", "seconds", "runs"}
    assert set(report["baselines"]) == BASELINES
    rows = report["runs"]
    assert [(r["run_id"], r["label_step"], r["label_agent"]) for r in rows] == [
        (x["run_id"], x["step"], x["agent"]) for x in expected]
    for tally in (report["ranking"], *report["baselines"].values()):
        assert tally["runs"] == 4
        assert all(tally[k] is None or 0.0 <= tally[k] <= 1.0
                   for k in ("step_top1", "step_top3", "agent_top1"))
    # A baseline picks one step (no top-3); the agent baseline names no step at all.
    assert all(b["step_top3"] is None for b in report["baselines"].values())
    assert report["baselines"]["agent of the first message"]["step_top1"] is None
    # The rates are the per-run outcomes counted.
    ranking = report["ranking"]
    assert all(r["hit"] == (bool(r["top"]) and r["top"][0] == r["label_step"]) for r in rows)
    assert all(len(r["top"]) <= 3 for r in rows)
    assert ranking["step_top1"] == sum(r["hit"] for r in rows) / 4
    assert ranking["step_top3"] == sum(r["label_step"] in r["top"] for r in rows) / 4
    assert ranking["agent_top1"] == sum(r["top_agent"] == r["label_agent"] for r in rows) / 4
    assert ranking["step_top3"] >= ranking["step_top1"]
    assert report["seconds"] >= 0
    # The command scores exactly what the library does.
    with closing(al.open_store(db)) as store:
        direct = score_attribution(store, expected).to_dict()
    assert report["ranking"] == direct["ranking"] and report["baselines"] == direct["baselines"]
    assert report["runs"] == direct["runs"]


def test_eval_attribution_text_table(scored: tuple[str, Path]) -> None:
    db, labels = scored
    data = json.loads(ok("eval-attribution", str(labels), "--store", db, "--json").stdout)
    out = ok("eval-attribution", str(labels), "--store", db).stdout
    lines = out.splitlines()
    assert lines[0].startswith("4 labelled runs, ")
    header = next(line for line in lines if line.startswith("method"))
    assert "step top-1" in header and "step top-3" in header and "agent top-1" in header
    ranked = next(line for line in lines if line.startswith("ranked culprits (explain)"))
    r = data["ranking"]
    assert ranked.split()[-3:] == [f"{r['step_top1']:.1%}", f"{r['step_top3']:.1%}",
                                   f"{r['agent_top1']:.1%}"]
    for name in BASELINES:
        row = next(line for line in lines if line.startswith(f"baseline: {name}"))
        b = data["baselines"][name]
        step = "-" if b["step_top1"] is None else f"{b['step_top1']:.1%}"
        assert row.split()[-3:] == [step, "-", f"{b['agent_top1']:.1%}"]
    assert "step top-3 = it is among the first\nthree" in out


def test_eval_attribution_limit(scored: tuple[str, Path]) -> None:
    db, labels = scored
    first = read_jsonl(labels)[:2]
    report = json.loads(ok("eval-attribution", str(labels), "--store", db, "--json",
                           "--limit", "2").stdout)
    assert report["ranking"]["runs"] == 2
    assert [r["run_id"] for r in report["runs"]] == [x["run_id"] for x in first]


def test_eval_attribution_accepts_seq_steps(scored: tuple[str, Path], tmp_path: Path) -> None:
    """A label may name the step by seq: the top culprit's own seq is a hit at top-1."""
    db, labels = scored
    run_id = read_jsonl(labels)[0]["run_id"]
    from agentlab.analysis import explain

    with closing(al.open_store(db)) as store:
        top = explain(store, run_id, limit=10).culprits[0]
    by_seq = tmp_path / "seq.jsonl"
    by_seq.write_text(json.dumps({"run_id": run_id, "step": top.seq, "agent": top.agent}) + "\n")
    report = json.loads(ok("eval-attribution", str(by_seq), "--store", db, "--json").stdout)
    assert report["ranking"] == {"runs": 1, "step_top1": 1.0, "step_top3": 1.0,
                                 "agent_top1": 1.0}


def test_eval_attribution_shows_progress_for_many_runs(folder: Path, tmp_path: Path) -> None:
    db, labels = str(tmp_path / "w.db"), tmp_path / "labels.jsonl"
    ok("import", str(folder), "--format", "who-and-when", "--store", db, "--labels-out",
       str(labels))
    result = ok("eval-attribution", str(labels), "--store", db, "--limit", "60")
    assert "explaining labelled runs" in result.stderr
    assert result.stdout.startswith("60 labelled runs, ")
    quiet = ok("eval-attribution", str(labels), "--store", db, "--limit", "60", "--json")
    assert quiet.stderr == "" and json.loads(quiet.stdout)["ranking"]["runs"] == 60


def test_a_bad_labels_line_is_one_line_naming_it(scored: tuple[str, Path],
                                                 tmp_path: Path) -> None:
    db, labels = scored
    bad = tmp_path / "bad.jsonl"
    bad.write_text(labels.read_text().splitlines()[0] + "\n\n" + '{"run_id": "x"}\n')
    line = one_line_error(CliRunner().invoke(cli, ["eval-attribution", str(bad), "--store", db]))
    assert f"{bad}:3: not a label" in line and "run_id, step" in line
    bad.write_text("not json\n")
    line = one_line_error(CliRunner().invoke(cli, ["eval-attribution", str(bad), "--store", db]))
    assert f"{bad}:1: not a label" in line


def test_an_unknown_run_is_named_and_nothing_is_scored(scored: tuple[str, Path],
                                                       tmp_path: Path) -> None:
    db, labels = scored
    mixed = tmp_path / "mixed.jsonl"
    known = labels.read_text().splitlines()[0]
    mixed.write_text(known + "\n" + json.dumps(
        {"run_id": "0123456789abcdef0123456789abcdef", "step": "history[1]", "agent": "A"})
        + "\n" + json.dumps({"run_id": "feedfeedfeed", "step": 2, "agent": None}) + "\n")
    line = one_line_error(CliRunner().invoke(
        cli, ["eval-attribution", str(mixed), "--store", db, "--json"]))
    assert "'0123456789abcdef0123456789abcdef' and 1 more, not in this store" in line
    assert "import the runs first" in line and str(mixed) in line


def test_eval_attribution_errors_without_runs_or_store(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    db = tmp_path / "missing.db"
    line = one_line_error(CliRunner().invoke(
        cli, ["eval-attribution", str(empty), "--store", str(db)]))
    assert "holds no labels" in line
    labels = tmp_path / "one.jsonl"
    labels.write_text(json.dumps({"run_id": "abcdabcd", "step": 1, "agent": None}) + "\n")
    line = one_line_error(CliRunner().invoke(
        cli, ["eval-attribution", str(labels), "--store", str(db)]))
    assert "no store at" in line
    assert not db.exists()  # a read-only command creates nothing
