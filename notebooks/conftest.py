"""The notebooks run (nbval) against the sample store, as they do under ``agentlab lab``.

Each notebook's kernel starts with ``AGENTLAB_STORE`` naming a sample store built once per
test session in a temporary folder, so ``al.open_store()`` and ``%agentlab`` in a notebook
open it exactly as they would in the workbench. The variable is set only while a notebook's
first cell is set up (when its kernel starts) and restored afterwards: the rest of the test
suite never sees it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_built: list[Path] = []


def sample_store() -> Path:
    """The session's sample store (built on first use)."""
    if not _built:
        import agentlab as al
        from agentlab.demo import build_sample_store

        path = Path(tempfile.mkdtemp(prefix="agentlab-notebooks-")) / "agentlab.db"
        store = al.open_store(path)
        try:
            build_sample_store(store)  # what `agentlab demo` builds: the same runs
        finally:
            store.close()
        _built.append(path)
    return _built[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.path.suffix != ".ipynb":
        yield
        return
    before = os.environ.get("AGENTLAB_STORE")
    os.environ["AGENTLAB_STORE"] = str(sample_store())
    try:
        yield
    finally:
        if before is None:
            del os.environ["AGENTLAB_STORE"]
        else:
            os.environ["AGENTLAB_STORE"] = before
