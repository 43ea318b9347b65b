"""The timeline of the demo's runs: an explanation's findings, refused calls and human waits
are marked in the chart's data (so the interactive and static forms agree), and the HTML a
notebook shows carries Vega and the data inline, with nothing to fetch."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("altair", reason="the notebook extra is not installed")
pytest.importorskip("vl_convert", reason="the notebook extra is not installed")

import agentlab as al
from agentlab.analysis import explain
from agentlab.approval import ApprovalManager
from agentlab.demo import DemoResult, run_demo
from agentlab.display import TimelineChart, timeline_chart
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore
from agentlab.testing import allow_all


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    store = al.open_store(tmp_path_factory.mktemp("demo") / "demo.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def demo(demo_store: SqlStore) -> DemoResult:
    return run_demo(demo_store)


def chart_of(store: SqlStore, run_id: str) -> TimelineChart:
    return timeline_chart(store.events(run_id), explanation=explain(store, run_id),
                          approvals=store.approvals(run_id=run_id))


def rows_named(tl: TimelineChart, name: str, kind: str) -> list[dict[str, Any]]:
    return [v for v in tl.values if v["name"] == name and v["kind"] == kind]


def test_bad_run_marks_the_stale_lookup_as_culprit_and_its_approval_waits(
        demo_store: SqlStore, demo: DemoResult) -> None:
    tl = chart_of(demo_store, demo.bad_run_id)
    (lookup,) = rows_named(tl, "lookup_account", "tool_call")
    assert lookup["finding"].startswith("culprit #1 (score ")
    assert lookup["finding"].endswith("; stale read")
    assert lookup["label"] == "lookup_account ⚑ culprit #1, stale"
    # The lead edited the issue the bad run filed: the decision is marked too.
    (decision,) = rows_named(tl, "create_issue", "approval")
    assert (decision["status"], decision["finding"]) == ("edited", "edited by a human")
    # A wait per decision, from the request to the decision, labelled with its duration.
    waits = [v for v in tl.values if v["kind"] == "approval_wait"]
    assert sorted(v["name"] for v in waits) == ["create_issue", "draft_reply"]
    for w in waits:
        assert (w["lane"], w["status"], w["wait"]) == ("wait", "wait", True)
        assert w["duration_ms"] > 0 and w["end"] > w["start"]
        assert re.fullmatch(r"approval wait \d+ ms", w["label"])
        assert w["summary"].startswith("waited ")
    assert "; waited " in tl.title and tl.title.endswith(" for approvals")

    # The static form draws the same data: the labels are in the SVG.
    svg = tl.to_svg()
    assert "lookup_account ⚑ culprit #1, stale" in svg
    assert "approval wait" in svg and "tool calls" in svg and "waits" in svg


def test_rejected_priority_drop_is_marked_denied(demo_store: SqlStore,
                                                 demo: DemoResult) -> None:
    tl = chart_of(demo_store, demo.rejected_run_id)
    (call,) = rows_named(tl, "set_priority", "tool_call")
    assert (call["status"], call["finding"], call["instant"]) == ("denied", "denied", True)
    assert call["label"] == "set_priority ⚑ denied"
    (decision,) = rows_named(tl, "set_priority", "approval")
    assert (decision["status"], decision["finding"]) == ("rejected", "rejected by a human")
    assert [v["name"] for v in tl.values if v["kind"] == "approval_wait"] == [
        "set_priority", "draft_reply"]
    assert "1 denied" in tl.title


def test_without_an_explanation_only_the_rows_own_findings_are_marked(
        demo_store: SqlStore, demo: DemoResult) -> None:
    tl = timeline_chart(demo_store.events(demo.bad_run_id))
    marked = {(v["name"], v["finding"]) for v in tl.values if "finding" in v}
    assert marked == {("create_issue", "edited by a human")}
    # Waits are still drawn, timed from the events alone (the end of the previous event).
    assert len([v for v in tl.values if v["kind"] == "approval_wait"]) == 2


def test_a_human_approval_wait_is_drawn_with_its_duration(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "wait.db")

    @al.tool(side_effect=True, scope="x:write")
    def publish(target: str) -> str:
        return target

    def slow_human(request: ApprovalRequest, manager: ApprovalManager) -> None:
        time.sleep(0.35)  # a person reading the request
        manager.approve(request.id, by="ana", channel="test")

    grant = allow_all(store, agent="bot")
    policy = al.Policy([al.Rule("ask-first", "approve", tool="publish")])
    with al.record_run("w", agent="bot", store=store, grants=[grant], policy=policy,
                       approver=slow_human) as run:
        with al.step("post"):
            publish("blog")
    events = store.events(run.run_id)
    exact = timeline_chart(events, approvals=store.approvals(run_id=run.run_id))
    estimated = timeline_chart(events)
    for tl in (exact, estimated):
        (wait,) = [v for v in tl.values if v["kind"] == "approval_wait"]
        assert 350 <= wait["duration_ms"] < 5000
        seconds = wait["duration_ms"] / 1000
        assert wait["label"] == (f"approval wait {wait['duration_ms']:.0f} ms"
                                 if seconds < 1 else f"approval wait {seconds:.1f} s")
        # The wait is the widest mark of the run: it dominates the x axis.
        assert wait["end"] - wait["start"] > 0.5 * max(v["end"] for v in tl.values)
    store.close()


def test_a_retry_backoff_is_a_wait(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "retry.db")
    calls = {"n": 0}

    @al.tool(retries=1, retry_on=(ConnectionError,), backoff_s=0.2)
    def fetch(url: str) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("reset by peer")
        return "page"

    with al.record_run("w", agent="bot", store=store) as run:
        fetch("https://example.com")
    tl = timeline_chart(store.events(run.run_id))
    (wait,) = [v for v in tl.values if v["kind"] == "retry_wait"]
    assert (wait["name"], wait["duration_ms"], wait["label"]) == (
        "fetch", 200.0, "backoff wait 200 ms")
    assert "waited 200 ms for retries" in tl.title
    store.close()


def test_notebook_html_is_interactive_and_offline(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "html.db")

    @al.tool
    def say(text: str) -> str:
        return text

    with al.record_run("w", agent="bot", store=store) as run:
        say("</script><script>alert(1)</script>")  # a payload must not end the script
    tl = timeline_chart(store.events(run.run_id))
    bundle = tl._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert bundle["text/plain"] == repr(tl) and repr(tl).startswith("<TimelineChart Run ")
    html = bundle["text/html"]
    assert html.startswith('<div class="agentlab-timeline" id="agentlab-timeline-')
    assert html.count("<script") == 1 and html.count("</script>") == 1
    assert '<script type="module">' in html and "window.vegaEmbed" in html
    assert len(html) > 500_000  # Vega, Vega-Lite and vega-embed are inline
    # Nothing is loaded from anywhere: no script, style, link, image or import by URL.
    for pattern in (r"<script[^>]*\bsrc=", r"<link\b", r"@import", r"url\(\s*['\"]?https?:",
                    r"\bimport\s*\(\s*['\"]https?:", r"\bfrom\s*['\"]https?:",
                    r"cdn\.jsdelivr|unpkg\.com"):
        assert re.search(pattern, html) is None, pattern
    # The data is inline too: the row's summary is there, escaped for a script.
    assert "\\u003c/script>\\u003cscript>alert(1)" in html
    # Two charts on one page get two elements.
    ids = re.findall(r'id="(agentlab-timeline-[^"]+)"', html + tl.to_html())
    assert len(set(ids)) == 2

    page = tl.save(tmp_path / "run.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Run " in page
    svg = tl.static()
    assert svg._repr_mimebundle_()["image/svg+xml"].lstrip().startswith("<svg")
    png = tl.static("png")._repr_mimebundle_()["image/png"]
    assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")
    assert tl.save(tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
    store.close()
