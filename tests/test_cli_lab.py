"""``agentlab lab``: a real JupyterLab on 127.0.0.1 over a notebooks folder, its kernels told
the store, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.cli import cli

pytest.importorskip("jupyterlab", reason="the notebook extra is not installed")

AGENTLAB = [sys.executable, "-c", "from agentlab.cli import main; main()"]


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_lab_serves_the_notebooks_with_the_store_configured(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "team.db")
    store.close()
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "first.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, '
                                           '"nbformat_minor": 5}')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    lab = subprocess.Popen([*AGENTLAB, "lab", "--store", str(tmp_path / "team.db"),
                            "--notebooks", str(notebooks), "--port", "0"],
                           cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "AGENTLAB_STORE": ""},
                           # as `agentlab lab &` in a script: SIGINT inherited ignored
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert lab.stdout is not None
        first = lab.stdout.readline()
        m = re.fullmatch(r"JupyterLab: (http://127\.0\.0\.1:\d+)/lab\?token=(\S+)\n", first)
        assert m, (first, lab.stderr.read() if lab.poll() is not None else "")
        base, token = m.groups()
        assert _get(f"{base}/api/status", token) == 200
        assert _get(f"{base}/api/status") == 403  # the token is needed
        assert _get(f"{base}/api/contents/first.ipynb", token) == 200  # served from DIR
        (server,) = psutil.Process(lab.pid).children()
        assert server.environ()["AGENTLAB_STORE"] == str((tmp_path / "team.db").resolve())
        lab.send_signal(signal.SIGINT)
        assert lab.wait(timeout=30) == 0
        assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    finally:
        if lab.poll() is None:
            lab.kill()


def test_lab_needs_an_existing_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    result = CliRunner().invoke(cli, ["lab", "--store", str(tmp_path / "missing.db")])
    assert result.exit_code == 1 and "missing.db" in result.output
    assert "--help" not in result.output
    result = CliRunner().invoke(cli, ["lab", "--help"])
    assert result.exit_code == 0 and "AGENTLAB_STORE" in result.output
