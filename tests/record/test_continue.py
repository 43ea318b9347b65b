"""``record_run(run_id=..., resume=True, catch_up=False)``: a paused run carried on live at
once, by code that continues where it stopped instead of running again from the start."""

from __future__ import annotations

import pytest

import agentlab as al
from agentlab.errors import RecordingError
from agentlab.store import SqlStore

done: list[str] = []


@al.tool
def send(text: str) -> str:
    done.append(text)
    return f"sent {text}"


def test_a_paused_run_continues_live_without_catching_up(store: SqlStore) -> None:
    done.clear()
    with al.record_run("wf", agent="bot", store=store, run_id="r-cont", resume=True) as run:
        run.state.update({"step": 1, "ticket": "SUP-57"})
        assert send("a") == "sent a"
        run.pause("waits for a person")
    assert store.run("r-cont").status == "running"

    # the code does not redo send("a"): a catch-up would refuse this as another call
    with al.record_run("wf", agent="bot", store=store, run_id="r-cont", resume=True,
                       catch_up=False) as run:
        assert run.mode.live
        assert run.state.snapshot() == {"step": 1, "ticket": "SUP-57"}  # the recorded state
        assert send("b") == "sent b"
        run.state["step"] = 2
        run.outcome(success=True)
    assert done == ["a", "b"]
    events = store.events("r-cont")
    assert [e.kind for e in events if e.kind != "checkpoint"] == [
        "run_started", "tool_call", "run_resumed", "tool_call", "run_ended"]
    (resumed,) = [e for e in events if e.kind == "run_resumed"]
    assert resumed.reason.startswith("continued live")
    assert [e.result for e in events if e.kind == "tool_call"] == ["sent a", "sent b"]
    assert store.state_at("r-cont") == {"step": 2, "ticket": "SUP-57"}
    assert len([e for e in events if e.kind == "checkpoint"]) == 2  # nothing written twice
    assert store.run("r-cont").status == "succeeded"


def test_the_same_code_under_catch_up_diverges(store: SqlStore) -> None:
    """What catch_up=False is for: catching up needs the code to do again what it did."""
    with al.record_run("wf", agent="bot", store=store, run_id="r-div", resume=True) as run:
        send("a")
        run.pause("waits")
    with pytest.raises(al.ReplayDivergence), al.record_run(
            "wf", agent="bot", store=store, run_id="r-div", resume=True):
        send("b")


def test_continuing_needs_resume_and_an_unfinished_run(store: SqlStore) -> None:
    with pytest.raises(RecordingError, match="pass resume=True"):
        al.record_run("wf", agent="bot", store=store, run_id="r-x", catch_up=False)
    with al.record_run("wf", agent="bot", store=store, run_id="r-end", resume=True):
        pass
    with pytest.raises(RecordingError, match="already ended"), al.record_run(
            "wf", agent="bot", store=store, run_id="r-end", resume=True, catch_up=False):
        pass


def test_a_new_run_id_starts_a_run(store: SqlStore) -> None:
    with al.record_run("wf", agent="bot", store=store, run_id="r-new", resume=True,
                       catch_up=False) as run:
        run.outcome(success=True)
    assert [e.kind for e in store.events("r-new")] == ["run_started", "run_ended"]
