"""Run the code blocks of a markdown file as a reader would: in order, in one fresh folder.

- ```python blocks run in order in one namespace per file (later blocks use what earlier
  ones defined), as if pasted into one interpreter.
- ```bash (or sh, shell) blocks run in bash with ``-e -o pipefail`` and the virtualenv's
  ``agentlab`` on PATH; variables a block sets are seen by the later blocks, as in one
  terminal. ```console blocks run their ``$ `` lines (the other lines are output).
- ```toml blocks must parse.
- ```text and untagged blocks are output or pictures, not code.

A block that cannot run here (it waits for a human, a second terminal, a server) carries an
HTML comment directly above it, ``<!-- docs-test: skip (the reason) -->``; a marker without a
reason, or one that is not directly above a block, is an error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "BlockFailed", "blocks", "run_blocks"]

REPO = Path(__file__).resolve().parents[1]
SHELL = ("bash", "sh", "shell")
CODE = ("python", "console", "toml", *SHELL)

_FENCE = re.compile(r"^```([\w-]*)[^\n]*$")
_MARKER = re.compile(r"^<!--\s*docs-test:(.*?)-->", re.DOTALL | re.MULTILINE)
_SKIP = re.compile(r"\s*skip\s*\((.+)\)\s*", re.DOTALL)
_CARRIED = ("PWD", "OLDPWD", "SHLVL", "_")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: where it starts, its language, its text and why it is skipped."""

    path: Path
    line: int
    lang: str
    text: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{_show(self.path)}:{self.line} ({self.lang or 'untagged'} block)"

    @property
    def is_code(self) -> bool:
        return self.lang in CODE


class BlockFailed(AssertionError):
    """A block raised, exited non-zero, or is marked wrongly."""


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of ``path`` in order. Raises BlockFailed on a marker with no reason
    or one that stands anywhere but directly above a block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise BlockFailed(f"{_show(path)}:{start + 1}: the block never closes")
        i += 1
        found.append(Block(path, start + 1, lang, "\n".join(body) + "\n",
                           _skip_reason(path, lines, start)))
    text = path.read_text(encoding="utf-8")
    markers = len(_MARKER.findall(text))
    placed = sum(b.skip is not None for b in found)
    if markers != placed:
        raise BlockFailed(f"{_show(path)}: {markers - placed} docs-test marker(s) "
                          "are not directly above a code block")
    return found


def _show(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _skip_reason(path: Path, lines: list[str], fence: int) -> str | None:
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0 or not lines[above].rstrip().endswith("-->"):
        return None
    first = above
    while first > 0 and "<!--" not in lines[first]:
        first -= 1
    m = _MARKER.search("\n".join(lines[first:above + 1]))
    if m is None:
        return None
    skip = _SKIP.fullmatch(m.group(1))
    if skip is None or not skip.group(1).strip():
        raise BlockFailed(f"{_show(path)}:{fence + 1}: write the marker as "
                          "<!-- docs-test: skip (why this block cannot run in a test) -->")
    return " ".join(skip.group(1).split())


def run_blocks(path: Path, folder: Path, namespace: dict[str, object] | None = None
               ) -> list[Block]:
    """Run every code block of ``path`` in order with ``folder`` as the working folder (the
    caller makes it the process's working folder too); the blocks that ran. Raises
    BlockFailed naming the first block that fails."""
    ns: dict[str, object] = {"__name__": "docs"} if namespace is None else namespace
    shell_env = dict(os.environ)
    shell_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{shell_env.get('PATH', '')}"
    ran: list[Block] = []
    for block in blocks(path):
        if not block.is_code or block.skip is not None:
            continue
        if block.lang == "python":
            _run_python(block, ns)
        elif block.lang == "toml":
            try:
                tomllib.loads(block.text)
            except tomllib.TOMLDecodeError as exc:
                raise BlockFailed(f"{block.where} is not valid TOML: {exc}") from None
        else:
            script = block.text if block.lang in SHELL else _console_commands(block)
            shell_env = _run_shell(block, script, folder, shell_env)
        ran.append(block)
    return ran


def _run_python(block: Block, ns: dict[str, object]) -> None:
    try:
        exec(compile(block.text, block.where, "exec"), ns)
    except Exception as exc:
        trace = "".join(traceback.format_exception(exc)[-4:])
        raise BlockFailed(f"{block.where} fails: {type(exc).__name__}: {exc}\n{block.text}\n"
                          f"{trace}") from None


def _console_commands(block: Block) -> str:
    """The commands of a console transcript: ``$ `` lines and their ``\\`` continuations."""
    out: list[str] = []
    going = False
    for line in block.text.splitlines():
        if line.startswith("$ ") or going:
            out.append(line[2:] if line.startswith("$ ") and not going else line)
            going = line.rstrip().endswith("\\")
    if not out:
        raise BlockFailed(f"{block.where} has no `$ ` command; tag output as ```text")
    return "\n".join(out) + "\n"


def _run_shell(block: Block, script: str, folder: Path, env: dict[str, str]
               ) -> dict[str, str]:
    """Run ``script``; the environment after it (what it assigned, exported by ``set -a``)."""
    dump = folder.resolve() / ".docs-test-env"
    wrapped = f"set -a\n{script}\nenv -0 > {dump}\n"
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", wrapped], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BlockFailed(f"{block.where} exits {proc.returncode}\n{block.text}\n"
                          f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    after = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    dump.unlink()
    for name in _CARRIED:
        after.pop(name, None)
    return after
