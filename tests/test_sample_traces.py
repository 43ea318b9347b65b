"""The committed sample traces stay readable: format stability across versions."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentlab.demo import sample_lines
from agentlab.model import ApprovalEvent, ToolCallEvent
from agentlab.store import open_store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_traces" / "support-triage-demo.jsonl"


def test_demo_sample_imports_verifies_and_tells_its_story(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    result = store.import_runs(SAMPLE)
    assert len(result.imported) == 3 and result.skipped == []
    assert all(r.ok for r in store.verify())
    good, bad, rejected = (store.run(run_id) for run_id in result.imported)
    assert (good.status, bad.status, rejected.status) == ("succeeded", "failed", "failed")
    assert good.task_id == bad.task_id == "ticket:T-1001"
    assert rejected.task_id == "ticket:T-1004"
    bad_lookup = next(e for e in store.events(bad.run_id, kinds=["tool_call"])
                      if e.tool == "lookup_account")
    assert bad_lookup.result["source"] == "cache"
    assert store.state_at(bad.run_id)["priority"] != store.state_at(good.run_id)["priority"]

    # The governance story survives the round trip: who approved, edited and rejected.
    actions = {r.run_id: [e.action for e in store.events(r.run_id, kinds=["approval"])
                          if isinstance(e, ApprovalEvent)] for r in (good, bad, rejected)}
    assert actions == {good.run_id: ["approve", "approve"], bad.run_id: ["edit", "approve"],
                       rejected.run_id: ["reject", "approve"]}
    assert (bad.override_count, rejected.override_count, rejected.denied_count) == (1, 1, 1)
    calls = [e for r in (good, bad, rejected) for e in store.events(r.run_id, kinds=["tool_call"])
             if isinstance(e, ToolCallEvent)]
    assert all(c.grant and c.credential for c in calls)
    assert store.import_runs(SAMPLE).skipped == result.imported
    store.close()


SCENARIO = SAMPLE.with_name("support-triage-scenario.jsonl.gz")


_FRAME = re.compile(r'File "[^"]*?(agentlab/[^"]+)", line \d+')


def _comparable(data: bytes) -> list[Any]:
    """The lines of a portable file, without what may differ between the committed sample
    and a new recording of the same scenario: the agentlab version in a header, and where
    the code that raised sits (a traceback names the checkout's path and the recorder's line
    numbers; the frames, files and functions are kept). The hash chain covers the
    tracebacks, so it is left out too; every other field of every line is compared."""
    out: list[Any] = []
    for raw in data.splitlines():
        line = orjson.loads(raw)
        if line.get("type") == "header":
            line.pop("agentlab_version")
        elif line.get("type") == "event":
            line.pop("hash")
            error = line.get("body", {}).get("error")
            if isinstance(error, dict) and isinstance(error.get("traceback"), str):
                error["traceback"] = _FRAME.sub(r'File "\1"', error["traceback"])
        elif line.get("type") == "end":
            line.pop("head")
        out.append(line)
    return out


def test_scenario_sample_is_what_the_generator_records_now() -> None:
    """The committed sample cannot rot: recording the scenario again gives the same runs,
    event for event, id for id. When the agent or the scenario changes on purpose, make it
    again with `agentlab demo --regenerate-sample`."""
    committed = _comparable(gzip.decompress(SCENARIO.read_bytes()))
    fresh = _comparable(sample_lines())
    if committed != fresh:
        first = next((i for i, (a, b) in enumerate(zip(committed, fresh, strict=False))
                      if a != b), min(len(committed), len(fresh)))
        pytest.fail(
            f"{SCENARIO.name} differs from what the scenario records now, from line "
            f"{first + 1} ({len(committed)} committed lines, {len(fresh)} recorded): if the "
            "change is intended, run `agentlab demo --regenerate-sample` and commit the file"
        )
    assert SCENARIO.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as importers detect it
