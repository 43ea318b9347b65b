"""The timeline in a real JupyterLab, in headless Debian Chromium, with no network.

A notebook records the demo's runs and shows two timelines, the bad run's with its
explanation, as a user would (no renderer switched). The chart must draw from the output's own inline
Vega (every request that does not go to the server is aborted, and none may be made), carry
its labels and findings, and show a tooltip when a mark is hovered.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import CHROMIUM, Lab, run_cell

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Debian Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does)",
)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (notebook extra)")
pytest.importorskip("altair", reason="altair is not installed (notebook extra)")
pytest.importorskip("vl_convert", reason="vl-convert is not installed (notebook extra)")

from playwright.sync_api import expect  # noqa: E402

CELL = """\
import os
import agentlab as al
from agentlab.analysis import explain
from agentlab.demo import run_demo
from agentlab.display import timeline_chart
from IPython.display import display

store = al.open_store(os.environ["AGENTLAB_TEST_STORE"])
demo = run_demo(store)
display(timeline_chart(store.events(demo.rejected_run_id)))   # two charts on one page
bad = demo.bad_run_id
timeline_chart(store.events(bad), explanation=explain(store, bad),
               approvals=store.approvals(run_id=bad))
"""
OUTPUT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"


def test_timeline_renders_offline_with_tooltips(lab: Lab, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    name = "timeline.ipynb"
    lab.write_notebook(name, [CELL])
    page = lab.open_notebook(name)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        run_cell(page)
        charts = page.locator(f"{OUTPUT} .agentlab-timeline svg.marks")
        chart = charts.filter(has_text="culprit #1")
        try:
            chart.wait_for(timeout=90_000)
            expect(charts).to_have_count(2)
        except Exception:
            shown = "\n".join(page.locator(OUTPUT).all_inner_texts())
            pytest.fail(f"no chart drawn; output:\n{shown}\npage errors: {errors}\n"
                        f"server log:\n{lab.log_tail()}\nblocked: {lab.blocked}")
        # Drawn by the inline Vega: the title's counts, lane names, labels and findings.
        text = " ".join(chart.locator("text").all_text_contents())
        assert "33 events: 7 steps, 9 calls (3 model, 6 tool)" in text
        assert "tool calls" in text and "waits" in text
        assert "lookup_account ⚑ culprit #1, stale" in text
        assert re.search(r"approval wait \d+ ms", text)

        # Hover the culprit's label: the tooltip names the call and what was found.
        label = chart.locator("text", has_text="lookup_account ⚑ culprit #1, stale")
        label.hover()
        tooltip = page.locator("#vg-tooltip-element")
        expect(tooltip).to_be_visible(timeout=10_000)
        expect(tooltip).to_contain_text("lookup_account")
        expect(tooltip).to_contain_text("culprit #1")
        expect(tooltip).to_contain_text("stale read")
        expect(tooltip).to_contain_text("crm-reader")  # the grant that made the call
        shown = tooltip.inner_text()
        assert "undefined" not in shown and "NaN" not in shown, shown  # only what it has
        assert not errors, errors
    finally:
        page.close()
        lab.shutdown_kernel(name)
    assert not lab.blocked, f"the page tried to reach other hosts: {lab.blocked}"
