"""``%%agentlab record``, the approval inbox and the event views, in a real IPython shell over
a real SQLite store (widgets on a recording fake comm), and the approval click through a
real kernel's comm while the cell's agent waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets", reason="the notebook extra is not installed")

from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.display._approval import ApprovalInbox, ApprovalWidget
from agentlab.display._cell_run import CellRun
from agentlab.errors import ToolDeniedError
from agentlab.store import RunStore

GRANTED = "granted-bot"
pytestmark = pytest.mark.usefixtures("comms")  # tests/display/conftest.py: a fake comm


def eventually(check: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy (a background thread's work)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {within} s: {check}")


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTLAB_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    return tmp_path / "cells.db"


@pytest.fixture
def ip(store_path: Path) -> Iterator[Any]:
    shell = start_ipython() or get_ipython()  # one test shell per process
    assert shell is not None
    shell.run_line_magic("load_ext", "agentlab")
    store = al.open_store(store_path)
    from agentlab.testing import allow_all

    shell.user_ns["grant_name"] = allow_all(store, agent=GRANTED)
    store.close()
    shell.run_line_magic("agentlab", f"open {store_path}")
    shell.run_cell("import agentlab as al\n"
                   "policy = al.Policy([al.Rule('needs-lead', 'approve', tool='file_issue')])\n"
                   "@al.tool(side_effect=True, scope='jira:write')\n"
                   "def file_issue(title: str) -> str:\n"
                   "    return 'ENG-' + str(len(title))\n"
                   "@al.tool\n"
                   "def look_up(key: str) -> dict:\n"
                   "    return {'key': key, 'plan': 'enterprise'}\n")
    yield shell
    shell.user_ns.pop("run", None)


def record(ip: Any, line: str, cell: str) -> CellRun:
    result = ip.run_cell_magic("agentlab", "record " + line, cell)
    assert isinstance(result, CellRun)
    return result


def opened(store_path: Path) -> RunStore:
    return al.open_store(store_path, create=False)


def test_a_cell_is_recorded_as_a_run(ip: Any, store_path: Path) -> None:
    cell = record(ip, "triage --agent nb-bot --version 0.1 --task T-1 --team support --wait",
                  "account = look_up('ACME-1')\n"
                  "run.state['account'] = account\n"
                  "run.outcome(success=True)\n")
    summary = cell.wait()
    assert (summary.workflow, summary.agent_name, summary.agent_version, summary.task_id,
            summary.team, summary.status, summary.tool_calls) == (
        "triage", "nb-bot", "0.1", "T-1", "support", "succeeded", 1)
    assert ip.user_ns["account"] == {"key": "ACME-1", "plan": "enterprise"}  # like a cell
    store = opened(store_path)
    kinds = [e.kind for e in store.events(summary.run_id)]
    store.close()
    assert "tool_call" in kinds and "checkpoint" in kinds


def test_the_cell_runs_off_the_kernel_thread_and_its_widget_answers(
        ip: Any, store_path: Path) -> None:
    """Without --wait the cell returns at once; the approval widget appears inside the
    cell's view, and its click lets the waiting agent go on."""
    cell = record(ip, f"triage --agent {GRANTED} --policy policy --by ana "
                  "--grants {grant_name}".replace("{grant_name}", ip.user_ns["grant_name"]),
                  "issue = file_issue('outage at ACME')\nrun.outcome(success=True)\n")
    assert not cell.done  # waiting for the human, while the kernel stays free
    inbox = cell.children[1]
    widget = eventually(lambda: inbox.children and inbox.children[0])
    assert isinstance(widget, ApprovalWidget) and widget.request.tool == "file_issue"
    assert "waiting for approval of file_issue" in cell.children[0].value
    widget.approve_button.click()
    summary = cell.wait(timeout=30)
    assert summary.status == "succeeded" and ip.user_ns["issue"] == "ENG-14"
    assert "succeeded" in cell.children[0].value
    store = opened(store_path)
    (row,) = store.approvals(run_id=summary.run_id)
    store.close()
    assert (row.status, row.channel, row.decided_by) == ("approved", "widget", "ana")


def test_a_waiting_cell_refuses_an_approval_at_once(ip: Any, store_path: Path) -> None:
    line = f"triage --agent {GRANTED} --policy policy --wait --grants {ip.user_ns['grant_name']}"
    with pytest.raises(ToolDeniedError, match=r"waits for its run \(--wait\).*agentlab approve"):
        ip.run_cell_magic("agentlab", "record " + line, "file_issue('outage')\n")
    store = opened(store_path)
    (run,) = store.runs()
    store.close()
    assert run.status == "errored" and run.denied_count == 1


