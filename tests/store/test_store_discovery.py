"""Which store a process opens when nothing names one: the nearest agentlab.db upwards,
a project's relative setting resolved against its pyproject.toml, and a new empty store
announced rather than silent."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import agentlab as al
from agentlab.errors import NewStoreWarning


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def _record_into(path: Path) -> str:
    store = al.open_store(path)
    with al.record_run("wf", agent="a", store=store) as run:
        run.outcome(success=True)
    store.close()
    return run.run_id


def test_a_notebook_in_a_subfolder_finds_the_projects_store(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _record_into(project / "agentlab.db")
    monkeypatch.chdir(project / "notebooks")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NewStoreWarning)  # an existing store: no warning
        store = al.open_store()
    try:
        assert [r.run_id for r in store.runs()] == [run_id]
    finally:
        store.close()
    assert not (project / "notebooks" / "agentlab.db").exists()


def test_a_relative_store_setting_is_relative_to_its_pyproject(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pyproject.toml").write_text('[tool.agentlab]\nstore = "data/runs.db"\n')
    (project / "data").mkdir()
    run_id = _record_into(project / "data" / "runs.db")
    monkeypatch.chdir(project / "notebooks")
    store = al.open_store(create=False)
    try:
        assert [r.run_id for r in store.runs()] == [run_id]
    finally:
        store.close()


def test_a_new_empty_store_is_announced(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks")
    with pytest.warns(NewStoreWarning, match="creating a new empty store at .*agentlab.db"):
        store = al.open_store()
    store.close()
    assert (project / "notebooks" / "agentlab.db").exists()
    with warnings.catch_warnings():  # once it exists, opening it again says nothing
        warnings.simplefilter("error", NewStoreWarning)
        al.open_store().close()


def test_a_setting_that_names_a_missing_file_says_so(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("AGENTLAB_STORE", str(project / "typo.db"))
    with pytest.warns(NewStoreWarning, match=r"AGENTLAB_STORE names .*typo\.db, which does "
                      "not exist; creating a new empty store there"):
        al.open_store().close()
    monkeypatch.delenv("AGENTLAB_STORE")
    (project / "pyproject.toml").write_text('[tool.agentlab]\nstore = "data/team.db"\n')
    (project / "data").mkdir()
    with pytest.warns(NewStoreWarning, match=r"\[tool.agentlab\] store in .*pyproject.toml "
                      r"names .*team\.db, which does not exist"):
        al.open_store().close()


def test_the_cli_says_it_in_one_line(project: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from agentlab.cli import main; main()", "grant", "g",
         "--principal", "p", "--owner", "o", "--workflow", "w", "--scope", "a:b"],
        cwd=project, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "AGENTLAB_STORE"})
    (line,) = done.stderr.splitlines()
    assert line.startswith("agentlab: warning: no store found in ") and "NewStoreWarning" not in line
