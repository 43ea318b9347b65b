"""Closing a SQLite store closes every connection it opened, whichever thread opened it: no
file stays open and the WAL is checkpointed away, so the .db file alone holds the runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

import agentlab as al
from agentlab.demo import run_demo


def _open_files(name: str) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if name in target:
                found.append(target)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_closing_a_store_closes_every_connection(tmp_path: Path) -> None:
    db = tmp_path / "closing.db"
    store = al.open_store(db)
    run_demo(store)  # governed calls open per-thread quick-read connections
    worker = threading.Thread(target=lambda: run_demo(store))
    worker.start()
    worker.join()
    assert _open_files("closing.db")
    store.close()
    assert _open_files("closing.db") == []
    assert not Path(f"{db}-wal").exists()
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)  # the file alone is the whole store
    again = al.open_store(copy)
    assert len(again.runs()) == 6
    again.close()
