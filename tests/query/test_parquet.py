"""Parquet export: one file per table with the frames' columns, frames read back equal to
the store's, a selection of runs, all-or-nothing writes, and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from agentlab.cli import cli
from agentlab.query import TABLES, export_parquet, read_parquet
from agentlab.store import SqlStore

from .test_frames import recorded, records

__all__ = ["recorded"]  # the fixture, shared with the frames' tests

STORE_FRAMES = {name: fn for name, (fn, _) in TABLES.items()}


def test_each_table_is_written_and_reads_back_as_the_stores_frame(
        store: SqlStore, recorded: dict[str, str], tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    rows = export_parquet(store, tmp_path / "out", progress=lambda t, n: seen.append((t, n)))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "approvals.parquet", "checkpoints.parquet", "runs.parquet", "steps.parquet"]
    assert seen == list(rows.items()) and rows["runs"] == 4 and rows["approvals"] == 3
    for name, fn in STORE_FRAMES.items():
        types = TABLES[name][1]
        # any Parquet reader sees the declared columns and types ...
        raw = pl.read_parquet(tmp_path / "out" / f"{name}.parquet")
        assert raw.columns == list(types)
        assert raw.schema == fn(store, engine="polars").schema, name
        # ... and the frames built from the file are the store's, in both engines
        for engine in ("polars", "pandas"):
            from_file: Any = read_parquet(tmp_path / "out", name, engine=engine)  # type: ignore[arg-type]
            from_store: Any = fn(store, engine=engine)
            assert records(from_file) == records(from_store), (name, engine)
            if engine == "pandas":
                assert dict(from_file.dtypes) == dict(from_store.dtypes), name


def test_named_runs_only_and_a_new_export_replaces_the_old(
        store: SqlStore, recorded: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_parquet(store, out)
    rows = export_parquet(store, out, [recorded["billing"]])
    assert rows["runs"] == 1 and rows["approvals"] == 0
    steps = read_parquet(out, "steps", engine="polars")
    assert set(steps["run_id"]) == {recorded["billing"]}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_failed_export_leaves_the_previous_one_whole(
        store: SqlStore, recorded: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    export_parquet(store, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def fail_on_third(self: pl.DataFrame, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        export_parquet(store, out, [recorded["billing"]])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bad_targets_and_tables_say_what_to_do(store: SqlStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="give a folder"):
        export_parquet(store, tmp_path / "file")
    with pytest.raises(ValueError, match="choose one of"):
        read_parquet(tmp_path, "events")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="agentlab export --format parquet"):
        read_parquet(tmp_path, "runs")
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "runs.parquet")
    with pytest.raises(ValueError, match="not those of the runs table"):
        read_parquet(tmp_path, "runs")


@pytest.mark.sqlite_only
def test_the_cli_exports_parquet(store: SqlStore, recorded: dict[str, str],
                                 tmp_path: Path) -> None:
    url = store.url
    runner = CliRunner()
    done = runner.invoke(cli, ["export", "--format", "parquet", "-o", str(tmp_path / "pq"),
                               "--store", url])
    assert done.exit_code == 0, done.output
    assert "exported 4 run(s) as Parquet" in done.output and "steps:" in done.output
    assert pl.read_parquet(tmp_path / "pq" / "runs.parquet").height == 4
    no_folder = runner.invoke(cli, ["export", "--format", "parquet", "--store", url])
    assert no_folder.exit_code != 0 and "-o FOLDER" in no_folder.output
    no_runs = runner.invoke(cli, ["export", "--store", url])
    assert no_runs.exit_code != 0 and "name the runs to export" in no_runs.output
