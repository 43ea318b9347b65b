"""``agentlab metrics`` through click's runner: the table, --json, filters and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import agentlab as al
from agentlab.analysis import METRICS
from agentlab.cli import cli


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Three runs: triage v1 succeeded and failed, billing v2 succeeded, on one day."""
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    path = str(tmp_path / "m.db")
    store = al.open_store(path)
    for workflow, version, ok in (("triage", "1", True), ("triage", "1", False),
                                  ("billing", "2", True)):
        with al.record_run(workflow, agent="bot", agent_version=version, store=store) as run:
            run.llm_call("m-1", cost_usd=0.5)
            run.outcome(success=ok)
    store.close()
    return path


def ok(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_table_by_workflow(db: str) -> None:
    out = ok("metrics", "--store", db).output
    lines = out.splitlines()
    assert lines[0].split() == ["WORKFLOW", "RUNS", "DONE", "OVERRIDE", "RETRY", "INCIDENT",
                                "$/SUCCESS", "P50", "S", "P95", "S", "MTTE", "S"]
    assert lines[1].split()[:4] == ["billing", "1", "100.0%", "-"]
    assert lines[2].split()[:3] == ["triage", "2", "50.0%"]
    assert "$1.0000" in lines[2]  # two runs' cost over one success
    assert "2 group(s)" in out


def test_json_has_every_metric_of_every_group(db: str) -> None:
    rows = json.loads(ok("metrics", "--store", db, "--by", "workflow,agent_version",
                         "--bucket", "day", "--json").output)
    assert [(r["workflow"], r["agent_version"], r["runs"]) for r in rows] == \
        [("billing", "2", 1), ("triage", "1", 2)]
    assert list(rows[0]) == ["workflow", "agent_version", "bucket", *METRICS]
    assert rows[1]["completion_rate"] == 0.5 and rows[1]["mtte_s"] is None
    assert rows[0]["bucket"].endswith("T00:00:00+00:00")


@pytest.mark.parametrize("engine", ["pandas", "polars"])
def test_an_engine_gives_the_same_json(db: str, engine: str) -> None:
    args = ["metrics", "--store", db, "--by", "agent,phase", "--bucket", "hour", "--json"]
    assert json.loads(ok(*args, "--engine", engine).output) == json.loads(ok(*args).output)


def test_filters_and_one_row_for_everything(db: str) -> None:
    rows = json.loads(ok("metrics", "--store", db, "--by", "", "--workflow", "triage",
                         "--since", "2000-01-01", "--json").output)
    assert [(r["runs"], r["succeeded"]) for r in rows] == [(2, 1)]
    assert "workflow" not in rows[0]
    assert json.loads(ok("metrics", "--store", db, "--until", "2000-01-01", "--json").output) \
        == []
    assert "no runs match" in ok("metrics", "--store", db, "--agent-version", "9").output


@pytest.mark.parametrize(("args", "message"), [
    (["--by", "colour"], "cannot group by colour"),
    (["--since", "yesterday"], "not an ISO 8601"),
    (["--since", "2030-01-02", "--until", "2030-01-01"], "not after since"),
])
def test_bad_arguments_fail_with_one_line(db: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["metrics", "--store", db, *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_store_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["metrics", "--store", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not (tmp_path / "none.db").exists()


def test_help_explains_the_metrics() -> None:
    out = ok("metrics", "--help").output
    for word in ("--by", "--bucket", "--since", "--engine", "override", "MTTE"):
        assert word in out


def test_the_default_needs_no_frame_library(db: str) -> None:
    code = ("import sys\nfrom agentlab.cli import cli\n"
            f"try:\n    cli(['metrics', '--store', {db!r}, '--json'])\n"
            "except SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
            "assert not {'pandas', 'polars'} & set(sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(rows) == 2
