"""One vocabulary of counts: for each of the demo's runs, in a real SQLite store, the numbers
``agentlab show``, ``agentlab verify``, ``agentlab runs``, ``agentlab explain`` and the
timeline's title print are the same numbers, under the same words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.cli import cli
from agentlab.demo import DemoResult, run_demo
from agentlab.model import RunCounts, count_events


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoResult]]:
    path = tmp_path_factory.mktemp("counts") / "demo.db"
    store = al.open_store(path)
    try:
        result = run_demo(store)
    finally:
        store.close()
    yield path, result


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_show_verify_runs_explain_and_timeline_agree(demo_db: tuple[Path, DemoResult]) -> None:
    pytest.importorskip("altair", reason="the notebook extra is not installed")
    from agentlab.display import timeline_chart

    path, demo = demo_db
    verify = invoke("verify", "--store", str(path))
    runs = invoke("runs", "--store", str(path))
    store = al.open_store(path)
    try:
        for run_id in demo.run_ids:
            events = store.events(run_id)
            counts = count_events(events)
            phrase = counts.phrase(governance=False)  # "33 events: 7 steps, 9 calls (...)"
            assert re.fullmatch(r"\d+ events: 7 steps, \d+ calls \(3 model, \d tool\), "
                                r"\d+ state writes", phrase)

            show = invoke("show", run_id, "--store", str(path))
            assert f"counts   {phrase}\n" in show
            assert (f"govern   {counts.approvals} approvals" in show
                    and f"{counts.denied} denied" in show)
            assert re.search(rf"^ok +{run_id} +{counts.events} events, chain intact$", verify,
                             re.MULTILINE)
            row = next(line for line in runs.splitlines()[1:] if run_id.startswith(line.split()[0]))
            assert row.split()[5:7] == [str(counts.events), str(counts.calls)]

            explained = invoke("explain", run_id, "--store", str(path)).splitlines()
            assert explained[1] == counts.phrase()

            title = timeline_chart(events).title
            assert title == f"Run {run_id[:12]} (triage-bot): {counts.phrase()}" + (
                title[title.index("; waited"):])
    finally:
        store.close()


def test_counting_events_agrees_with_the_run_summary(demo_db: tuple[Path, DemoResult]
                                                     ) -> None:
    """Events counted one by one and the summary's counters (kept as they were written)
    follow the same rules."""
    path, demo = demo_db
    store = al.open_store(path)
    try:
        for run_id in demo.run_ids:
            counted = count_events(store.events(run_id))
            kept = RunCounts.of_summary(store.run(run_id))
            for name in ("events", "model_calls", "tool_calls", "calls", "approvals",
                         "denied", "errors", "retries"):
                assert getattr(counted, name) == getattr(kept, name), name
            assert kept.steps is None and counted.steps == 7
    finally:
        store.close()
    assert RunCounts(events=3, steps=1, model_calls=1, tool_calls=0, messages=0,
                     state_writes=0, retries=2).phrase() == (
        "3 events: 1 step, 1 call (1 model, 0 tool), 2 retries")
