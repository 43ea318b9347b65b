"""The model-call decorator: record each request and its response, and let a replay serve
the recorded response instead of calling the model again.

``run.llm_call(...)`` records a call the agent already made; it cannot be served in a
replay, because the agent has its response before agentlab sees it. A function decorated
with :func:`llm` is the call itself: in a recording it runs and its request and response
are recorded; in a replay the recorded response is returned and the model is not called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, overload

from agentlab.record._context import run_var
from agentlab.record._spec import model_spec_for

__all__ = ["ModelReply", "llm"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ModelReply:
    """What a decorated model call may return to report usage with its response: the
    caller gets ``response``; tokens and the provider's cost are recorded with it."""

    response: Any
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    """The model that answered, when it differs from the one asked (a dated snapshot)."""


@overload
def llm(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def llm(
    *,
    model: str | None = None,
    provider: str | None = None,
    returns: Any = None,
    messages: str = "messages",
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def llm(
    fn: Callable[P, R] | None = None,
    /,
    *,
    model: str | None = None,
    provider: str | None = None,
    returns: Any = None,
    messages: str = "messages",
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of a function (sync or async) that asks a model, as an LLM call
    that a replay can serve from the record.

    The function takes the ``messages`` it sends (other arguments are recorded as the
    request's parameters) and returns the response, or a :class:`ModelReply` with the
    response and its token counts and cost. A response served in a replay is validated
    into ``returns`` (default: the function's return annotation). Outside a run the
    function runs unrecorded.

    >>> @llm(model="gpt-4o", provider="openai")               # doctest: +SKIP
    ... def chat(messages: list[dict], temperature: float = 0.0) -> ModelReply:
    ...     r = client.chat.completions.create(model="gpt-4o", messages=messages,
    ...                                        temperature=temperature)
    ...     return ModelReply(r.choices[0].message.content, r.usage.prompt_tokens,
    ...                       r.usage.completion_tokens)
    """

    def wrap(f: Callable[P, R]) -> Callable[P, R]:
        spec = model_spec_for(f, model=model, provider=provider, returns=returns,
                              messages=messages)
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                run = run_var.get()
                if run is None:
                    return _unwrap(await f(*args, **kwargs))
                return await run._call_model_async(spec, f, args, kwargs)

            async_wrapper.agentlab = spec  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            run = run_var.get()
            if run is None:
                return _unwrap(f(*args, **kwargs))  # type: ignore[no-any-return]
            return run._call_model(spec, f, args, kwargs)  # type: ignore[no-any-return]

        wrapper.agentlab = spec  # type: ignore[attr-defined]
        return wrapper

    if fn is not None:
        return wrap(fn)
    return wrap


def _unwrap(value: Any) -> Any:
    return value.response if isinstance(value, ModelReply) else value
