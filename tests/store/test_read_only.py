"""A store this user may read but not write (a shared file, a read-only folder): every read
works, and anything that would write is refused with a typed error that says why, before
the file is touched.

The checks run in a child process as a user without write access. When the tests run as
root (who may write anything), the child first does the same work on a writable copy, so
that every module it needs is loaded, then gives up root for ``nobody`` and does it on the
store under test (the checkout itself may be unreadable to ``nobody``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentlab as al

CHILD = """
import contextlib, io, os, shutil, sys, tempfile
import agentlab as al
from agentlab.analysis import explain
from agentlab.errors import StoreReadOnlyError

def work(path, run_id, check):
    try:
        store = al.open_store(path, create=False)
    except StoreReadOnlyError as exc:
        print("open refused:", exc)
        return
    if check == "reads":
        print("runs:", [r.run_id for r in store.runs()])
        print("events:", len(store.events(run_id)))
        print("culprit:", explain(store, run_id).culprit is not None)
        print("verified:", all(r.ok for r in store.verify(run_id)))
    try:
        al.issue_grant(store, "g", principal="bot", owner="team", workflow="wf",
                       scopes=["s:*"], issued_by="ana")
    except StoreReadOnlyError as exc:
        print("write refused:", exc)
    store.close()

path, run_id, check = sys.argv[1], sys.argv[2], sys.argv[3]
if os.geteuid() == 0:
    # Load everything as root on a writable copy, then give up root for good.
    scratch = tempfile.mkdtemp()
    copy = os.path.join(scratch, "copy.db")
    shutil.copy(path, copy)
    with contextlib.redirect_stdout(io.StringIO()):
        work(copy, run_id, check)
    shutil.rmtree(scratch)
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    assert os.geteuid() == 65534
work(path, run_id, check)
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder anyone may enter (pytest's own temporary folders are private to their
    owner), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="agentlab-ro-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def _as_reader(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _store_with_a_failed_run(folder: Path) -> tuple[Path, str]:
    path = folder / "agentlab.db"
    store = al.open_store(path)

    @al.tool
    def lookup(account_id: str) -> dict[str, str]:
        return {"account_id": account_id, "plan": "standard"}

    with al.record_run("wf", agent="bot", store=store) as run:
        lookup("A-1")
        run.outcome(success=False)
    store.close()
    return path, run.run_id


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_file_is_read_and_never_written(shared: Path) -> None:
    path, run_id = _store_with_a_failed_run(shared)
    path.chmod(0o444)
    before = _digest(path)
    out = _as_reader(str(path), run_id, "reads")
    assert f"runs: ['{run_id}']" in out, out
    assert "events: 3" in out and "culprit: True" in out and "verified: True" in out, out
    assert "write refused: the store" in out and "can be read but not written" in out, out
    assert f"the file {path} is read-only for this user" in out, out
    assert _digest(path) == before
    assert sorted(p.name for p in shared.iterdir()) == ["agentlab.db"]


def test_a_store_in_a_read_only_folder_is_read_only_too(shared: Path) -> None:
    """SQLite keeps -wal and -shm files beside the store: a folder it cannot make them in
    makes a writable file read-only."""
    path, run_id = _store_with_a_failed_run(shared)
    path.chmod(0o666)
    shared.chmod(0o555)
    out = _as_reader(str(path), run_id, "reads")
    assert "verified: True" in out, out
    assert f"its folder {shared} is read-only for this user" in out, out


def test_a_read_only_store_that_needs_an_upgrade_says_so(shared: Path) -> None:
    path, run_id = _store_with_a_failed_run(shared)
    with sqlite3.connect(path) as conn:  # as if written by the agentlab before the last one
        last = conn.execute("SELECT max(name) FROM agentlab_migrations").fetchone()[0]
        conn.execute("DELETE FROM agentlab_migrations WHERE name = ?", (last,))
    path.chmod(0o444)
    out = _as_reader(str(path), run_id, "reads")
    assert out.startswith("open refused:") and last in out and "work on a copy" in out, out
