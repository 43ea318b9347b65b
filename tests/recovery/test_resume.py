"""Resume in one process: a run interrupted at each kind of point catches up with its record
(nothing executed or written twice) and goes on live; code that does something else is
stopped; an interrupted side effect is reconciled or stops for a human. The kill-and-resume
suite (test_resume_crash.py) does the same across real process deaths."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.errors import RecordingError, ReplayDivergence, ResumeBlockedError
from agentlab.model import ToolCallEvent
from agentlab.record import NOT_APPLIED, agent, current_run, llm, tool
from agentlab.recovery import resume
from agentlab.store import SqlStore

EFFECTS: list[str] = []
"""What reached the world: one entry per execution of ``publish``."""
CRASH: dict[str, Any] = {}


class Interrupted(BaseException):
    """Stands for the process dying between two calls (not an Exception: nothing in the
    agent catches it, and it is raised outside any tool, so no call records it)."""


HANG = threading.Event()  # never set: a tool that waits on it stands for a process that died


def _reconcile(arguments: dict[str, Any], key: str) -> Any:
    return {"published": arguments["text"]} if key in CRASH.get("applied", ()) else NOT_APPLIED


def _maybe_die(point: str) -> None:
    if CRASH.get("at") == point:
        raise Interrupted


@tool
def read(n: int) -> int:
    EFFECTS.append(f"read {n}")
    return n * 10


@tool(side_effect=True, scope="feed:write", reconcile=_reconcile)
def publish(text: str) -> dict[str, Any]:
    if CRASH.get("at") == "inside-publish-before":
        HANG.wait()  # the intent is committed; the process dies before the action
    EFFECTS.append(f"publish {text}")
    if CRASH.get("at") == "inside-publish-after":
        HANG.wait()  # the action took effect; the process dies before its result is recorded
    return {"published": text}


@llm(model="fake")
def summarize(messages: list[dict[str, Any]]) -> str:
    EFFECTS.append("summarize")
    return f"{len(messages)} messages"


@agent("feed", version="1", name="feed-bot", grants=["feed-writer"])
def feed(task_input: Any) -> str:
    run = current_run()
    assert run is not None
    run.state["a"] = read(1)
    run.state["summary"] = summarize([{"role": "user", "content": "hi"}])
    _maybe_die("before-publish")
    with al.step("publish"):
        run.state["posted"] = publish(f"a={run.state['a']}")
    _maybe_die("before-read-2")
    run.state["b"] = read(2)
    run.outcome(success=True)
    return "done"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    EFFECTS.clear()
    CRASH.clear()
    yield
    CRASH.clear()


@pytest.fixture
def granted(store: SqlStore) -> SqlStore:
    al.issue_grant(store, "feed-writer", principal="feed-bot", owner="tests", workflow="feed",
                   scopes=["feed:*"], expires_in=timedelta(hours=1))
    return store


def _interrupt(store: SqlStore, at: str) -> str:
    """Start a run and 'kill' it at ``at``: between two calls (the agent stops there), or
    inside ``publish`` (its thread hangs there forever, as a dead process's would). The run
    is left unended with what its process had committed, as SIGKILL after a flush leaves
    it."""
    CRASH["at"] = at
    run = al.record_run("feed", agent="feed-bot", agent_version="1", store=store,
                        grants=["feed-writer"], code=feed.code)
    started = threading.Event()

    def agent_process() -> None:
        with contextlib.suppress(Interrupted):
            run.__enter__()
            started.set()
            feed.fn(None)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(agent_process,),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while thread.is_alive() and not _reached(at, store, run.run_id):
        assert time.monotonic() < deadline, "the agent never reached the kill point"
        time.sleep(0.01)
    run.flush()
    run._ended = True  # the dead process records nothing more, and holds the run no longer
    run._let_go()
    CRASH.pop("at", None)
    assert store.run(run.run_id).status == "running"
    return run.run_id


def _reached(at: str, store: SqlStore, run_id: str) -> bool:
    """Whether the agent hangs at the kill point inside ``publish``."""
    if at == "inside-publish-after":
        return any(e.startswith("publish") for e in EFFECTS)
    if at == "inside-publish-before":  # the intent is committed before the tool runs
        with contextlib.suppress(Exception):
            return any(e.kind == "tool_intent" for e in store.events(run_id))
    return False


def _calls(store: SqlStore, run_id: str, tool_name: str) -> list[ToolCallEvent]:
    return [e for e in store.events(run_id, kinds=["tool_call"])
            if isinstance(e, ToolCallEvent) and e.tool == tool_name]


@pytest.mark.parametrize("at", ["before-read-2", "before-publish", "inside-publish-before"])
def test_resume_serves_what_was_recorded_and_runs_the_rest_once(granted: SqlStore,
                                                                at: str) -> None:
    run_id = _interrupt(granted, at)
    before = list(EFFECTS)
    result = resume(granted, run_id)
    assert result.outcome.status == "succeeded" and result.error is None
    new = EFFECTS[len(before):]
    assert "read 1" not in new and "summarize" not in new  # served, not executed again
    assert new.count("publish a=10") == (0 if at == "before-read-2" else 1)
    assert EFFECTS.count("publish a=10") == 1
    kinds = [e.kind for e in granted.events(run_id)]
    assert kinds.count("run_started") == 1 and kinds.count("run_resumed") == 1
    assert len(_calls(granted, run_id, "publish")) == 1  # nothing recorded twice
    assert len(_calls(granted, run_id, "read")) == 2
    assert granted.state_at(run_id) == {"a": 10, "summary": "1 messages",
                                        "posted": {"published": "a=10"}, "b": 20}
    assert granted.verify(run_id)[0].ok
    assert result.caught_up >= 2


def test_an_interrupted_side_effect_that_took_effect_is_reconciled_not_repeated(
        granted: SqlStore) -> None:
    run_id = _interrupt(granted, "inside-publish-after")
    intent = next(e for e in granted.events(run_id) if e.kind == "tool_intent")
    CRASH["applied"] = {intent.idempotency_key}  # type: ignore[union-attr]
    assert EFFECTS.count("publish a=10") == 1
    resume(granted, run_id)
    assert EFFECTS.count("publish a=10") == 1, "the resume repeated a side effect"
    [call] = _calls(granted, run_id, "publish")
    assert call.status == "ok" and call.intent_id == intent.call_id  # type: ignore[union-attr]
    assert call.result == {"published": "a=10"}
    assert granted.run(run_id).status == "succeeded" and granted.verify(run_id)[0].ok


def test_without_a_reconcile_hook_an_interrupted_side_effect_stops_for_a_human(
        granted: SqlStore) -> None:
    run_id = _interrupt(granted, "inside-publish-after")
    spec = publish.agentlab  # type: ignore[attr-defined]
    hook = spec.reconcile
    object.__setattr__(spec, "reconcile", None)
    try:
        with pytest.raises(ResumeBlockedError, match="check the system by hand"):
            with al.record_run("feed", agent="feed-bot", store=granted, run_id=run_id,
                               resume=True, grants=["feed-writer"]):
                feed.fn(None)
    finally:
        object.__setattr__(spec, "reconcile", hook)
    assert EFFECTS.count("publish a=10") == 1
    assert granted.run(run_id).status == "errored"  # it says so; resume again after fixing


def test_resume_refuses_code_that_does_something_else(granted: SqlStore) -> None:
    run_id = _interrupt(granted, "before-read-2")

    @agent("feed", version="2", name="feed-bot", grants=["feed-writer"])
    def changed(task_input: Any) -> None:
        run = current_run()
        assert run is not None
        run.state["a"] = read(5)  # not what the record holds

    with pytest.raises(ReplayDivergence, match="resume needs the code that recorded the run"):
        resume(granted, run_id, agent=changed)
    assert "read 5" not in EFFECTS


def test_a_run_that_ended_in_an_error_resumes_from_the_failed_call(granted: SqlStore) -> None:
    class Flaky(Exception):
        pass

    @tool
    def flaky(n: int) -> int:
        if CRASH.get("fail"):
            raise Flaky("the service was down")
        return n

    @agent("feed", version="1", name="feed-bot", grants=["feed-writer"])
    def careful(task_input: Any) -> int:
        run = current_run()
        assert run is not None
        run.state["x"] = read(1)
        value = flaky(7)
        run.outcome(success=True)
        return value

    CRASH.clear()
    CRASH["fail"] = True
    with pytest.raises(Flaky):
        careful.run(None, store=granted)
    [errored] = [r for r in granted.runs() if r.status == "errored"]
    CRASH.clear()
    result = resume(granted, errored.run_id, agent=careful)
    assert result.outcome.status == "succeeded"
    assert EFFECTS.count("read 1") == 1  # served on resume
    assert [c.status for c in _calls(granted, errored.run_id, "flaky")] == ["error", "ok"]
    assert granted.verify(errored.run_id)[0].ok


def test_a_finished_run_is_not_resumed(granted: SqlStore) -> None:
    run_id = feed.run(None, store=granted).run_id
    with pytest.raises(RecordingError, match="already ended"):
        resume(granted, run_id)


def test_resume_takes_up_its_own_run_id_never_a_prefix_match(store: SqlStore) -> None:
    @tool
    def step_(i: int) -> int:
        return i

    with al.record_run("wf", agent="a", store=store, run_id="job-10", resume=True):
        step_(1)
    for other in ("task-20", "task-21"):
        with al.record_run("wf", agent="a", store=store, run_id=other):
            step_(2)
    for new in ("job-1", "task-2"):  # a prefix of finished (or of several) runs: a new run
        with al.record_run("wf", agent="a", store=store, run_id=new, resume=True):
            step_(3)
        assert store.run(new).status == "succeeded" and store.verify(new)[0].ok
        assert [e.kind for e in store.events(new)].count("run_resumed") == 0
    assert store.run("job-10", exact=True).tool_calls == 1
