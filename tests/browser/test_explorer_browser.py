"""The run explorer in a real JupyterLab and Debian Chromium, offline: a notebook opens it on
the demo's store; the test selects a run, opens a step (its arguments, grant and key
fingerprint show), and compares two runs (their first divergence is marked).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CHROMIUM, Lab, run_cell

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Debian Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does)",
)

from playwright.sync_api import Page, expect  # noqa: E402

import agentlab as al  # noqa: E402
from agentlab.demo import DemoResult, run_demo  # noqa: E402

OUTPUT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
CELL = '''\
import os
from agentlab.display import explore
explore(os.environ["AGENTLAB_TEST_STORE"])
'''


@pytest.fixture(scope="module")
def demo(lab: Lab) -> DemoResult:
    before = os.environ.get("AGENTLAB_KEY_FILE")
    os.environ["AGENTLAB_KEY_FILE"] = str(lab.key_file)
    try:
        store = al.open_store(lab.store_path)
        try:
            return run_demo(store, out=None)
        finally:
            store.close()
    finally:
        if before is None:
            os.environ.pop("AGENTLAB_KEY_FILE", None)
        else:
            os.environ["AGENTLAB_KEY_FILE"] = before


@pytest.fixture
def page(lab: Lab, demo: DemoResult) -> Iterator[Page]:
    name = "explorer.ipynb"
    lab.write_notebook(name, [CELL])
    p = lab.open_notebook(name)
    try:
        run_cell(p)
        yield p
    finally:
        p.close()
        lab.shutdown_kernel(name)


def test_select_a_run_open_a_step_and_compare_two_runs(lab: Lab, demo: DemoResult,
                                                       page: Page, tmp_path: Path) -> None:
    explorer = page.locator(f"{OUTPUT} .al-explorer")
    rows = explorer.locator("tr.al-run-row")
    expect(rows).to_have_count(3, timeout=60_000)

    # select the bad run
    explorer.locator(f"button.al-open-run[title='{demo.bad_run_id}']").click()
    expect(explorer.locator(".al-run-title")).to_contain_text(demo.bad_run_id)
    # expand its "account" step from the keyboard, then open the lookup inside it
    account = explorer.locator("li.al-node", has=page.locator(
        "button.al-node-label", has_text=re.compile(r"step\s+account"))).first
    toggle = account.locator("button.al-toggle").first
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    account.locator("button.al-node-label", has_text="lookup_account").click()
    detail = explorer.locator(".al-detail")
    expect(detail).to_contain_text("ACME-1042")  # its arguments
    expect(detail.locator(".al-governance")).to_contain_text("crm-reader")
    store = al.open_store(lab.store_path)
    try:
        grant = store.grant("crm-reader")
    finally:
        store.close()
    assert grant is not None and grant.fingerprint
    expect(detail.locator(".al-governance")).to_contain_text(grant.fingerprint)
    expect(detail.locator(".al-state")).to_contain_text("/account")

    # compare it with the good run
    explorer.locator(f"tr.al-run-row[data-run='{demo.good_run_id}'] button.al-compare").click()
    marked = explorer.locator(".al-compare tr.al-diverges")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("first divergence")
    expect(marked).to_contain_text("check_entitlement")
    expect(explorer.locator(".al-diverge-note")).to_contain_text("First divergence")
    expect(explorer.locator(".al-compare tr.al-result-differs")).to_contain_text(
        "lookup_account")
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

    # the timeline draws one bar per step
    explorer.locator("button.al-tab", has_text="Timeline").click()
    expect(explorer.locator("svg.al-bars rect.al-bar").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert not lab.blocked, f"the page tried to reach other hosts: {lab.blocked}"
