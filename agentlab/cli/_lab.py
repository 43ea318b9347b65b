"""``agentlab lab``: JupyterLab on 127.0.0.1 over the notebooks, with the store configured.

The server runs as a child process with ``AGENTLAB_STORE`` set to the store's absolute
location, so every kernel it starts (whatever folder its notebook is in) opens the same store
through :func:`agentlab.open_store`. The command waits until the server answers, prints the
address with its token, and stops the server on Ctrl-C (or when the server stops).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from agentlab.cli import cli
from agentlab.cli._common import fail, open_cli_store, store_option, wrap_errors

__all__: list[str] = []  # the command registers itself on ``cli``

_READY_WITHIN_S = 90.0


def _free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there on 127.0.0.1, else a free port."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    fail("no free TCP port on 127.0.0.1")


def _store_url(url: str) -> str:
    """The store as an absolute location a kernel in any folder resolves the same way."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).resolve())
    return url


def _ready(base: str, token: str) -> bool:
    request = urllib.request.Request(f"{base}/api/status",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (and SIGINT, even if inherited ignored) as Ctrl-C


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@cli.command()
@store_option
@click.option("--notebooks", "root", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="The folder JupyterLab opens (default: ./notebooks if it exists, else the "
              "current folder).")
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True,
              help="Port on 127.0.0.1; taken (or 0), a free one is chosen.")
@click.option("--token", default=None,
              help="The token in the address (default: a new random one).")
@click.option("--open-browser", is_flag=True,
              help="Also open the address in this machine's web browser.")
@wrap_errors
def lab(store_url: str | None, root: Path | None, port: int, token: str | None,
        open_browser: bool) -> None:
    """Start JupyterLab on 127.0.0.1 in notebooks/ with the store configured.

    The store must exist (build the sample one with `agentlab demo`). Its location is
    given to every notebook's kernel as AGENTLAB_STORE, so `al.open_store()` and
    `%agentlab` use it. Prints the address with its token; Ctrl-C stops the server.
    """
    if importlib.util.find_spec("jupyterlab") is None:
        fail("JupyterLab is not installed in this environment: pip install "
             "'agentlab[notebook]' (make demo installs it)")
    with open_cli_store(store_url, create=False) as store:
        location = _store_url(store.url)
    folder = (root if root is not None
              else Path("notebooks") if Path("notebooks").is_dir() else Path.cwd()).resolve()
    if not folder.is_dir():
        fail(f"--notebooks {root}: no such folder")
    port = _free_port(port)
    token = token or secrets.token_urlsafe(24)
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="agentlab-lab-")) / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "AGENTLAB_STORE": location}
    # Both stop the server, also when this command was started in the background of a
    # script (which leaves SIGINT ignored).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=folder, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _READY_WITHIN_S
        while not _ready(base, token):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                fail("JupyterLab did not start: " + (" | ".join(tail) or f"see {log}"))
            time.sleep(0.25)
        url = f"{base}/lab?token={token}"
        click.echo(f"JupyterLab: {url}")
        click.echo(f"  store:     {location} (AGENTLAB_STORE in every kernel)")
        click.echo(f"  notebooks: {folder}")
        click.echo(f"  log:       {log}")
        click.echo("  stop with Ctrl-C")
        if open_browser:
            webbrowser.open(url)
        server.wait()
    except KeyboardInterrupt:
        click.echo("stopping JupyterLab")
    finally:
        _stop(server)
