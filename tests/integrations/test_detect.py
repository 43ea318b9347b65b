"""Telling the format of a file to import from its content, per format and for a file of
none of them, through the API and `agentlab import` without --format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.cli import cli
from agentlab.errors import ImportFormatError
from agentlab.integrations import FORMATS, detect_format
from agentlab.integrations._files import read_source


def _portable(tmp_path: Path) -> Path:
    store = al.open_store(tmp_path / "src.db")
    with al.record_run("w", agent="a", store=store) as run:
        run.outcome(success=True)
    out = tmp_path / "runs.jsonl"
    with out.open("wb") as fh:
        store.export_runs([run.run_id], fh)
    store.close()
    return out


def test_each_format_is_told_by_its_content(tmp_path: Path, third_party: Path) -> None:
    swe = third_party / "swe-agent"
    plain_traj = tmp_path / "renamed.json"  # a .traj content under another name
    plain_traj.write_bytes(read_source(next(swe.glob("*.traj.gz"))))
    damaged = tmp_path / "damaged.txt"  # a portable line type: its import names the line
    damaged.write_text('{"type": "event"}\n')
    found = {
        "agentlab": detect_format(_portable(tmp_path)),
        "agentlab damaged": detect_format(damaged),
        "tau-bench": detect_format(third_party / "tau-bench" / "gpt-4o-airline.subset.json.gz"),
        "tau-bench retail": detect_format(
            third_party / "agentrx-tau-retail" / "tau_dataset_failed.json.gz"),
        "swe-agent": detect_format(next(swe.glob("*.traj.gz"))),
        "swe-agent content": detect_format(plain_traj),
        "swe-agent folder": detect_format(swe),
        "who-and-when": detect_format(third_party / "who-and-when/algorithm-generated/4.json.gz"),
        "who-and-when folder": detect_format(third_party / "who-and-when/algorithm-generated"),
    }
    assert found == {"agentlab": "agentlab", "agentlab damaged": "agentlab",
                     "tau-bench": "tau-bench",
                     "tau-bench retail": "tau-bench", "swe-agent": "swe-agent",
                     "swe-agent content": "swe-agent", "swe-agent folder": "swe-agent",
                     "who-and-when": "who-and-when", "who-and-when folder": "who-and-when"}


@pytest.mark.parametrize("content", [
    b'{"results": [1, 2, 3]}', b"[]", b"[1, 2]", b"name,score\nx,1\n", b"  ", b"{not json",
])
def test_a_file_of_no_format_is_a_typed_error_listing_them(tmp_path: Path, content: bytes) -> None:
    unknown = tmp_path / "mystery.json.gz"
    unknown.write_bytes(gzip.compress(content))
    with pytest.raises(ImportFormatError, match="cannot tell the format") as caught:
        detect_format(unknown)
    assert all(name in str(caught.value) for name in FORMATS)
    assert caught.value.file == str(unknown)
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ImportFormatError, match="cannot tell the format"):
        detect_format(folder)


def test_import_without_format_reads_each_kind(tmp_path: Path, third_party: Path) -> None:
    db = str(tmp_path / "all.db")
    counts = {}
    for path, fmt in [(_portable(tmp_path), "agentlab"),
                      (third_party / "tau-bench" / "gpt-4o-airline.subset.json.gz", "tau-bench"),
                      (third_party / "swe-agent", "swe-agent"),
                      (third_party / "who-and-when/algorithm-generated/4.json.gz",
                       "who-and-when")]:
        out = CliRunner().invoke(cli, ["import", str(path), "--store", db])
        assert out.exit_code == 0, out.output
        assert f"as --format {fmt}" in out.stderr
        counts[fmt] = sum(line.startswith("imported") for line in out.stdout.splitlines())
    assert counts == {"agentlab": 1, "tau-bench": 48, "swe-agent": 2, "who-and-when": 1}
    again = CliRunner().invoke(cli, ["import", str(third_party / "swe-agent"), "--store", db,
                                     "--json"])
    assert json.loads(again.stdout)["imported"] == []
    unknown = tmp_path / "x.json"
    unknown.write_text('{"a": 1}')
    out = CliRunner().invoke(cli, ["import", str(unknown), "--store", db])
    assert out.exit_code == 1
    assert "cannot tell the format" in out.stderr and "--format" in out.stderr


def test_a_long_import_shows_progress_unless_json(tmp_path: Path, third_party: Path) -> None:
    src = third_party / "tau-bench" / "gpt-4o-airline.json.gz"  # 200 runs
    out = CliRunner().invoke(cli, ["import", str(src), "--store", str(tmp_path / "p.db")])
    assert out.exit_code == 0 and "importing tau-bench runs" in out.stderr
    quiet = CliRunner().invoke(cli, ["import", str(src), "--store", str(tmp_path / "q.db"),
                                     "--json"])
    assert quiet.exit_code == 0 and "importing" not in quiet.stderr
    assert len(json.loads(quiet.stdout)["imported"]) == 200


def test_several_paths_import_in_turn_and_a_bad_one_does_not_stop_the_rest(
        tmp_path: Path, third_party: Path) -> None:
    # What a shell glob over a vendored folder gives: two runs, a licence and a notes file.
    swe = third_party / "swe-agent"
    paths = sorted(str(p) for p in swe.iterdir())
    assert len(paths) == 4
    db = str(tmp_path / "glob.db")
    out = CliRunner().invoke(cli, ["import", *paths, "--store", db, "--json"])
    assert out.exit_code == 1
    result = json.loads(out.stdout)
    assert len(result["imported"]) == 2 and result["skipped"] == []
    assert sorted(Path(f["path"]).name for f in result["failed"]) == ["ATTRIBUTION.md", "LICENSE"]
    assert all("cannot tell the format" in f["error"] for f in result["failed"])
    assert "2 of 4 PATHs could not be imported" in out.stderr
    again = CliRunner().invoke(cli, ["import", *paths[2:], "--store", db, "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {"imported": [], "skipped": result["imported"],
                                        "failed": []}
    # Only bad paths: nothing is imported and no store is made.
    none = CliRunner().invoke(cli, ["import", *paths[:2], "--store", str(tmp_path / "n.db")])
    assert none.exit_code == 1 and not (tmp_path / "n.db").exists()
    # --labels-out names one Who&When PATH's labels.
    labels = CliRunner().invoke(cli, ["import", *paths[2:], "--store", db,
                                      "--labels-out", str(tmp_path / "l.jsonl")])
    assert labels.exit_code == 1 and "one Who&When PATH" in labels.stderr


def test_a_folder_of_folders_is_read_below(tmp_path: Path, third_party: Path) -> None:
    # The Who&When data set keeps its runs one folder down (algorithm-generated/...).
    top = tmp_path / "who-and-when"
    for half in ("algorithm-generated", "hand-crafted"):
        (top / half).mkdir(parents=True)
    src = third_party / "who-and-when" / "algorithm-generated"
    for name in ("4.json.gz", "10.json.gz"):
        (top / "algorithm-generated" / name).write_bytes((src / name).read_bytes())
    (top / "hand-crafted" / "2.json.gz").write_bytes((src / "2.json.gz").read_bytes())
    assert detect_format(top) == "who-and-when"
    out = CliRunner().invoke(cli, ["import", str(top), "--store", str(tmp_path / "w.db"),
                                   "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["imported"]) == 3
