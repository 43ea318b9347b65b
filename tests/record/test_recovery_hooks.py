"""What the write path gives recovery: model calls a replay can serve (@llm), entry points
that record their code (@agent), recovery hooks on tools, and served values as the agent
expects them (its own types, its own errors)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentlab as al
from agentlab.errors import RecoveryError, ReplayedError
from agentlab.model import LLMCallEvent
from agentlab.record import (
    DEFAULT_PRICES,
    NOT_APPLIED,
    Compensation,
    ModelReply,
    agent,
    current_run,
    llm,
    load_agent,
    tool,
)
from agentlab.recovery import replay
from agentlab.store import SqlStore


class Weather(BaseModel):
    city: str
    celsius: float


@tool
def forecast(city: str) -> Weather:
    return Weather(city=city, celsius=21.5)


class Unavailable(Exception):
    pass


@tool
def flaky_lookup(key: str) -> str:
    raise Unavailable(f"{key} is not there")


@llm(model="fake-gpt", provider="tests")
def ask(messages: list[dict[str, Any]], temperature: float = 0.0) -> ModelReply:
    return ModelReply({"answer": messages[-1]["content"][::-1]}, input_tokens=1000,
                      output_tokens=10)


@llm(model="fake-gpt", returns=Weather)
def ask_weather(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"city": "Oslo", "celsius": -3.0}


SEEN: dict[str, Any] = {}


@agent("hooks", version="2.3", name="hooks-bot")
def hooks_agent(task_input: Any) -> None:
    run = current_run()
    assert run is not None
    w = forecast(task_input["city"])
    SEEN["weather"] = w
    SEEN["answer"] = ask([{"role": "user", "content": "abc"}], temperature=0.5)
    SEEN["typed"] = ask_weather([{"role": "user", "content": "weather?"}])
    try:
        flaky_lookup("k")
    except Unavailable as exc:
        SEEN["error"] = exc
    run.state["celsius"] = w.celsius
    run.outcome(success=True)


def test_a_model_call_is_recorded_with_its_request_usage_and_cost(store: SqlStore) -> None:
    al.set_prices({"fake-gpt": (1.0, 2.0)})
    try:
        run_id = hooks_agent.run({"city": "Oslo"}, store=store).run_id
    finally:
        al.set_prices(dict(DEFAULT_PRICES), replace=True)
    calls = [e for e in store.events(run_id) if isinstance(e, LLMCallEvent)]
    first = calls[0]
    assert first.model == "fake-gpt" and first.provider == "tests"
    assert first.messages == [{"role": "user", "content": "abc"}]
    assert first.parameters == {"temperature": 0.5}
    assert first.response == {"answer": "cba"}
    assert (first.input_tokens, first.output_tokens) == (1000, 10)
    assert first.cost_source == "price_table" and first.cost_usd == pytest.approx(0.00102)
    assert SEEN["answer"] == {"answer": "cba"}  # the caller gets the response, not the reply
    assert store.run(run_id).llm_calls == 2


def test_a_replay_serves_results_and_responses_as_the_functions_return_them(
        store: SqlStore) -> None:
    run_id = hooks_agent.run({"city": "Oslo"}, store=store).run_id
    SEEN.clear()
    result = replay(store, run_id)
    assert result.identical, result.to_text()
    assert isinstance(SEEN["weather"], Weather) and SEEN["weather"].celsius == 21.5
    assert isinstance(SEEN["typed"], Weather)  # validated into returns=
    assert isinstance(SEEN["error"], Unavailable)  # the recorded error, its own type again
    assert str(SEEN["error"]) == "k is not there"
    served = [e for e in store.events(result.run_id) if isinstance(e, LLMCallEvent)]
    assert all(e.replayed is not None and e.cost_usd is None for e in served)  # cost nothing
    assert store.run(result.run_id).cost_usd == 0.0


def test_an_unknown_recorded_error_type_comes_back_as_replayed_error() -> None:
    from agentlab.model import ErrorInfo
    from agentlab.record._serve import rebuild_error

    exc = rebuild_error(ErrorInfo(type="nowhere.module.Gone", message="it broke"))
    assert isinstance(exc, ReplayedError) and exc.type == "nowhere.module.Gone"
    assert isinstance(rebuild_error(ErrorInfo(type="ValueError", message="v")), ValueError)


def test_outside_a_run_a_model_call_just_runs() -> None:
    assert ask([{"role": "user", "content": "xy"}]) == {"answer": "yx"}

    @llm(model="m")
    async def aask(messages: list[dict[str, Any]]) -> str:
        return "async"

    assert asyncio.run(aask([{"role": "user", "content": "q"}])) == "async"


def test_async_model_calls_are_recorded(store: SqlStore) -> None:
    @llm(model="m-async")
    async def aask(messages: list[dict[str, Any]]) -> str:
        await asyncio.sleep(0)
        return "ok"

    async def main() -> str:
        async with al.record_run("w", agent="a", store=store) as run:
            await aask([{"role": "user", "content": "q"}])
            return run.run_id

    run_id = asyncio.run(main())
    [call] = [e for e in store.events(run_id) if isinstance(e, LLMCallEvent)]
    assert (call.model, call.response) == ("m-async", "ok")


def test_model_call_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="no 'messages' parameter"):
        llm(model="m")(lambda prompt: prompt)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="give the model's name"):
        llm(lambda messages: messages)  # type: ignore[arg-type, return-value]

    @llm
    def by_argument(messages: list[Any], model: str) -> str:
        return model

    assert by_argument([], model="chosen") == "chosen"


def test_an_agent_records_its_code_and_rejects_unknown_options(store: SqlStore) -> None:
    run_id = hooks_agent.run({"city": "Oslo"}, store=store).run_id
    started = store.events(run_id)[0]
    code = started.code  # type: ignore[union-attr]
    assert code is not None
    assert code.entry == f"{__name__}:hooks_agent" and code.version == "2.3"
    assert code.git_commit is None or len(code.git_commit) == 40
    assert store.run(run_id).agent_version == "2.3"
    assert load_agent(code.entry) is hooks_agent
    with pytest.raises(TypeError, match="unknown record_run options"):
        agent("w", grant=["typo"])(lambda t: t)
    with pytest.raises(TypeError, match="unknown options"):
        hooks_agent.run(None, store=store, polcy=None)


@pytest.mark.parametrize(("entry", "message"), [
    ("no-colon", "is not 'module:function'"),
    ("nosuch.module.here:f", "cannot import"),
    (f"{__name__}:missing", "has no 'missing'"),
    (f"{__name__}:f.<locals>.g", "defined inside a function"),
])
def test_entry_points_that_cannot_be_loaded_say_what_to_do(entry: str, message: str) -> None:
    with pytest.raises(RecoveryError, match=message):
        load_agent(entry)


def test_a_run_without_an_entry_point_needs_the_code_named(store: SqlStore) -> None:
    with al.record_run("w", agent="a", store=store) as run:
        forecast("Rome")
    with pytest.raises(RecoveryError, match="records no entry point"):
        replay(store, run.run_id)
    named = replay(store, run.run_id, agent=lambda task_input: forecast("Rome"), mode="strict")
    assert named.identical and named.entry is not None and "<lambda>" in named.entry


def test_recovery_hooks_are_checked_when_a_tool_is_declared() -> None:
    with pytest.raises(ValueError, match="reconcile= is for side-effecting tools"):
        tool(reconcile=lambda a, k: None)(lambda x: x)
    with pytest.raises(ValueError, match="compensate= is for side-effecting tools"):
        tool(compensate=lambda a, r: None)(lambda x: x)
    with pytest.raises(TypeError, match="compensate= must be a callable"):
        tool(side_effect=True, scope="s:w", compensate=42)(lambda x: x)  # type: ignore[call-overload]
    spec = tool(side_effect=True, scope="s:w", compensate=lambda a, r: None)(
        lambda x: x).agentlab  # type: ignore[attr-defined]
    assert isinstance(spec.compensate, Compensation)
    assert repr(NOT_APPLIED) == "agentlab.NOT_APPLIED"


def test_the_entry_point_of_a_script_run_as_a_module_is_importable(tmp_path: Path,
                                                                  store: SqlStore) -> None:
    al.issue_grant(store, "g", principal="p", owner="o", workflow="w", scopes=["x:*"],
                   expires_in=timedelta(hours=1))
    # An agent defined in __main__ of `python -m pkg.mod` records pkg.mod as its module.
    import sys

    from agentlab.record._agent import _entry_of

    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)

    def fn(task_input: Any) -> None: ...

    fn.__module__ = "__main__"
    expected = f"{spec.name}:" if spec is not None else "__main__:"
    assert (_entry_of(fn) or "").startswith(expected)
