"""A notebook agent waits for approval; a real browser decides it in the widget.

Each case writes a notebook whose agent (in a thread, so the kernel stays free for clicks)
asks to create a Jira issue, opens it in JupyterLab in headless Chromium, runs the cell,
clicks in the widget, then reads the store from this process: the decision is recorded
with channel ``widget`` and the run completes accordingly.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, Lab, run_cell

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"Debian Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does)",
)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (notebook extra)")
pytest.importorskip("ipywidgets", reason="ipywidgets is not installed (notebook extra)")

from playwright.sync_api import Page, expect  # noqa: E402

import agentlab as al  # noqa: E402
from agentlab.approval import ApprovalManager  # noqa: E402
from agentlab.errors import RunNotFoundError  # noqa: E402
from agentlab.model import ApprovalRequest  # noqa: E402
from agentlab.store import RunStore  # noqa: E402

BY = "browser-user"
OUTPUT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"

AGENT_CELL = '''\
import contextvars, os, threading
import agentlab as al
from agentlab.display import WidgetApprover

os.environ["NB_JIRA_TOKEN"] = "nb-token-123456"
RUN_ID = "@RUN_ID@"
store = al.open_store(os.environ["AGENTLAB_TEST_STORE"])
if store.grant("jira-writer") is None:
    al.issue_grant(store, "jira-writer", principal="nb-agent", owner="qa-team",
                   workflow="nb-demo", scopes=["jira:write:SUP-*"], secret="env:NB_JIRA_TOKEN")

@al.tool(side_effect=True, scope="jira:write:{project}")
def create_issue(project: str, title: str, priority: str = "normal") -> dict:
    return {"key": f"{project}-1", "title": title, "priority": priority}

policy = al.Policy([al.Rule("jira-needs-human", "approve", tool="create_issue")])
approver = WidgetApprover(by="@BY@")

def agent():
    with al.record_run("nb-demo", agent="nb-agent", store=store, run_id=RUN_ID,
                       grants=["jira-writer"], policy=policy, approver=approver) as run:
        try:
            run.state["issue"] = create_issue(project="SUP-7", title="Printer on fire")
            run.outcome(success=True)
        except al.ToolDeniedError as exc:
            run.state["denied"] = exc.denial.reason
            run.outcome(success=False)

# a thread, so the kernel stays free to deliver the widget's clicks while the agent waits
threading.Thread(target=contextvars.copy_context().run, args=(agent,), daemon=True).start()
'''


@pytest.fixture(autouse=True)
def shared_key(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign and check with the kernel's key: approvals are MAC'd with it."""
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    monkeypatch.setenv("AGENTLAB_KEY_FILE", str(lab.key_file))


@pytest.fixture
def store(lab: Lab, shared_key: None) -> Iterator[RunStore]:
    s = al.open_store(lab.store_path)
    try:
        yield s
    finally:
        s.close()


def button(page: Page, label: str) -> Any:
    # exact label: "Edit" must not match "Submit edit", nor a file name in the browser
    return page.locator(f"{OUTPUT} button.jupyter-button",
                        has_text=re.compile(rf"^\s*{label}\s*$"))


def run_agent_notebook(lab: Lab, run_id: str,
                       cells: list[str] | None = None) -> tuple[Page, Callable[[], None]]:
    """Open a fresh notebook, run its cells in order (default: the agent cell); return the
    page once Approve is shown."""
    name = f"{run_id}.ipynb"
    sources = cells or [AGENT_CELL.replace("@RUN_ID@", run_id).replace("@BY@", BY)]
    lab.write_notebook(name, sources)
    page = lab.open_notebook(name)

    def close() -> None:
        page.close()
        lab.shutdown_kernel(name)

    try:
        for index in range(len(sources)):
            run_cell(page, index, finished=True)
        button(page, "Approve").wait_for(timeout=60_000)
    except Exception:
        close()
        raise
    return page, close


