"""Recovery on the runs real agents make, each case a defect found in review and the test
that failed before its fix: resumes after resumes, caught divergences, concurrent
recoveries, governance carried over, secrets in errors, nested tools, tools that write
state, errors with attributes, forks at refusals, async agents, concurrent calls."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

import agentlab as al
from agentlab.errors import RecordingError, RecoveryError, ReplayDivergence
from agentlab.model import ToolCallEvent
from agentlab.record import current_run, llm, tool
from agentlab.recovery import fork, replay, resume, rollback
from agentlab.store import SqlStore

WORLD: list[str] = []
SWITCH: dict[str, Any] = {}


class Down(Exception):
    pass


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@tool
def read(key: str) -> dict[str, Any]:
    if SWITCH.get("down") == key:
        raise Down(f"{key}: the service is down")
    WORLD.append(f"read {key}")
    return {"key": key}


@tool(side_effect=True, scope="w:write", stub=lambda text: {"stub": text})
def publish(text: str) -> dict[str, Any]:
    WORLD.append(f"publish {text}")
    return {"published": text}


@pytest.fixture(autouse=True)
def clean() -> None:
    WORLD.clear()
    SWITCH.clear()


@pytest.fixture
def granted(store: SqlStore) -> SqlStore:
    al.issue_grant(store, "w", principal="bot", owner="t", workflow="wf", scopes=["w:*"],
                   expires_in=timedelta(hours=1))
    return store


def _record(store: SqlStore, fn: Any, **kw: Any) -> str:
    run = al.record_run("wf", agent="bot", store=store, grants=["w"], **kw)
    try:
        with run:
            fn(None)
    except Exception:
        pass
    return run.run_id


def flaky_then_publish(task_input: Any) -> None:
    read("a")
    publish("hello")
    read("b")
    current_run().outcome(success=True)  # type: ignore[union-attr]


def test_a_run_resumed_after_two_failures_does_each_side_effect_once(granted: SqlStore) -> None:
    SWITCH["down"] = "b"
    run_id = _record(granted, flaky_then_publish)
    assert granted.run(run_id).status == "errored" and WORLD.count("publish hello") == 1
    first = resume(granted, run_id, agent=flaky_then_publish)  # still down: errors again
    assert first.outcome.status == "errored" and first.error and "down" in first.error
    SWITCH.clear()
    second = resume(granted, run_id, agent=flaky_then_publish)
    assert second.outcome.status == "succeeded", second
    assert WORLD.count("publish hello") == 1, WORLD  # never again, across two resumes
    assert granted.verify(run_id)[0].ok


def test_a_refusal_that_ended_a_run_is_asked_again_on_resume(granted: SqlStore) -> None:
    policy = al.Policy([al.Rule("ask", "approve", tool="publish")])
    run_id = _record(granted, flaky_then_publish, policy=policy)  # no approver: refused
    assert granted.run(run_id).denied_count == 1
    result = resume(granted, run_id, agent=flaky_then_publish, policy=policy,
                    approver=al.auto_approve("tests"))
    assert result.outcome.status == "succeeded" and WORLD.count("publish hello") == 1


def test_a_recovery_without_the_runs_policy_is_refused(granted: SqlStore) -> None:
    policy = al.Policy([al.Rule("ask", "approve", tool="publish")])
    SWITCH["down"] = "a"
    run_id = _record(granted, flaky_then_publish, policy=policy)
    SWITCH.clear()
    with pytest.raises(RecoveryError, match=r"governed by a policy \(rules ask\)"):
        resume(granted, run_id, agent=flaky_then_publish)
    with pytest.raises(RecoveryError, match="pass it again"):
        replay(granted, run_id, agent=flaky_then_publish, mode="after_fix")
    assert WORLD == ["read a"] or WORLD == []  # nothing ran in the refused recoveries
    started = granted.events(run_id)[0]
    assert started.governance.policy == ["ask"]  # type: ignore[union-attr]
    assert started.governance.grants == ["w"]  # type: ignore[union-attr]


def test_a_caught_divergence_never_turns_a_resume_live(granted: SqlStore) -> None:
    counter = {"n": 0}

    def noisy(task_input: Any) -> None:
        for item in ("a", "b"):
            try:
                counter["n"] += 1
                read(f"{item}-{counter['n']}")  # not the same arguments on every run
                publish(item)
            except Exception as exc:  # the agent swallows everything
                current_run().error(exc)  # type: ignore[union-attr]

    run = al.record_run("wf", agent="bot", store=granted, grants=["w"])
    run.__enter__()
    noisy(None)
    _abandon(run)
    published = WORLD.count("publish a") + WORLD.count("publish b")
    with pytest.raises(ReplayDivergence):
        resume(granted, run.run_id, agent=noisy)
    assert WORLD.count("publish a") + WORLD.count("publish b") == published


def test_a_run_carried_on_by_a_live_recorder_is_not_taken_up(granted: SqlStore) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(task_input: Any) -> None:
        read("a")
        entered.set()
        release.wait(10)
        publish("once")

    run = al.record_run("wf", agent="bot", store=granted, grants=["w"], run_id="held-1",
                        resume=True)
    thread = threading.Thread(target=lambda: _in(run, slow))
    thread.start()
    assert entered.wait(10)
    holder = granted.run("held-1").holder
    assert holder is not None and holder.endswith(run._holder.rsplit(":", 1)[1])
    with pytest.raises(RecordingError, match="being carried on by"):
        resume(granted, "held-1", agent=slow)
    release.set()
    thread.join(10)
    assert WORLD.count("publish once") == 1
    assert granted.run("held-1").holder is None


def _abandon(run: al.RunRecorder) -> None:
    """The recorder's process 'dies': what it queued is flushed, then it records nothing
    more and no longer holds the run."""
    from agentlab.record._context import frame_var, run_var

    run.flush()
    run._ended = True
    run._let_go()
    run_tok, frame_tok = run._tokens
    frame_var.reset(frame_tok)
    run_var.reset(run_tok)


def _in(run: al.RunRecorder, fn: Any) -> None:
    with run:
        fn(None)


def test_two_new_runs_under_one_chosen_id_cannot_both_start(granted: SqlStore) -> None:
    first = al.record_run("wf", agent="bot", store=granted, run_id="chosen-1", resume=True)
    first.__enter__()
    second = al.record_run("wf", agent="bot", store=granted, run_id="chosen-1", resume=True)
    with pytest.raises(RecordingError):
        second.__enter__()
    first.__exit__(None, None, None)
    assert [e.kind for e in granted.events("chosen-1")] == ["run_started", "run_ended"]


def test_divergence_messages_never_show_a_secret(granted: SqlStore, monkeypatch: Any) -> None:
    monkeypatch.setenv("EDGE_TOKEN", "tok_9f8e7d6c5b4a39281706ab")
    al.issue_grant(granted, "api", principal="bot", owner="t", workflow="wf",
                   scopes=["api:read"], secret="env:EDGE_TOKEN", expires_in=timedelta(hours=1))

    @tool(scope="api:read")
    def search(q: str, token: str) -> str:
        return q

    def agent(task_input: Any) -> None:
        search("old", "tok_9f8e7d6c5b4a39281706ab")  # a known secret passed as an argument

    def changed(task_input: Any) -> None:
        search("new", "tok_9f8e7d6c5b4a39281706ab")

    with al.record_run("wf", agent="bot", store=granted, grants=["api"]) as run:
        agent(None)
    with pytest.raises(ReplayDivergence) as caught:
        replay(granted, run.run_id, agent=changed)
    assert "tok_9f8e7d6c5b4a39281706ab" not in str(caught.value)
    assert caught.value.result is not None
    assert "tok_9f8e7d6c5b4a39281706ab" not in caught.value.result.to_text()


def test_calls_inside_a_live_tool_are_the_tools_not_compared(granted: SqlStore) -> None:
    @tool
    def enrich(key: str) -> dict[str, Any]:
        return {"inner": read(key)}

    def before(task_input: Any) -> None:
        read("x")

    def after(task_input: Any) -> None:
        enrich("x")  # a new tool, which reads x inside
        read("x")

    with al.record_run("wf", agent="bot", store=granted) as run:
        before(None)
    WORLD.clear()
    result = replay(granted, run.run_id, agent=after, live_reads=True)
    assert WORLD == ["read x"]  # the nested read ran (its tool did); the agent's was served
    outer = [d for d in result.divergences if (d.actual or {}).get("name") == "enrich"]
    assert [d.handled for d in outer] == ["live"] and len(result.divergences) == 1


def test_a_served_tool_leaves_the_state_it_wrote(granted: SqlStore) -> None:
    @tool
    def remember(key: str) -> str:
        current_run().state["cache"] = {"key": key}  # type: ignore[union-attr]
        return key

    def agent(task_input: Any) -> None:
        run = current_run()
        assert run is not None
        run.state["decision"] = remember("k") + "!"
        read("after")
        run.outcome(success=True)

    with al.record_run("wf", agent="bot", store=granted) as run:
        agent(None)
    assert replay(granted, run.run_id, agent=agent, mode="strict").identical
    SWITCH["down"] = "after"
    crashed = _record(granted, agent)
    SWITCH.clear()
    result = resume(granted, crashed, agent=agent)
    assert result.outcome.status == "succeeded"
    assert granted.state_at(crashed)["cache"] == {"key": "k"}


def test_a_recorded_error_comes_back_with_its_attributes(granted: SqlStore) -> None:
    @tool
    def fetch(url: str) -> str:
        raise HTTPError(503, "unavailable")

    def agent(task_input: Any) -> None:
        try:
            fetch("u")
        except HTTPError as exc:
            current_run().state["status"] = exc.status  # type: ignore[union-attr]

    with al.record_run("wf", agent="bot", store=granted) as run:
        agent(None)
    assert replay(granted, run.run_id, agent=agent, mode="strict").identical


def test_a_fork_can_answer_a_call_that_was_refused(granted: SqlStore) -> None:
    policy = al.Policy([al.Rule("no", "deny", tool="read")])

    def agent(task_input: Any) -> None:
        run = current_run()
        assert run is not None
        try:
            run.state["r"] = read("a")
        except al.ToolDeniedError:
            run.state["r"] = None
        run.outcome(success=run.state["r"] is not None)

    run_id = _record(granted, agent, policy=policy)
    call = next(e for e in granted.events(run_id) if isinstance(e, ToolCallEvent))
    assert call.status == "denied"
    result = fork(granted, run_id, at=call.seq, result={"key": "a"}, agent=agent,
                  policy=policy)
    assert result.flipped and result.outcome.success is True


def test_a_model_call_reported_after_the_fact_is_not_a_fork_point(granted: SqlStore) -> None:
    def agent(task_input: Any) -> None:
        current_run().llm_call("m", messages=[{"role": "user", "content": "q"}],  # type: ignore[union-attr]
                               response="a")

    with al.record_run("wf", agent="bot", store=granted) as run:
        agent(None)
    seq = granted.events(run.run_id, kinds=["llm_call"])[0].seq
    with pytest.raises(RecoveryError, match="reported after the agent made it"):
        fork(granted, run.run_id, at=seq, result="b", agent=agent)


def test_an_async_agent_is_run_to_completion(granted: SqlStore) -> None:
    @llm(model="m")
    async def ask(messages: list[dict[str, Any]]) -> str:
        return "answer"

    @al.agent("wf", name="bot")
    async def agent(task_input: Any) -> str:
        read("a")
        return await ask([{"role": "user", "content": "q"}])

    result = agent.run(None, store=granted)
    assert result.output == "answer" and granted.run(result.run_id).llm_calls == 1
    assert replay(granted, result.run_id, agent=agent, mode="strict").identical
    assert asyncio.run(agent.arun(None, store=granted)).output == "answer"


def test_concurrent_calls_replay_in_the_order_they_started(granted: SqlStore) -> None:
    @tool
    async def slow() -> str:
        await asyncio.sleep(0.05)
        return "slow"

    @tool
    async def fast() -> str:
        return "fast"

    @al.agent("wf", name="bot")
    async def agent(task_input: Any) -> list[str]:
        return list(await asyncio.gather(slow(), fast()))

    run_id = agent.run(None, store=granted).run_id
    calls = [e.tool for e in granted.events(run_id, kinds=["tool_call"])]  # type: ignore[union-attr]
    assert calls == ["fast", "slow"]  # recorded as they finished
    assert replay(granted, run_id, agent=agent, mode="strict").identical


def test_a_rollback_whose_undo_cannot_be_scoped_lists_it_and_goes_on(granted: SqlStore) -> None:
    @tool(side_effect=True, scope="w:write",
          compensate=al.Compensation(lambda a, r: None, scope="w:{missing}"))
    def make(name: str) -> str:
        return name

    done: list[str] = []

    @tool(side_effect=True, scope="w:write", compensate=lambda a, r: done.append(r))
    def other(name: str) -> str:
        return name

    def agent(task_input: Any) -> None:
        other("first")
        make("second")

    with al.record_run("wf", agent="bot", store=granted, grants=["w"]) as run:
        agent(None)
    result = rollback(granted, run.run_id, tools=[make, other])
    assert {u.tool: u.status for u in result.undos} == {"make": "failed", "other": "undone"}
    assert done == ["first"]
