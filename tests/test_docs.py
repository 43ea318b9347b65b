"""The documentation cannot rot: every code block of docs/ runs, and the CLI reference is the
commands' own --help.

Each markdown file runs in a fresh folder (``AGENTLAB_STORE`` pointing into it), its blocks in
order, as a reader of a checkout would run them (``sample_traces/`` is the repository's).
How blocks run and how one is marked as not runnable here: tests/docblocks.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from docblocks import REPO, BlockFailed, blocks, run_blocks

from agentlab.cli import cli
from agentlab.cli._reference import REGENERATE, iter_commands, render_reference

DOCS = REPO / "docs"
DOC_FILES = sorted(DOCS.rglob("*.md"))

# Pages written to be followed from a fresh folder: each must hold code that runs.
WALKTHROUGHS = ["concepts.md", "configuration.md", "tutorials/engineer.md",
                "tutorials/analyst.md", "tutorials/approver.md", "tutorials/agent-developer.md"]


@pytest.fixture
def fresh_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder as a reader has it: empty but for the repository's sample traces,
    with the default store inside it. Nothing else is set up: each page defines what it
    uses. The environment the page's code changes is put back afterwards."""
    saved = dict(os.environ)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_traces").symlink_to(REPO / "sample_traces")
    os.environ["AGENTLAB_STORE"] = str(tmp_path / "agentlab.db")
    for name in ("JIRA_TOKEN", "PAYMENTS_TOKEN", "EXTRA_SECRET", "AGENTLAB_KEY", "AGENTLAB_USER"):
        os.environ.pop(name, None)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_code_block_runs(page: Path, fresh_folder: Path) -> None:
    failure = None
    try:
        run_blocks(page, fresh_folder)
    except BlockFailed as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


@pytest.mark.parametrize("page", WALKTHROUGHS)
def test_walkthroughs_exist_and_hold_code_that_runs(page: str) -> None:
    path = DOCS / page
    assert path.is_file(), f"docs/{page} is missing"
    runnable = [b for b in blocks(path) if b.is_code and b.skip is None]
    assert len(runnable) >= 2, f"docs/{page} has no code that the docs test runs"


def test_every_page_is_linked_from_the_index() -> None:
    index = (DOCS / "README.md").read_text()
    for page in DOC_FILES:
        rel = page.relative_to(DOCS).as_posix()
        if rel != "README.md":
            assert f"]({rel})" in index, f"docs/README.md does not link {rel}"


def test_skipped_blocks_say_why() -> None:
    skipped = [b for p in [*DOC_FILES, REPO / "README.md"] for b in blocks(p) if b.skip]
    assert skipped, "expected the blocks that wait for a human to be marked"
    for b in skipped:
        assert b.is_code, f"{b.where} is marked skip but is not code"
        assert len(b.skip or "") > 10, f"{b.where}: say why it cannot run, not just skip"


# -- the runner itself: it must be able to fail ------------------------------------------


def test_a_failing_block_fails_with_its_place(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    with pytest.raises(BlockFailed, match=r"page\.md:7 \(python block\) fails: AssertionError"):
        run_blocks(page, tmp_path)
    page.write_text("```bash\nA=one\n```\n\n```bash\ntest \"$A\" = one\nagentlab nope\n```\n")
    with pytest.raises(BlockFailed, match=r"page\.md:5 \(bash block\) exits 2"):
        run_blocks(page, tmp_path)  # A carried over from the first block; `nope` is no command


def test_a_skip_marker_needs_a_reason_and_a_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-test: skip -->\n```bash\nfalse\n```\n")
    with pytest.raises(BlockFailed, match=r"docs-test: skip \(why"):
        blocks(page)
    page.write_text("<!-- docs-test: skip (waits for a human) -->\n\ntext\n\n```bash\n```\n")
    with pytest.raises(BlockFailed, match="not directly above a code block"):
        blocks(page)
    page.write_text("<!-- docs-test: skip (waits for a human) -->\n```bash\nfalse\n```\n")
    assert [b.skip for b in blocks(page)] == ["waits for a human"]
    assert run_blocks(page, tmp_path) == []


# -- the CLI reference ------------------------------------------------------------------


def test_every_command_and_option_has_help() -> None:
    for path, cmd, _ in iter_commands(cli):
        assert cmd.help and len(cmd.help.strip()) > 20, f"`{path}` has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"`{path}` option {'/'.join(param.opts)} has no help text"


def test_the_committed_reference_is_the_generated_one() -> None:
    committed = (DOCS / "cli-reference.md").read_text()
    assert committed == render_reference(), (
        f"docs/cli-reference.md is out of date with the commands' --help; run `{REGENERATE}`")


def test_every_command_is_in_the_narrative_guide() -> None:
    guide = (DOCS / "cli.md").read_text()
    for path, _, _ in list(iter_commands(cli))[1:]:
        assert re.search(rf"`{re.escape(path)}\b", guide), f"docs/cli.md never mentions `{path}`"


# -- the architecture's layer picture ---------------------------------------------------


def test_the_layer_picture_follows_the_import_contract() -> None:
    """The picture in docs/architecture.md lists the layers of pyproject's import-linter
    contract, top to bottom, side-by-side layers on one row."""
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in contracts["contracts"] if c["type"] == "layers")
    picture = next(b for b in blocks(DOCS / "architecture.md") if b.lang == "text").text
    rows = [line for line in picture.splitlines() if re.match(r"\s*│ [a-z]", line)]
    named = [re.findall(r"│ ([a-z]+) {2,}", row) for row in rows]
    expected = [[name.removeprefix("agentlab.") for name in layer.split(" | ")]
                for layer in layers]
    assert named == expected


# -- links ------------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (outside code blocks)."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", [*DOC_FILES, REPO / "README.md"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.relative_to(REPO)} links {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), \
                f"{page.relative_to(REPO)} links {target}: no such heading"