def wait_for_run(store: RunStore, run_id: str, page: Page, lab: Lab) -> str:
    """The run's final status, once the agent thread has finished it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = store.run(run_id).status
        except RunNotFoundError:
            status = "running"
        if status != "running":
            return status
        time.sleep(0.2)
    shown = "\n".join(page.locator(OUTPUT).all_inner_texts())
    pytest.fail(f"run {run_id} still running after 60 s; notebook output:\n{shown}\n"
                f"server log:\n{lab.log_tail()}\nblocked requests: {lab.blocked}")


def decision(store: RunStore, run_id: str, lab: Lab) -> ApprovalRequest:
    """The request's stored decision, checked as the widget's; and the page never left
    the machine (every request not to the server was aborted, and none was made)."""
    assert not lab.blocked, f"the page tried to reach other hosts: {lab.blocked}"
    (row,) = store.approvals(run_id=run_id)
    assert (row.channel, row.decided_by) == ("widget", BY)
    assert ApprovalManager(store).authentic(row)  # signed by the kernel, under the shared key
    return row


def events(store: RunStore, run_id: str, kind: str) -> list[Any]:
    return [e for e in store.events(run_id) if e.kind == kind]


def test_approve_in_browser(lab: Lab, store: RunStore) -> None:
    page, close = run_agent_notebook(lab, "browser-approve")
    try:
        button(page, "Approve").click()
        expect(page.get_by_text("approved by browser-user via widget")).to_be_visible()
        assert wait_for_run(store, "browser-approve", page, lab) == "succeeded"
    finally:
        close()
    row = decision(store, "browser-approve", lab)
    assert (row.status, row.action) == ("approved", "approve")
    assert row.consumed_at is not None
    (approval,) = events(store, "browser-approve", "approval")
    assert (approval.action, approval.by, approval.channel) == ("approve", BY, "widget")
    (call,) = events(store, "browser-approve", "tool_call")
    assert (call.status, call.arguments) == ("ok", {"project": "SUP-7",
                                                    "title": "Printer on fire"})
    assert call.result["priority"] == "normal"


def test_reject_in_browser(lab: Lab, store: RunStore) -> None:
    page, close = run_agent_notebook(lab, "browser-reject")
    try:
        page.locator(f"{OUTPUT} input[placeholder='why (required to reject)']").fill(
            "duplicate of SUP-6")
        button(page, "Reject").click()
        expect(page.get_by_text("rejected by browser-user via widget")).to_be_visible()
        assert wait_for_run(store, "browser-reject", page, lab) == "failed"
    finally:
        close()
    row = decision(store, "browser-reject", lab)
    assert (row.status, row.action, row.reason) == ("rejected", "reject", "duplicate of SUP-6")
    (call,) = events(store, "browser-reject", "tool_call")
    assert call.status == "denied"
    assert call.denial.code == "rejected"
    assert "duplicate of SUP-6" in call.denial.reason


def test_edit_in_browser(lab: Lab, store: RunStore) -> None:
    page, close = run_agent_notebook(lab, "browser-edit")
    try:
        button(page, "Edit").click()
        edited = {"project": "SUP-7", "title": "Printer on fire", "priority": "urgent"}
        page.locator(f"{OUTPUT} textarea").fill(json.dumps(edited, indent=2))
        # the line diff against the original arguments shows before anything is decided
        expect(page.locator(f"{OUTPUT} pre", has_text='+  "priority": "urgent"')).to_be_visible()
        button(page, "Submit edit").click()
        expect(page.get_by_text("edited by browser-user via widget")).to_be_visible()
        assert wait_for_run(store, "browser-edit", page, lab) == "succeeded"
    finally:
        close()
    row = decision(store, "browser-edit", lab)
    assert (row.status, row.action) == ("edited", "edit")
    assert row.edited_arguments == edited
    (approval,) = events(store, "browser-edit", "approval")
    assert (approval.action, approval.channel, approval.arguments) == ("edit", "widget", edited)
    (call,) = events(store, "browser-edit", "tool_call")
    assert (call.status, call.arguments["priority"]) == ("ok", "urgent")
    assert call.result["priority"] == "urgent"


RECORDED_SETUP = '''\
import os
import agentlab as al
os.environ["NB_JIRA_TOKEN"] = "nb-token-123456"
store = al.open_store(os.environ["AGENTLAB_TEST_STORE"])
if store.grant("jira-writer") is None:
    al.issue_grant(store, "jira-writer", principal="nb-agent", owner="qa-team",
                   workflow="nb-demo", scopes=["jira:write:SUP-*"], secret="env:NB_JIRA_TOKEN")

@al.tool(side_effect=True, scope="jira:write:{project}")
def create_issue(project: str, title: str, priority: str = "normal") -> dict:
    return {"key": f"{project}-1", "title": title, "priority": priority}

policy = al.Policy([al.Rule("jira-needs-human", "approve", tool="create_issue")])
%load_ext agentlab
%agentlab open {os.environ["AGENTLAB_TEST_STORE"]}
'''

RECORDED_CELL = f"""\
%%agentlab record nb-demo --agent nb-agent --policy policy --grants jira-writer --by {BY}
run.state["issue"] = create_issue(project="SUP-7", title="Printer on fire")
run.outcome(success=True)
"""


def test_approve_from_a_recorded_cell(lab: Lab, store: RunStore) -> None:
    """``%%agentlab record`` as a user types it: the cell returns while its agent waits,
    the widget under it takes the click, and the status line shows the run's end."""
    page, close = run_agent_notebook(lab, "browser-cell", [RECORDED_SETUP, RECORDED_CELL])
    try:
        expect(page.get_by_text("waiting for approval of create_issue")).to_be_visible()
        button(page, "Approve").click()
        expect(page.get_by_text("approved by browser-user via widget")).to_be_visible()
        expect(page.get_by_text(re.compile(r"agentlab: run \w+ succeeded"))).to_be_visible(
            timeout=30_000)
    finally:
        close()
    (run,) = [r for r in store.runs() if r.workflow == "nb-demo" and r.run_id not in
              ("browser-approve", "browser-reject", "browser-edit")]
    assert run.status == "succeeded"
    row = decision(store, run.run_id, lab)
    assert (row.status, row.action) == ("approved", "approve")
