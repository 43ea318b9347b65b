"""``%load_ext agentlab``: the ``%agentlab`` magic in a real IPython shell, and in a real
kernel, over the demo's store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

import agentlab as al
from agentlab.demo import DemoResult, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    path = tmp_path_factory.mktemp("magics") / "demo.db"
    store = al.open_store(path)
    result = run_demo(store, out=None)
    store.close()
    return path, result


@pytest.fixture(scope="module")
def ip(demo: tuple[Path, DemoResult]) -> Iterator[Any]:
    shell = start_ipython() or get_ipython()  # one test shell per process
    assert shell is not None
    shell.run_line_magic("load_ext", "agentlab")
    shell.run_line_magic("agentlab", f"open {demo[0]}")
    yield shell


def test_runs_show_explain_and_diff(ip: Any, demo: tuple[Path, DemoResult]) -> None:
    _, result = demo
    runs = ip.run_line_magic("agentlab", "runs --status failed")
    assert set(runs["run_id"]) == {result.bad_run_id, result.rejected_run_id}
    shown = ip.run_line_magic("agentlab", f"show {result.bad_run_id[:12]}")
    assert shown.summary.run_id == result.bad_run_id
    assert "lookup_account" in repr(shown) and "lookup_account" in shown._repr_html_()
    ex = ip.run_line_magic("agentlab", f"explain {result.bad_run_id}")
    assert ex.culprit is not None and ex.culprit.name == "lookup_account"
    diff = ip.run_line_magic("agentlab", f"diff {result.good_run_id} {result.bad_run_id}")
    assert any(c.path.startswith("/account") for c in diff.changes)
    assert "change(s)" in repr(diff) and "<table>" in diff._repr_html_()
    # a run summary displays as one HTML line (registered by the extension)
    store = al.open_store(demo[0])
    summary = store.run(result.bad_run_id)
    html = ip.display_formatter.formatters["text/html"].lookup(summary)(summary)
    store.close()
    assert html is not None and result.bad_run_id[:12] in html and "failed" in html


def test_explore_opens_the_explorer_on_runs_by_prefix(ip: Any,
                                                      demo: tuple[Path, DemoResult]) -> None:
    _, result = demo
    explorer = ip.run_line_magic(
        "agentlab", f"explore {result.bad_run_id[:12]} --compare {result.good_run_id[:12]}")
    assert (explorer.run_id, explorer.compare_id) == (result.bad_run_id, result.good_run_id)
    reply = explorer.answer({"id": 1, "type": "runs", "filters": {"status": "failed"}})
    assert reply["ok"], reply
    assert {r["run_id"] for r in reply["data"]["rows"]} == {result.bad_run_id,
                                                            result.rejected_run_id}
    with pytest.raises(UsageError, match="needs the run to compare it with"):
        ip.run_line_magic("agentlab", f"explore --compare {result.good_run_id}")


def test_mistakes_are_one_line_usage_errors(ip: Any) -> None:
    with pytest.raises(UsageError, match="no subcommand 'frobnicate'"):
        ip.run_line_magic("agentlab", "frobnicate")
    with pytest.raises(UsageError, match="no run"):
        ip.run_line_magic("agentlab", "explain nosuchrun")
    with pytest.raises(UsageError, match="one run id"):
        ip.run_line_magic("agentlab", "show")


def test_the_extension_loads_in_a_real_kernel(demo: tuple[Path, DemoResult]) -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = (f"%load_ext agentlab\n%agentlab open {demo[0]}\n"
                f"ex = %agentlab explain {demo[1].bad_run_id}\nex")
        msg_id = kc.execute(code)
        outputs: list[dict[str, Any]] = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] in ("execute_result", "display_data", "error"):
                outputs.append(msg["content"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert not [o for o in outputs if "ename" in o], outputs
        html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
        assert "lookup_account" in html
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _collect(kc: Any, msg_id: str, until: Callable[[dict[str, Any]], bool],
             seen: list[dict[str, Any]]) -> None:
    """Read iopub messages into ``seen`` until one satisfies ``until``."""
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        seen.append(msg)
        if msg["parent_header"].get("msg_id") == msg_id and until(msg):
            return


def _idle(msg: dict[str, Any]) -> bool:
    return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"


def test_a_recorded_cell_is_approved_by_a_click_in_a_real_kernel(tmp_path: Path) -> None:
    """The cell returns while its agent waits; the Approve button's click arrives through the
    kernel's comm (as the browser sends it), and the agent goes on."""
    from jupyter_client.manager import start_new_kernel

    from agentlab.testing import allow_all

    path = tmp_path / "cells.db"
    store = al.open_store(path)
    grant = allow_all(store, agent="bot")
    store.close()
    km, kc = start_new_kernel(kernel_name="python3",
                              env={**os.environ, "AGENTLAB_KEY_FILE": str(tmp_path / "key")})
    try:
        setup = (f"%load_ext agentlab\n%agentlab open {path}\nimport agentlab as al\n"
                 "policy = al.Policy([al.Rule('needs-lead', 'approve', tool='file_issue')])\n"
                 "@al.tool(side_effect=True, scope='jira:write')\n"
                 "def file_issue(title: str) -> str:\n    return 'ENG-1'\n")
        seen: list[dict[str, Any]] = []
        _collect(kc, kc.execute(setup), _idle, seen)
        cell = (f"%%agentlab record triage --agent bot --policy policy --by ana --grants {grant}\n"
                "issue = file_issue('outage')\nrun.outcome(success=True)\n")
        seen = []
        msg_id = kc.execute(cell)

        def approve_button(msg: dict[str, Any]) -> bool:
            state = msg["content"].get("data", {}).get("state", {})
            return (msg["msg_type"] == "comm_open" and state.get("_model_name") == "ButtonModel"
                    and state.get("description") == "Approve")

        _collect(kc, msg_id, approve_button, seen)  # the widget is being built
        button = seen[-1]["content"]["comm_id"]

        def shown(msg: dict[str, Any]) -> bool:  # ... and placed in the cell's view
            data = msg["content"].get("data", {})
            return (msg["msg_type"] == "comm_msg" and data.get("method") == "update"
                    and "children" in data.get("state", {}))

        _collect(kc, msg_id, shown, seen)
        kc.shell_channel.send(kc.session.msg("comm_msg", {
            "comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}))
        seen = []
        msg_id = kc.execute("print(_.wait(60).status, issue)")
        _collect(kc, msg_id, _idle, seen)
        printed = "".join(m["content"].get("text", "") for m in seen
                          if m["msg_type"] == "stream")
        errors = [m["content"] for m in seen if m["msg_type"] == "error"]
        assert not errors and printed.strip() == "succeeded ENG-1", (printed, errors)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    store = al.open_store(path)
    (row,) = store.approvals()
    store.close()
    assert (row.status, row.channel, row.decided_by) == ("approved", "widget", "ana")


def test_the_extension_loads_from_the_kernel_config(tmp_path: Path,
                                                    demo: tuple[Path, DemoResult]) -> None:
    """``c.InteractiveShellApp.extensions = ["agentlab"]`` in ipython_kernel_config.py: the
    magic is there in every new kernel, with no %load_ext."""
    from jupyter_client.manager import start_new_kernel

    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["agentlab"]\n')
    km, kc = start_new_kernel(kernel_name="python3",
                              env={**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        seen: list[dict[str, Any]] = []
        msg_id = kc.execute(f"%agentlab open {demo[0]}\n"
                            "failed = %agentlab runs --status failed\nprint(failed)")
        _collect(kc, msg_id, _idle, seen)
        errors = [m["content"] for m in seen if m["msg_type"] == "error"]
        printed = "".join(m["content"].get("text", "") for m in seen
                          if m["msg_type"] == "stream")
        assert not errors, errors
        assert demo[1].bad_run_id in printed and demo[1].good_run_id not in printed
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
