"""The timeline chart: inline data, its encodings, labels and tooltips, aggregation past 5,000
rows, the offline HTML a notebook shows, and static rendering through vl-convert."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("altair", reason="the notebook extra is not installed")

import altair as alt

import agentlab as al
from agentlab.analysis import timeline_rows
from agentlab.display import TimelineChart, save_timeline, timeline_chart
from agentlab.model import Event, count_events
from agentlab.store import SqlStore
from agentlab.testing import allow_all


@al.tool
def lookup(i: int) -> int:
    if i % 100 == 7:
        raise LookupError(f"no record {i}")
    return i


@al.tool(side_effect=True, scope="x:write")
def forbidden(target: str) -> str:
    return target


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = al.open_store(tmp_path / "chart.db")
    try:
        yield s
    finally:
        s.close()


def small_run(store: SqlStore, *, agent: str = "bot") -> list[Event]:
    grant = allow_all(store, agent=agent)
    policy = al.Policy([al.Rule("no", "deny", tool="forbidden")])
    with al.record_run("w", agent=agent, store=store, grants=[grant], policy=policy) as run:
        with al.step("plan"):
            run.llm_call("gpt-4o", input_tokens=10, output_tokens=5, cost_usd=0.01,
                         duration_ms=2.0)
            lookup(1)
            with pytest.raises(LookupError):
                lookup(7)
        with pytest.raises(al.ToolDeniedError):
            forbidden("prod")
    return store.events(run.run_id)


def big_run(store: SqlStore, steps: int) -> list[Event]:
    """``steps`` step-like events: steps of nine tool calls each, some failing."""
    with al.record_run("w", agent="bulk", store=store) as run:
        n = 0
        while n < steps:
            with al.step(f"batch{n // 10}"):
                n += 1
                for _ in range(min(9, steps - n)):
                    with contextlib.suppress(LookupError):
                        lookup(n)
                    n += 1
    return store.events(run.run_id)


def dataset(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's one dataset, which must be inline (no URL, no file)."""
    assert "url" not in json.dumps(spec)
    assert list(spec["datasets"]) == [spec["data"]["name"]]
    values: list[dict[str, Any]] = spec["datasets"][spec["data"]["name"]]
    return values


def test_chart_has_inline_data_encodings_and_tooltips(store: SqlStore) -> None:
    events = small_run(store)
    rows = timeline_rows(events)
    timeline = timeline_chart(events)
    assert isinstance(timeline, TimelineChart)
    spec = timeline.to_dict()
    values = dataset(spec)
    assert len(values) == len(rows) == len(timeline.values)
    # The title counts the run in the words every view uses: 7 events, not 5 rows.
    assert spec["title"] == (f"Run {events[0].run_id[:12]} (bot): 7 events: 1 step, 4 calls "
                             "(1 model, 3 tool), 1 denied, 1 error")
    assert timeline.counts == count_events(events)

    bars, waits, points, found_bars, found_points, labels = spec["layer"]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == [
        "bar", "bar", "point", "bar", "point", "text"]
    assert bars["transform"] == [{"filter": "!datum.instant && !datum.wait"}]
    assert waits["transform"] == [{"filter": "datum.wait"}]
    assert waits["mark"]["strokeDash"] == [4, 2]
    assert points["transform"] == [{"filter": "datum.instant"}]
    assert found_bars["transform"] == [
        {"filter": "isValid(datum.finding) && !datum.instant"}]
    assert found_points["transform"] == [{"filter": "isValid(datum.finding) && datum.instant"}]
    assert labels["encoding"]["text"]["field"] == "label"
    assert labels["encoding"]["x"]["field"] == "label_x"
    enc = bars["encoding"]
    assert (enc["x"]["field"], enc["x"]["type"], enc["x2"]["field"]) == (
        "start", "quantitative", "end")
    assert enc["x"]["title"] == "time since start (ms)"
    assert (enc["y"]["field"], enc["y"]["type"]) == ("lane", "nominal")
    assert enc["y"]["sort"] == ["step", "llm", "tool"]  # the lanes present, in lane order
    assert "'tool calls'" in enc["y"]["axis"]["labelExpr"]  # the lanes are named
    assert enc["yOffset"]["field"] == "level"
    assert enc["color"]["field"] == "status"
    assert enc["color"]["scale"]["domain"] == ["ok", "denied", "error"]
    # Every mark's tooltip is its row's own fields, as people read them: none "undefined".
    assert all(layer["mark"]["tooltip"] == {"expr": "datum.tip"} for layer in spec["layer"])

    by_name = {v["name"]: v for v in values if v["kind"] != "checkpoint"}
    denied = by_name["forbidden"]
    assert (denied["status"], denied["instant"], denied["policy_rule"], denied["grant"]) == (
        "denied", True, "no", "test-allow-all-bot")
    assert "duration_ms" not in denied  # absent fields are left out, so tooltips skip them
    assert denied["tip"]["tool / model / step"] == "forbidden"
    assert {"took", "cost", "tokens", "approval"}.isdisjoint(denied["tip"])
    assert denied["tip"]["policy rule"] == "no" and denied["tip"]["status"] == "denied"
    assert all(isinstance(v, str) for row in values for v in row["tip"].values())
    # A refused call is a finding: outlined, and its label (after the diamond) says so.
    assert (denied["finding"], denied["label"], denied["ink"]) == (
        "denied", "forbidden ⚑ denied", "#b42318")
    failed = [v for v in values if v["status"] == "error"]
    assert [v["name"] for v in failed] == ["lookup"] and failed[0]["finding"] == "error"
    assert all("finding" not in v for v in values if v["status"] == "ok")
    llm = by_name["gpt-4o"]
    assert (llm["lane"], llm["cost_usd"], llm["tokens"], llm["instant"]) == (
        "llm", 0.01, 15, False)
    assert llm["end"] - llm["start"] == pytest.approx(2.0)
    # Levels count from the shallowest event of each lane: the denied call is top-level.
    assert (by_name["plan"]["level"], by_name["forbidden"]["level"]) == (0, 0)
    assert by_name["lookup"]["level"] == 1
    assert min(v["start"] for v in values) == 0


