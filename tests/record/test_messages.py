"""Messages and expectations as recorded events: what they store, how they count, how a
replay and a resume treat them, and the errors on bad input."""

from __future__ import annotations

from typing import Any

import pytest

import agentlab as al
from agentlab.errors import RecordingError
from agentlab.model import ExpectationEvent, ExpectedAction, MessageEvent
from agentlab.record import current_run
from agentlab.recovery import replay
from agentlab.store import SqlStore

SAID: dict[str, str] = {"answer": "The refund is 40 EUR."}


@al.tool
def look_up(order: str) -> dict[str, Any]:
    return {"order": order, "amount": 40}


@al.agent("chat", version="1", name="chat-bot")
def chatty(task_input: dict[str, Any]) -> str:
    run = current_run()
    assert run is not None
    al.message(task_input["question"], role="user")
    look_up(task_input["order"])
    run.message(SAID["answer"])
    run.outcome(success=True)
    return SAID["answer"]


def test_messages_and_expectations_are_stored_and_counted(store: SqlStore) -> None:
    expected = {"actions": [{"name": "refund", "kwargs": {"order": "O-1"}}],
                "outputs": ["40 EUR"], "note": "gold from the ticket"}
    with al.record_run("chat", agent="bot", store=store, expected=expected) as run:
        run.message("How much is my refund?", role="user")
        run.message({"speaker": "planner", "plan": [1, 2]}, agent="planner")
        al.expect(outputs=["40"])
    events = store.events(run.run_id)
    exp = [e for e in events if isinstance(e, ExpectationEvent)]
    msgs = [e for e in events if isinstance(e, MessageEvent)]
    assert exp[0].actions == [ExpectedAction(name="refund", arguments={"order": "O-1"})]
    assert exp[0].outputs == ["40 EUR"] and exp[0].note == "gold from the ticket"
    assert exp[0].seq == 2  # stated right after the run started, before anything else
    assert exp[1].outputs == ["40"] and exp[1].actions is None
    assert [(m.role, m.agent, m.content) for m in msgs] == [
        ("user", None, "How much is my refund?"),
        ("assistant", "planner", {"speaker": "planner", "plan": [1, 2]})]
    summary = store.run(run.run_id)
    assert summary.step_count == 2  # messages are steps; expectations are not
    assert store.verify(run.run_id)[0].ok


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"expected": ["40"]}, "takes a mapping"),
    ({"expected": {"output": ["40"]}}, "unknown keys"),
    ({"expected": {"note": "only a note"}}, "actions, outputs or both"),
    ({"expected": {"actions": [{"tool": "refund"}]}}, "action 0 .* 'name'"),
    ({"expected": {"actions": [{"name": "refund", "arguments": [1]}]}}, "must be a mapping"),
])
def test_bad_expectations_are_refused_before_anything_is_recorded(
        store: SqlStore, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(RecordingError, match=match):
        al.record_run("chat", agent="bot", store=store, **kwargs)
    assert store.runs() == []


def test_bad_message_role_and_calls_outside_a_run_are_refused(store: SqlStore) -> None:
    with al.record_run("chat", agent="bot", store=store) as run:
        with pytest.raises(RecordingError, match="role must be"):
            run.message("hi", role="tool")  # type: ignore[arg-type]
        with pytest.raises(RecordingError, match="actions, outputs or both"):
            run.expect()
    with pytest.raises(RecordingError, match="inside a recorded run"):
        al.expect(outputs=["x"])
    with pytest.raises(RecordingError, match="inside a recorded run"):
        al.message("hello")


def test_a_strict_replay_compares_messages(store: SqlStore) -> None:
    # Like steps and checkpoints, a message is compared after the run (calls stop it at
    # once): the same words reproduce the run, other words make it differ.
    rec = chatty.run({"question": "refund?", "order": "O-1"}, store=store)
    same = replay(store, rec.run_id, mode="strict")
    assert same.identical, same.to_text()
    SAID["answer"] = "The refund is 45 EUR."
    try:
        changed = replay(store, rec.run_id, mode="strict")
    finally:
        SAID["answer"] = "The refund is 40 EUR."
    assert not changed.identical and not changed.divergences
    said = [e.content for e in store.events(changed.run_id) if isinstance(e, MessageEvent)]
    assert said == ["refund?", "The refund is 45 EUR."]


def test_a_resume_does_not_record_a_message_twice(store: SqlStore) -> None:
    run_id = "chat-resumed"
    with pytest.raises(RuntimeError), al.record_run(
            "chat", agent="bot", store=store, run_id=run_id, resume=True,
            expected={"outputs": ["40"]}) as run:
        run.message("refund?", role="user")
        raise RuntimeError("crash after the first message")
    with al.record_run("chat", agent="bot", store=store, run_id=run_id, resume=True,
                       expected={"outputs": ["40"]}) as run:
        run.message("refund?", role="user")
        run.message("40 EUR")
    kinds = [e.kind for e in store.events(run_id)]
    assert kinds.count("expectation") == 1
    assert [e.content for e in store.events(run_id) if isinstance(e, MessageEvent)] == [
        "refund?", "40 EUR"]
    assert store.verify(run_id)[0].ok