def test_the_cells_exception_is_kept_and_raised_by_wait(ip: Any) -> None:
    cell = record(ip, "triage", "look_up('A')\nraise ValueError('bad ticket')\n")
    with pytest.raises(ValueError, match="bad ticket"):
        cell.wait(timeout=30)
    assert cell.summary is not None and cell.summary.status == "errored"
    assert "bad ticket" in cell.children[0].value


def test_top_level_await_in_a_recorded_cell(ip: Any) -> None:
    cell = record(ip, "triage --wait",
                  "import asyncio\nawait asyncio.sleep(0)\nrun.outcome(success=True)\n")
    assert cell.wait().status == "succeeded"


def test_mistakes_are_usage_errors(ip: Any) -> None:
    with pytest.raises(UsageError, match="records the cell"):
        ip.run_cell_magic("agentlab", "runs", "x = 1")
    with pytest.raises(UsageError, match="no variable 'nope'"):
        ip.run_cell_magic("agentlab", "record triage --policy nope", "x = 1")
    ip.user_ns["not_a_policy"] = 3
    with pytest.raises(UsageError, match="is a int, not an agentlab Policy"):
        ip.run_cell_magic("agentlab", "record triage --policy not_a_policy", "x = 1")
    with pytest.raises(UsageError, match="workflow"):
        ip.run_cell_magic("agentlab", "record", "x = 1")


def test_the_inbox_shows_requests_as_they_arrive(store_path: Path) -> None:
    store = al.open_store(store_path)
    manager = ApprovalManager(store)
    inbox = ApprovalInbox(manager, by="ana", interval=0.02)
    try:
        assert "no pending approvals" in inbox.children[0].value
        first = manager.request(run_id="r1", call_key="c1", tool="file_issue",
                                arguments={"title": "a"})
        eventually(lambda: first.id in inbox.widgets)
        second = manager.request(run_id="r2", call_key="c1", tool="set_priority",
                                 arguments={"priority": "low"})
        eventually(lambda: second.id in inbox.widgets)
        assert [w.request.tool for w in inbox.children] == ["file_issue", "set_priority"]
        inbox.widgets[first.id].approve_button.click()
        assert manager.get(first.id).status == "approved"
        assert len(inbox.children) == 2  # a decided request keeps its widget, with outcome
    finally:
        inbox.stop()
        store.close()


def test_events_display_as_a_table_not_pages_of_objects(ip: Any, store_path: Path) -> None:
    cell = record(ip, "triage --wait", "look_up('ACME-1')\nrun.outcome(success=True)\n")
    store = opened(store_path)
    events = store.events(cell.wait().run_id)
    summary = store.run(cell.run_id or "")
    store.close()
    formatter = ip.display_formatter
    html_formatter = formatter.formatters["text/html"]
    html_formatter.enabled = True  # as in a kernel (a terminal shell turns it off)
    data, _ = formatter.format(events, include=("text/html", "text/plain"))
    assert data["text/html"].count("<tr>") == len(events) + 1  # a header, a row per event
    assert "look_up" in data["text/html"] and f"{len(events)} events of run" in data["text/html"]
    assert len(data["text/plain"]) < len(repr(events)) / 2  # compact lines, not models
    assert "tool_call seq" in data["text/plain"]
    data, _ = formatter.format(summary, include=("text/html", "text/plain"))
    assert summary.run_id[:12] in data["text/html"] and "1 tool)" in data["text/plain"]
    data, _ = formatter.format([1, 2], include=("text/html", "text/plain"))  # other lists are shown as before
    assert "text/html" not in data
    html_formatter.enabled = False


def test_approval_requests_have_one_line_views(ip: Any, store_path: Path) -> None:
    store = al.open_store(store_path)
    manager = ApprovalManager(store)
    asked = manager.request(run_id="r1", call_key="c1", tool="file_issue",
                            arguments={"title": "outage"}, rule="needs-lead")
    decided = manager.reject(asked.id, by="ana", reason="duplicate")
    store.close()
    formatter = ip.display_formatter
    formatter.formatters["text/html"].enabled = True
    try:
        pending, _ = formatter.format(asked, include=("text/html", "text/plain"))
        done, _ = formatter.format(decided, include=("text/html", "text/plain"))
    finally:
        formatter.formatters["text/html"].enabled = False
    assert "file_issue" in pending["text/plain"] and "pending, expires" in pending["text/plain"]
    assert "rejected by ana via api: duplicate" in done["text/plain"]
    assert "needs-lead" in done["text/html"] and "#b42318" in done["text/html"]
