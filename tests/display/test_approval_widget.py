"""The approval widget without a kernel: a real store and manager, a mocked comm.

Each widget's comm is a recording fake, so a test can both deliver what a browser would send
(a click, a typed value) and read what the front end would be told (buttons disabled).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets", reason="the notebook extra is not installed")

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.display import ApprovalWidget, WidgetApprover, pending_approvals
from agentlab.model import ApprovalRequest
from agentlab.store import RunStore

from .conftest import FakeComm

ARGS = {"project": "SUP-7", "title": "Printer on fire", "priority": "normal"}


pytestmark = pytest.mark.usefixtures("comms")  # tests/display/conftest.py: a fake comm


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunStore]:
    monkeypatch.setenv("AGENTLAB_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.delenv("AGENTLAB_KEY", raising=False)
    monkeypatch.delenv("AGENTLAB_USER", raising=False)
    s = al.open_store(tmp_path / "a.db")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def manager(store: RunStore) -> ApprovalManager:
    return ApprovalManager(store)


@pytest.fixture
def request_(manager: ApprovalManager) -> ApprovalRequest:
    return manager.request(run_id="run-1", call_key="call-1", tool="create_issue",
                           arguments=ARGS, grant="jira-writer", scope="jira:write:SUP-7",
                           rule="jira-needs-human")


def comm_of(widget: Any, comms: dict[str, FakeComm]) -> FakeComm:
    return comms[widget.model_id]


def sent_state(fake: FakeComm) -> dict[str, Any]:
    """The state the front end holds after every update the widget sent."""
    state: dict[str, Any] = {}
    for msg in fake.sent:
        if msg.get("method") == "update":
            state.update(msg["state"])
    return state


def test_shows_the_request(request_: ApprovalRequest, manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    shown = w.details.value
    for text in ("create_issue", "jira-writer", "jira:write:SUP-7", "jira-needs-human",
                 "Printer on fire", "UTC", request_.id):
        assert text in shown
    assert w.decider.value == "ana"
    assert json.loads(w.edit_area.value) == ARGS
    assert w.edit_box.layout.display == "none"
    assert repr(w) == f"<ApprovalWidget {request_.id} create_issue pending>"


def test_decider_defaults_to_agentlab_user(request_: ApprovalRequest, manager: ApprovalManager,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_USER", "bo")
    assert ApprovalWidget(request_, manager).decider.value == "bo"
    assert ApprovalWidget(request_, manager, by="ana").decider.value == "ana"


def test_approve_click(request_: ApprovalRequest, manager: ApprovalManager,
                       comms: dict[str, FakeComm]) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.approve_button.click()
    row = manager.get(request_.id)
    assert (row.status, row.action, row.decided_by, row.channel) == \
        ("approved", "approve", "ana", "widget")
    assert manager.authentic(row)
    assert "approved by ana via widget" in w.message.value
    assert all(b.disabled for b in (w.approve_button, w.reject_button, w.edit_button,
                                    w.submit_button))
    # and the front end was told: its Approve button greys out
    assert sent_state(comm_of(w.approve_button, comms))["disabled"] is True


def test_click_and_reason_arrive_through_the_comm(request_: ApprovalRequest,
                                                  manager: ApprovalManager,
                                                  comms: dict[str, FakeComm]) -> None:
    """What the browser sends: a value update for the reason box, a click on Reject."""
    w = ApprovalWidget(request_, manager, by="ana")
    comm_of(w.reason, comms).from_frontend(
        {"method": "update", "state": {"value": "duplicate of SUP-6"}, "buffer_paths": []})
    comm_of(w.reject_button, comms).from_frontend(
        {"method": "custom", "content": {"event": "click"}})
    row = manager.get(request_.id)
    assert (row.status, row.decided_by, row.channel, row.reason) == \
        ("rejected", "ana", "widget", "duplicate of SUP-6")
    assert "rejected by ana via widget: duplicate of SUP-6" in w.message.value


def test_reject_without_reason_is_refused_inline(request_: ApprovalRequest,
                                                 manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.reason.value = "   "
    w.reject_button.click()
    assert manager.get(request_.id).status == "pending"
    assert "needs a reason" in w.message.value
    assert not w.reject_button.disabled
    w.reason.value = "wrong project"
    w.reject_button.click()
    assert manager.get(request_.id).status == "rejected"


def test_no_decider_is_refused_inline(request_: ApprovalRequest,
                                      manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.decider.value = ""
    w.approve_button.click()
    assert manager.get(request_.id).status == "pending"
    assert "Decide as" in w.message.value


def test_edit_shows_diff_then_records_edit(request_: ApprovalRequest,
                                           manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.edit_button.click()
    assert w.edit_box.layout.display == ""
    assert "no change" in w.diff.value
    w.edit_area.value = json.dumps({**ARGS, "priority": "urgent"})
    assert '-  &quot;priority&quot;: &quot;normal&quot;' in w.diff.value
    assert '+  &quot;priority&quot;: &quot;urgent&quot;' in w.diff.value
    changed = [line for line in w.diff.value.splitlines() if "color:#b42318" in line
               or "color:#067647" in line]
    assert len(changed) == 2  # one line out, one in: the edit is compared as JSON, not text
    assert manager.get(request_.id).status == "pending"  # the diff alone decides nothing
    w.submit_button.click()
    row = manager.get(request_.id)
    assert (row.status, row.action, row.channel) == ("edited", "edit", "widget")
    assert row.edited_arguments == {**ARGS, "priority": "urgent"}
    assert "edited by ana via widget" in w.message.value


@pytest.mark.parametrize(("text", "error"), [
    ('{"project": "SUP-7",', "not valid JSON"),
    ('["SUP-7"]', "must be a JSON object"),
])
def test_bad_edit_is_refused_inline(request_: ApprovalRequest, manager: ApprovalManager,
                                    text: str, error: str) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.edit_button.click()
    w.edit_area.value = text
    w.submit_button.click()
    assert manager.get(request_.id).status == "pending"
    assert error in w.message.value
    assert not w.submit_button.disabled


def test_an_unchanged_edit_is_no_override(request_: ApprovalRequest,
                                          manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    w.edit_button.click()
    w.submit_button.click()  # the arguments as the agent asked them
    assert manager.get(request_.id).status == "pending"
    assert "nothing was changed" in w.message.value and "press Approve" in w.message.value
    w.approve_button.click()
    assert manager.get(request_.id).status == "approved"
    # decided: the controls are gone, the outcome stays
    assert w.buttons.layout.display == w.edit_box.layout.display == "none"
    assert "approved by ana" in w.message.value


def test_second_widget_shows_refusal(request_: ApprovalRequest, manager: ApprovalManager) -> None:
    """Two front ends on one request: the second click shows who decided first."""
    first = ApprovalWidget(request_, manager, by="ana")
    second = ApprovalWidget(request_, manager, by="bo")
    first.approve_button.click()
    second.reason.value = "too late"
    second.reject_button.click()
    row = manager.get(request_.id)
    assert (row.status, row.decided_by) == ("approved", "ana")
    assert "already approved by ana via widget" in second.message.value
    assert "#b42318" in second.message.value  # shown in red
    assert second.approve_button.disabled and second.reject_button.disabled


def test_decided_elsewhere_shows_refusal(request_: ApprovalRequest,
                                         manager: ApprovalManager) -> None:
    w = ApprovalWidget(request_, manager, by="ana")
    manager.reject(request_.id, by="cli-user", reason="no", channel="cli")
    w.approve_button.click()
    assert "already rejected by cli-user via cli" in w.message.value
    assert w.approve_button.disabled


def test_widget_on_decided_request_is_closed(request_: ApprovalRequest,
                                             manager: ApprovalManager) -> None:
    decided = manager.approve(request_.id, by="cli-user", channel="cli")
    w = ApprovalWidget(decided, manager)
    assert w.approve_button.disabled
    assert "approved by cli-user via cli" in w.message.value


def test_widget_approver_appends_a_widget(request_: ApprovalRequest, manager: ApprovalManager,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    approver = WidgetApprover(by="ana")
    capsys.readouterr()  # outside IPython, display() prints the container's repr
    assert approver.container.children == ()
    approver(request_, manager)  # the Approver protocol: show and return, the agent waits
    (w,) = approver.container.children
    assert isinstance(w, ApprovalWidget)
    assert w.decider.value == "ana"
    assert manager.get(request_.id).status == "pending"
    w.approve_button.click()
    assert manager.get(request_.id).channel == "widget"


def test_pending_approvals(store: RunStore, manager: ApprovalManager,
                           request_: ApprovalRequest) -> None:
    other = manager.request(run_id="run-2", call_key="call-1", tool="send_mail",
                            arguments={"to": "x@example.com"})
    box = pending_approvals(store, by="ana")
    assert sorted(w.request.id for w in box.children) == sorted([request_.id, other.id])
    manager.approve(other.id, by="ana")
    (only,) = pending_approvals(manager).children
    assert only.request.id == request_.id
    manager.approve(request_.id, by="ana")
    (empty,) = pending_approvals(store).children
    assert "no pending approvals" in empty.value


def test_agent_run_decided_by_widget(store: RunStore, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """End to end in one process: the agent's approver shows a widget, a click lets it run
    (the approver here clicks at once, as a user would while the agent waits)."""
    monkeypatch.setenv("NB_JIRA_TOKEN", "token-123456")
    al.issue_grant(store, "jira-writer", principal="nb-agent", owner="qa-team",
                   workflow="nb-demo", scopes=["jira:write:SUP-*"], secret="env:NB_JIRA_TOKEN")

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str, priority: str = "normal") -> dict[str, str]:
        return {"key": f"{project}-1", "title": title, "priority": priority}

    shown = WidgetApprover(by="ana")

    def approve_on_sight(request: ApprovalRequest, manager: ApprovalManager) -> None:
        shown(request, manager)
        widget = shown.container.children[-1]
        widget.edit_button.click()
        widget.edit_area.value = json.dumps({**request.arguments, "priority": "urgent"})
        widget.submit_button.click()

    policy = al.Policy([al.Rule("jira-needs-human", "approve", tool="create_issue")])
    with al.record_run("nb-demo", agent="nb-agent", store=store, run_id="run-e2e",
                       grants=["jira-writer"], policy=policy, approver=approve_on_sight) as run:
        run.state["issue"] = create_issue(project="SUP-7", title="Printer on fire")
        run.outcome(success=True)
    capsys.readouterr()
    assert store.run("run-e2e").status == "succeeded"
    (row,) = store.approvals(run_id="run-e2e")
    assert (row.status, row.channel, row.decided_by) == ("edited", "widget", "ana")
    calls = [e for e in store.events("run-e2e") if e.kind == "tool_call"]
    assert [(c.status, c.arguments["priority"]) for c in calls] == [("ok", "urgent")]


class _Kernel:
    kernel = object()  # what an IPython kernel's shell has and a terminal's lacks


def test_asked_from_the_kernels_thread_the_approver_fails_at_once(
        store: RunStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An agent run straight in a cell blocks the kernel: no click could arrive, so the call
    is denied at once with the recipe, not after the request's hour-long expiry."""
    import threading

    from agentlab.display import _approval
    from agentlab.errors import ToolDeniedError
    from agentlab.testing import allow_all

    monkeypatch.setattr(_approval, "get_ipython", lambda: _Kernel())
    approver = WidgetApprover(by="ana")

    @al.tool(side_effect=True, scope="jira:write")
    def create_issue(title: str) -> str:
        return "ENG-1"

    policy = al.Policy([al.Rule("needs-lead", "approve", tool="create_issue")])

    def agent() -> None:
        with al.record_run("wf", agent="bot", store=store, approver=approver, policy=policy,
                           grants=[allow_all(store, agent="bot")]):
            create_issue("outage")

    with pytest.raises(ToolDeniedError, match=r"notebook kernel.s own thread.*threading\.Thread"):
        agent()
    assert approver.container.children == ()
    # the same agent in a thread gets its widget (and waits for the click)
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            agent()
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=in_thread)
    t.start()
    for _ in range(200):
        if approver.container.children:
            break
        t.join(0.05)
    (w,) = approver.container.children
    w.approve_button.click()
    t.join(10)
    assert not t.is_alive() and errors == []
