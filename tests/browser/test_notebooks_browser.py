"""Notebook 02 as a newcomer runs it: JupyterLab in headless Debian Chromium, no network, the
sample store built as `agentlab demo` builds it. Run All; the explanation and the timeline
must render, the timeline marking the culprit, and the explanation (screenshotted) must name
it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import CHROMIUM, Lab

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Debian Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does)",
)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (notebook extra)")

import nbformat  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

import agentlab as al  # noqa: E402
from agentlab.demo import build_sample_store  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
OUTPUT = f"{PANEL} .jp-OutputArea-output"


def test_notebook_02_explains_the_bad_run_in_the_browser(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    store_path = tmp_path / "sample.db"
    store = al.open_store(store_path)
    try:
        story = build_sample_store(store, waiting=False)
    finally:
        store.close()
    # The notebook as committed, with the store given to its kernel as `agentlab lab` does.
    nb = nbformat.read(NOTEBOOKS / "02_explain_a_bad_run.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"import os\nos.environ['AGENTLAB_STORE'] = {str(store_path)!r}"))
    name = "02_explain_a_bad_run.ipynb"
    nbformat.write(nb, lab.root / name)
    page = lab.open_notebook(name)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
        done = page.locator(OUTPUT, has_text="culprit: seq 7 lookup_account; explained in")
        try:
            done.wait_for(timeout=120_000)
        except Exception:
            shown = "\n".join(page.locator(OUTPUT).all_inner_texts())[-3000:]
            pytest.fail(f"notebook 02 did not finish; output:\n{shown}\npage errors: {errors}\n"
                        f"server log:\n{lab.log_tail()}\nblocked: {lab.blocked}")
        assert not page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']").filter(
            has_text="Traceback").count()
        # The explanation: the ranked culprits first, the stale lookup at their head.
        explanation = page.locator(OUTPUT, has_text="Which step caused the failure").first
        explanation.scroll_into_view_if_needed()
        shot = explanation.screenshot(path=str(tmp_path / "explanation.png"))
        assert len(shot) > 1000
        text = explanation.inner_text()
        assert "lookup_account" in text
        first = text.index("lookup_account")
        assert first < text.index("check_entitlement")
        # The timeline, drawn by its inline Vega, marks the culprit and the approval waits.
        chart = page.locator(f"{OUTPUT} .agentlab-timeline svg.marks").first
        expect(chart).to_be_visible(timeout=30_000)
        labels = " ".join(chart.locator("text").all_text_contents())
        assert "lookup_account ⚑ culprit #1, stale" in labels
        assert re.search(r"approval wait [\d.]+ (s|min)", labels), labels
        assert story.bad_run_id[:12] in labels
        assert not errors, errors
    finally:
        page.close()
        lab.shutdown_kernel(name)
    assert not lab.blocked, f"the page tried to reach other hosts: {lab.blocked}"