def test_lanes_by_agent(store: SqlStore) -> None:
    events = small_run(store, agent="planner") + small_run(store, agent="writer")
    spec = timeline_chart(events, lanes="agent", title="two agents").to_dict()
    values = dataset(spec)
    enc = spec["layer"][0]["encoding"]
    assert enc["y"]["axis"]["title"] == "agent" and enc["y"]["sort"] == ["planner", "writer"]
    assert {v["lane"] for v in values} == {"planner", "writer"}
    # Inside an agent's lane, nesting separates a step from the calls it contains.
    plan = next(v for v in values if v["name"] == "plan")
    call = next(v for v in values if v["name"] == "lookup" and v["agent"] == plan["agent"])
    assert call["level"] == plan["level"] + 1
    assert spec["title"] == "two agents"


def test_a_12000_step_run_is_aggregated_below_the_altair_limit(store: SqlStore) -> None:
    events = big_run(store, 12_000)
    rows = timeline_rows(events)
    assert len(rows) == 12_000
    chart = timeline_chart(rows)
    spec = chart.to_dict()
    values = dataset(spec)
    assert 0 < len(values) <= 5000
    assert "aggregated into" in spec["title"] and "more than 5,000 rows" in spec["title"]
    assert sum(v["count"] for v in values) == 12_000
    assert sum(v["errors"] for v in values) == sum(r.status == "error" for r in rows) > 0
    assert {v["lane"] for v in values} == {"step", "tool"}
    bars, marks = spec["layer"]
    tips = {t["field"] for t in bars["encoding"]["tooltip"]}
    assert {"count", "errors", "refused", "findings", "cost_usd", "status", "top"} <= tips
    assert marks["transform"] == [{"filter": "datum.problems > 0 || datum.findings > 0"}]
    assert sum(v["findings"] for v in values) == sum(bool(r.finding) for r in rows) > 0
    # The limit was respected, not switched off: altair's own transformer is untouched.
    assert alt.data_transformers.active == "default"
    assert alt.data_transformers.options.get("max_rows", 5000) == 5000


def test_max_rows_sets_where_aggregation_starts(store: SqlStore) -> None:
    events = small_run(store)
    n = len(timeline_rows(events))
    assert "aggregated" not in timeline_chart(events, max_rows=n).to_dict()["title"]
    spec = timeline_chart(events, max_rows=n - 1).to_dict()
    assert "aggregated" in spec["title"] and len(dataset(spec)) <= n - 1
    problem = [v for v in dataset(spec) if v["problems"]]
    assert problem and all(v["lane"] == "tool" for v in problem)


def test_svg_and_png_render_offline(store: SqlStore, tmp_path: Path) -> None:
    vl_convert = pytest.importorskip("vl_convert")
    chart = timeline_chart(small_run(store))
    svg = vl_convert.vegalite_to_svg(chart.to_dict(), allowed_base_urls=[])
    assert "<svg" in svg and "time since start (ms)" in svg
    written = save_timeline(chart, tmp_path / "run.svg")
    assert written.read_text(encoding="utf-8").lstrip().startswith("<svg")
    png = save_timeline(chart, tmp_path / "run.png", scale=1.5).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    aggregated = timeline_chart(big_run(store, 600), max_rows=100)
    assert "<svg" in vl_convert.vegalite_to_svg(aggregated.to_dict(), allowed_base_urls=[])
    # save_timeline allows no data URL: a chart that would fetch its data fails instead.
    remote = alt.Chart("https://example.com/steps.json").mark_point().encode(x="a:Q")
    with pytest.raises(ValueError, match="not allowed"):
        save_timeline(remote, tmp_path / "remote.svg")


def test_empty_input_and_bad_arguments(store: SqlStore, tmp_path: Path) -> None:
    spec = timeline_chart([]).to_dict()
    assert spec["title"] == "Nothing recorded" and dataset(spec) == []
    events = small_run(store)
    with pytest.raises(ValueError, match="lanes must be 'kind' or 'agent'"):
        timeline_chart(events, lanes="tool")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        timeline_chart(events, max_rows=0)
    with pytest.raises(TypeError, match="not a mix"):
        timeline_chart([*timeline_rows(events), events[0]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"\.html, \.svg or \.png, not 'run\.pdf'"):
        save_timeline(timeline_chart(events), tmp_path / "run.pdf")
    with pytest.raises(TypeError, match="apply to events"):
        timeline_chart(timeline_rows(events), approvals=[])
    with pytest.raises(ValueError, match="'svg' or 'png', not 'gif'"):
        timeline_chart(events).static("gif")  # type: ignore[arg-type]


def test_importing_display_does_not_import_altair() -> None:
    import subprocess
    import sys

    code = ("import sys, agentlab.display; "
            "print('altair' in sys.modules, 'vl_convert' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
