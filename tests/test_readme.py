"""The README's code runs, in order, as a newcomer would paste it (the same runner as docs/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from docblocks import REPO, BlockFailed, blocks, run_blocks

README = REPO / "README.md"


def test_the_readme_has_python_blocks() -> None:
    assert len([b for b in blocks(README) if b.lang == "python" and b.skip is None]) >= 2


def test_every_code_block_of_the_readme_runs(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    monkeypatch.setenv("JIRA_TOKEN", "readme-token-123456")
    monkeypatch.setenv("AGENTLAB_KEY", "readme-signing-key-0123456789abcdef")
    failure = None
    try:
        run_blocks(README, tmp_path, {"__name__": "readme"})
    except BlockFailed as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    import agentlab as al

    store = al.open_store(tmp_path / "quickstart.db", create=False)
    try:
        runs = store.runs()
        assert runs and all(r.status == "succeeded" for r in runs)
        calls = [e for r in runs for e in store.events(r.run_id, kinds=["tool_call"])]
        assert {c.tool for c in calls} >= {"lookup_account", "create_issue"}
        assert all("readme-token" not in e.model_dump_json() for r in runs
                   for e in store.events(r.run_id))
    finally:
        store.close()
