"""Helpers shared by the benchmark scripts (timing statistics, table printing, machine facts)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def code_version() -> str:
    """Which commit's agentlab/ was measured: the latest commit whose agentlab/ is
    byte-identical to the package actually imported (which may be a clean export of a
    commit on PYTHONPATH, so that edits others make in the checkout meanwhile are not
    measured), or HEAD plus a warning when no recent commit matches."""
    import agentlab

    root = Path(__file__).resolve().parent.parent
    pkg = Path(agentlab.__file__).resolve().parent
    files = sorted(p for p in pkg.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    where = "" if pkg == root / "agentlab" else f" (imported from {pkg.parent})"

    def git(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True,
                              text=True, check=True).stdout

    try:
        hashes = git("hash-object", "--stdin-paths", stdin="\n".join(map(str, files))).split()
        imported = {f"agentlab/{p.relative_to(pkg).as_posix()}": h
                    for p, h in zip(files, hashes, strict=True)}
        head = git("rev-parse", "--short", "HEAD").strip()
        for rev in [head, *git("log", "-n", "30", "--format=%h", "--", "agentlab").split()]:
            committed = {line.split("\t", 1)[1]: line.split()[2]
                         for line in git("ls-tree", "-r", rev, "agentlab").splitlines()}
            if committed == imported:
                return f"commit {rev}, agentlab/ as committed{where}"
    except (OSError, subprocess.CalledProcessError, ValueError):
        return f"commit unknown{where}"
    return f"commit {head} + uncommitted changes in agentlab/{where}"


def machine_line() -> str:
    """One line of machine facts to print above every table."""
    return (
        f"{_dt.date.today().isoformat()} | {os.cpu_count()} cores | "
        f"Python {platform.python_version()} | SQLite {sqlite3.sqlite_version} | "
        f"{platform.system()} {platform.release()} | load avg {os.getloadavg()[0]:.2f} | "
        f"{code_version()}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns (the first left-aligned)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
        )

    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(fmt(r) for r in cells[1:])
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def header(title: str) -> None:
    print(f"== {title}")
    print(machine_line())
    sys.stdout.flush()


def close_store(store: Any) -> None:
    """Close a store; this flushes and stops its background writer too."""
    store.close()


def events_ddl(tmp: Path) -> list[str]:
    """The CREATE statements agentlab emits for its events table (and its indexes), so raw
    baselines insert into an identical table."""
    import agentlab

    store = agentlab.open_store(tmp / "ddl.db")
    close_store(store)
    with sqlite3.connect(tmp / "ddl.db") as conn:
        return [r[0] for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'agentlab_events' "
            "AND sql IS NOT NULL ORDER BY type DESC")]
