"""One JupyterLab server and one headless Debian Chromium, shared by the browser tests.

The server runs on 127.0.0.1 with a token and fresh config, runtime and IPython folders;
the browser may reach nothing but that server (every other request is aborted), so a
passing test also proves the notebook UI works offline. Both are stopped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_NO_NEWS = {"fetchNews": "false", "checkForUpdates": False}


@dataclass
class Lab:
    """A running JupyterLab, the browser context driving it, and the files they share."""

    base: str
    token: str
    root: Path
    store_path: Path
    key_file: Path
    log: Path
    context: Any  # playwright BrowserContext
    blocked: list[str] = field(default_factory=list)

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def write_notebook(self, name: str, cells: list[str]) -> None:
        """A notebook of these code cells in the server's folder."""
        import nbformat

        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in cells],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"}})
        nbformat.write(nb, self.root / name)

    def open_notebook(self, name: str) -> Any:
        """A new page on the notebook, once its kernel is idle (a playwright Page)."""
        page = self.context.new_page()
        page.goto(self.url(name))
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
        return page

    def shutdown_kernel(self, notebook: str) -> None:
        for session in self.api("GET", "/api/sessions"):
            if session["path"] == notebook:
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        req = urllib.request.Request(f"{base}/api/status",
                                     headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"JupyterLab not ready after 60 s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from playwright.sync_api import Route, sync_playwright

    tmp = tmp_path_factory.mktemp("lab")
    root, config, runtime, ipython, profile = (tmp / d for d in
                                               ("root", "config", "runtime", "ipython", "chrome"))
    for d in (root, config, runtime, ipython, profile):
        d.mkdir()
    settings = config / "lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(_NO_NEWS))
    # Every cell in the page, not only those in view: a test reads outputs anywhere.
    notebook_settings = config / "lab/user-settings/@jupyterlab/notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))

    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    store_path, key_file, log = tmp / "store.db", tmp / "key", tmp / "jupyterlab.log"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(runtime),
           "IPYTHONDIR": str(ipython), "AGENTLAB_TEST_STORE": str(store_path),
           "AGENTLAB_KEY_FILE": str(key_file), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.pop("AGENTLAB_KEY", None)  # the key file is what the kernel and the test share
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
             f"--port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    pw = None
    try:
        _wait_ready(server, base, token, log)
        pw = sync_playwright().start()
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        found = Lab(base=base, token=token, root=root, store_path=store_path,
                    key_file=key_file, log=log, context=context)

        def offline(route: Route) -> None:
            if route.request.url.startswith(base + "/"):
                route.continue_()
            else:
                found.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        try:
            yield found
        finally:
            context.close()
    finally:
        if pw is not None:
            pw.stop()
        _stop(server)


def run_cell(page: Any, index: int = 0, *, finished: bool = False) -> None:
    """Run the notebook's code cell ``index`` (Shift+Enter in its editor) and wait until it
    has started (its prompt shows ``[*]`` or a number) or, with ``finished``, has run (a
    number); retried, as a first click may only focus the page."""
    import re

    from playwright.sync_api import expect

    panel = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"
    prompt = page.locator(f"{panel} .jp-InputArea-prompt").nth(index)
    shown = re.compile(r"\[\d+\]" if finished else r"\[(\*|\d+)\]")
    for attempt in range(3):
        page.locator(f"{panel} .jp-InputArea-editor").nth(index).click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_have_text(shown, timeout=30_000 if finished else 5_000)
            return
        except AssertionError:
            if attempt == 2:
                raise
