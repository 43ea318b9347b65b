"""The SWE-agent importer on the two vendored trajectories (sample_traces/third_party),
one in each of SWE-agent's layouts, and on malformed ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from agentlab.errors import ImportFormatError
from agentlab.integrations import import_swe_agent
from agentlab.integrations._files import read_source
from agentlab.model import LLMCallEvent, ToolCallEvent
from agentlab.store import SqlStore, open_store

SWE = Path(__file__).parents[2] / "sample_traces/third_party/swe-agent"
TRAJS = sorted(SWE.glob("*.traj.gz"))
PYDICOM = SWE / "pydicom__pydicom-1458.gpt4.traj.gz"
MARSHMALLOW = SWE / "marshmallow-code__marshmallow-1867.function_calling_replace.traj.gz"


def _raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_source(path))
    return data


def test_both_layouts_are_vendored() -> None:
    assert [p.name for p in TRAJS] == [MARSHMALLOW.name, PYDICOM.name]


@pytest.mark.parametrize("traj", TRAJS, ids=[p.name.split(".")[0] for p in TRAJS])
def test_every_vendored_trajectory_imports_whole_and_once(tmp_path: Path, traj: Path) -> None:
    raw = _raw(traj)
    steps = raw["trajectory"]
    store = open_store(tmp_path / "swe.db")
    [run_id] = import_swe_agent(traj, store)
    run = store.run(run_id)
    events = store.events(run_id)
    # One model call and one tool call per step; the state checkpointed when it changed.
    assert run.llm_calls == run.tool_calls == len(steps)
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [c.result for c in calls] == [s["observation"] for s in steps]
    assert [c.source for c in calls] == [f"trajectory[{i}]" for i in range(len(steps))]
    checkpoints = [e for e in events if e.kind == "checkpoint"]
    assert 1 <= len(checkpoints) <= len(steps)
    last_state = steps[-1]["state"]
    last_state = json.loads(last_state) if isinstance(last_state, str) else last_state
    assert store.state_at(run_id) == last_state
    assert run.task_id == traj.name.split(".")[0]
    assert run.status == "succeeded" and run.success is None  # submitted; resolution unknown
    started = events[0]
    assert started.kind == "run_started"
    assert started.metadata["exit_status"] == raw["info"]["exit_status"] == "submitted"
    assert started.metadata["synthetic_times"] is True
    assert [e.ts for e in events] == sorted({e.ts for e in events})  # strictly increasing
    assert all(v.ok for v in store.verify())
    # Again, from a plain copy under another name: the same run, nothing added.
    plain = tmp_path / "copy.traj"
    plain.write_bytes(read_source(traj))
    assert import_swe_agent(plain, store) == [run_id]
    assert len(store.runs()) == 1 and len(store.events(run_id)) == len(events)
    store.close()


def _llm_calls(store: SqlStore, run_id: str) -> list[LLMCallEvent]:
    return [e for e in store.events(run_id) if isinstance(e, LLMCallEvent)]


def test_the_older_layout_gives_cost_tokens_and_commands(tmp_path: Path) -> None:
    store = open_store(tmp_path / "swe.db")
    [run_id] = import_swe_agent(PYDICOM, store)
    run = store.run(run_id)
    # info.model_stats: the run's totals, on its last model call.
    assert run.cost_usd == pytest.approx(1.26719)
    assert (run.input_tokens, run.output_tokens) == (122612, 1369)
    calls = _llm_calls(store, run_id)
    assert [c.cost_usd for c in calls[:-1]] == [None] * (len(calls) - 1)
    assert calls[-1].cost_source == "price_table"
    assert run.agent_version is None and calls[0].model == "unknown"  # the file does not say
    tools = [e for e in store.events(run_id) if isinstance(e, ToolCallEvent)]
    first = tools[0]
    assert (first.tool, first.arguments) == ("create", {"command": "create reproduce_bug.py"})
    assert first.result == "[File: /pydicom__pydicom/reproduce_bug.py (1 lines total)]\n1:\n"
    assert first.side_effect
    assert tools[-1].tool == "submit" and tools[-1].result.lstrip().startswith("diff --git")
    opens = [t for t in tools if t.tool in ("open", "search_file", "find_file", "goto")]
    assert opens and not any(t.side_effect for t in opens)
    # The issue is the task input (the demonstration before it is left out).
    started = store.events(run_id, kinds=["run_started"])[0]
    assert "Pixel Representation attribute should be optional" in str(
        started.task_input["problem_statement"])
    store.close()


def test_the_newer_layout_gives_tool_calls_durations_and_the_model(tmp_path: Path) -> None:
    store = open_store(tmp_path / "swe.db")
    [run_id] = import_swe_agent(MARSHMALLOW, store)
    run = store.run(run_id)
    assert run.task_id == "marshmallow-code__marshmallow-1867"
    assert run.agent_version == "gpt-4o"
    # A replayed demonstration: model_stats are zero, so cost and tokens stay unknown.
    assert run.cost_usd == 0 and run.input_tokens == 0
    assert all(c.cost_usd is None and c.cost_source == "unknown"
               for c in _llm_calls(store, run_id))
    tools = [e for e in store.events(run_id) if isinstance(e, ToolCallEvent)]
    first = tools[0]
    assert (first.tool, first.arguments, first.call_id) == (
        "create", {"filename": "reproduce.py"}, "call_cyI71DYnRdoLHWwtZgIaW2wr")
    assert first.duration_ms == pytest.approx(238.734, abs=0.001)
    assert first.result == "[File: reproduce.py (1 lines total)]\r\n1:"
    assert tools[-1].tool == "submit" and tools[-1].call_id == "call_submit"
    # The tool's recorded duration separates the call from the next event.
    events = store.events(run_id)
    nxt = events[events.index(first) + 1]
    assert (nxt.ts - first.ts).total_seconds() == pytest.approx(0.238734, abs=1e-3)
    store.close()


def test_a_folder_imports_every_trajectory_under_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "swe.db")
    ticks: list[tuple[int, int]] = []
    ids = import_swe_agent(SWE, store, progress=lambda done, total: ticks.append((done, total)))
    assert len(ids) == 2 and ticks == [(1, 2), (2, 2)]
    assert {r.task_id for r in store.runs()} == {
        "pydicom__pydicom-1458", "marshmallow-code__marshmallow-1867"}
    store.close()


def _write_traj(path: Path, data: dict[str, Any]) -> Path:
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    return path


def test_a_malformed_trajectory_is_a_typed_error_with_its_path(tmp_path: Path) -> None:
    store = open_store(tmp_path / "swe.db")
    data = _raw(MARSHMALLOW)
    data["trajectory"][3]["action"] = 42
    data["history"] = []  # no tool_calls to read: the action text is what is read
    bad = _write_traj(tmp_path / "bad.traj.gz", data)
    with pytest.raises(ImportFormatError) as caught:
        import_swe_agent(bad, store)
    err = caught.value
    assert err.at == "$.trajectory[3].action" and err.file == str(bad) and err.run
    assert str(bad) in str(err) and "expected a string, found a number 42" in str(err)
    # A folder with one good and one bad file imports nothing.
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "good.traj").write_bytes(read_source(PYDICOM))
    data = _raw(PYDICOM)
    data["trajectory"][5]["state"] = "{not json"
    _write_traj(folder / "worse.traj.gz", data)
    with pytest.raises(ImportFormatError, match=r"at \$\.trajectory\[5\]\.state"):
        import_swe_agent(folder, store)
    not_traj = tmp_path / "x.traj"
    not_traj.write_text("[1, 2]")
    with pytest.raises(ImportFormatError, match="not a SWE-agent trajectory"):
        import_swe_agent(not_traj, store)
    assert store.runs() == []
    store.close()


def test_exit_statuses_become_outcomes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "swe.db")
    base = _raw(PYDICOM)
    got = {}
    for status in ("submitted (exit_cost)", "exit_cost", "exit_error"):
        data = {**base, "info": {**base["info"], "exit_status": status}}
        [run_id] = import_swe_agent(_write_traj(tmp_path / f"{status}.traj.gz", data), store)
        ended = store.events(run_id, kinds=["run_ended"])[0]
        got[status] = (ended.status, ended.error.message if ended.error else None)
    assert got == {"submitted (exit_cost)": ("succeeded", None),
                   "exit_cost": ("failed", "exit_cost"),
                   "exit_error": ("errored", "exit_error")}
    store.close()
