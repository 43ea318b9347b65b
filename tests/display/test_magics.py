"""``%load_ext agentlab``: the ``%agentlab`` magic in a real IPython shell, and in a real
kernel, over the demo's store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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
    shell = start_ipython()
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
