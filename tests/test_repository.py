"""The repository stands alone: nothing it runs reads a path outside its own folder.

A clone with nothing beside it must pass ``make test``; so code, tests, notebooks and
benchmarks may not name a file beside or above the repository (the third-party runs they use
are vendored under ``sample_traces/third_party``, each with its licence).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("agentlab", "tests", "notebooks", "benchmarks")
SUFFIXES = {".py", ".ipynb", ".md", ".toml", ".cfg", ".ini", ".sh", ".txt", ".json"}

# A run of "../" segments (or a Path("..") part) and the relative path after it.
_UP = re.compile(r"""(?<![\w.])((?:\.\.[/\\])+)([\w.\-/]*)|Path\(\s*['"]\.\.['"]\s*\)""")
# Path(__file__).resolve().parents[N] / .parent chains climb N + 1 folders from the file.
_PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
# Names of places outside any clone: the folder the third-party runs were vendored from, and
# the absolute path of the workspace this repository was developed in.
_FOREIGN = re.compile("real" + r"_traces|(?<![\w/])/work/")


def outside_references(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """Every reference in ``text`` (the content of ``path``) to a place outside ``root``."""
    found: list[str] = []
    depth = len(path.resolve().relative_to(root).parts) - 1  # folders between file and root
    for m in _UP.finditer(text):
        if m.group(1) is None:  # Path("..") climbs one folder from where the code runs
            target = (path.parent / "..").resolve()
        else:
            target = (path.parent / m.group(1) / m.group(2)).resolve()
        if not target.is_relative_to(root):
            found.append(m.group(0))
    for m in _PARENTS.finditer(text):
        if int(m.group(1)) > depth:
            found.append(m.group(0))
    for m in _PARENT_CHAIN.finditer(text):
        if m.group(1).count(".parent") - 1 > depth:
            found.append(m.group(0))
    found.extend(m.group(0) for m in _FOREIGN.finditer(text))
    return found


def scanned_files() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*")
                  if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts
                  and p != Path(__file__).resolve())


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    files = scanned_files()
    assert len(files) > 50  # the scan sees the project, not an empty glob
    offenders = {str(p.relative_to(ROOT)): refs for p in files
                 if (refs := outside_references(p, p.read_text(errors="replace")))}
    assert offenders == {}, "vendor the data into sample_traces/third_party instead"


@pytest.mark.parametrize(("where", "text", "bad"), [
    ("tests/analysis/t.py", 'Path(__file__).resolve().parents[3] / "data"', True),
    ("tests/analysis/t.py", 'Path(__file__).resolve().parents[2] / "sample_traces"', False),
    ("tests/t.py", "Path(__file__).parent.parent.parent", True),
    ("tests/t.py", "Path(__file__).parent.parent", False),
    ("notebooks/nb.ipynb", '"../sample_traces/third_party/x.json.gz"', False),
    ("notebooks/nb.ipynb", '"../../data/x.json"', True),
    ("agentlab/x.py", 'open("/work/shared/x")', True),
    ("benchmarks/b.py", "folder / 'real" + "_traces'", True),
    ("agentlab/x.py", "Path(\"..\")", False),
    ("agentlab/x.py", "a = b..c", False),
])
def test_the_scan_tells_inside_from_outside(where: str, text: str, bad: bool) -> None:
    assert bool(outside_references(ROOT / where, text)) is bad


def test_every_vendored_source_carries_its_licence_and_attribution() -> None:
    sources = sorted(p for p in (ROOT / "sample_traces" / "third_party").iterdir() if p.is_dir())
    assert [p.name for p in sources] == ["agentrx-tau-retail", "swe-agent", "tau-bench",
                                        "who-and-when"]
    readme = (ROOT / "sample_traces" / "README.md").read_text()
    for source in sources:
        assert (source / "LICENSE").read_text().strip().startswith("MIT License"), source
        attribution = (source / "ATTRIBUTION.md").read_text()
        assert "commit" in attribution.lower(), source
        for f in source.rglob("*.gz"):
            rel = f.relative_to(source)
            listed = str(rel) if rel.parent == Path() else str(rel.parent)
            assert listed in attribution, f"{f} is not described in {source}/ATTRIBUTION.md"
            assert f"third_party/{source.name}/{listed}" in readme, f"{f} missing from README"
