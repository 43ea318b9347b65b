"""Every Python block of the README runs, in order, as a newcomer would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCK.findall(README.read_text())) >= 2


def test_every_python_block_of_the_readme_runs(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    monkeypatch.setenv("JIRA_TOKEN", "readme-token-123456")
    monkeypatch.setenv("AGENTLAB_KEY", "readme-signing-key-0123456789abcdef")
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(BLOCK.findall(README.read_text()), 1):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README python block {i} fails: {type(exc).__name__}: {exc}\n{block}")
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
