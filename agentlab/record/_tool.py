"""The tool decorator: arguments, structured results, errors and retries of every call.

A read-only tool costs the caller one serialisation and a queue append. A tool marked
``side_effect=True`` is recorded write-ahead: its intent (arguments and idempotency key) is
committed before it runs and its result right after, so after a crash it is known whether
the action never ran, started, or finished. Its recovery hooks (``stub``, ``reconcile``,
``compensate``) say how a replay answers for it, how a resumed run learns whether an
interrupted call took effect, and how a rollback undoes it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, overload

from agentlab.identity import ScopeSpec
from agentlab.record._context import run_var
from agentlab.record._pipeline import call_read_only
from agentlab.record._spec import Compensation, tool_spec_for

__all__ = ["tool"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def tool(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    side_effect: bool = False,
    scope: ScopeSpec | None = None,
    freshness: timedelta | None = None,
    idempotency_key: Callable[[Mapping[str, Any]], str] | None = None,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    backoff_s: float = 0.0,
    stub: Callable[..., Any] | None = None,
    reconcile: Callable[[Mapping[str, Any], str], Any] | None = None,
    compensate: Callable[[Mapping[str, Any], Any], Any] | Compensation | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    side_effect: bool = False,
    scope: ScopeSpec | None = None,
    freshness: timedelta | None = None,
    idempotency_key: Callable[[Mapping[str, Any]], str] | None = None,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    backoff_s: float = 0.0,
    stub: Callable[..., Any] | None = None,
    reconcile: Callable[[Mapping[str, Any], str], Any] | None = None,
    compensate: Callable[[Mapping[str, Any], Any], Any] | Compensation | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of a function (sync or async) as a tool call of the active run.

    Outside a run the function runs unrecorded. ``side_effect=True`` makes the call
    write-ahead and idempotency-keyed (by default from the run, tool, arguments and
    occurrence); ``retries`` re-runs it on ``retry_on`` errors, recording each retry. On a
    method, ``self``/``cls`` is not recorded.

    ``scope`` is what a call needs from the run's grants (a template filled from the
    arguments, or a function of them); a side-effecting tool must declare one, or its calls
    are refused. Inside the tool, :func:`~agentlab.credential` gives the secret.
    ``freshness`` marks a result stale when the age it reports (``age_s``, ``cache_age_s``)
    exceeds it: a stale-state incident in the run's summary and in ``explain``.

    Recovery hooks of a side-effecting tool: ``stub`` answers for it (same arguments, no
    effect on the world) when a replay or fork may not run it; ``reconcile(arguments,
    idempotency_key)`` tells a resumed run whether a call interrupted between its intent
    and its result took effect (its result) or not (:data:`~agentlab.NOT_APPLIED`);
    ``compensate(arguments, result)`` undoes a finished call in a rollback, governed like
    a call of its own (a :class:`~agentlab.Compensation` also names its scope and its own
    reconcile hook).

    >>> @tool(scope="crm:read")
    ... def lookup_account(account_id: str) -> dict: ...
    >>> @tool(side_effect=True, scope="jira:write:{project}",
    ...       idempotency_key=lambda a: f"issue:{a['title']}")
    ... def create_issue(project: str, title: str) -> dict: ...
    """

    def wrap(f: Callable[P, R]) -> Callable[P, R]:
        spec = tool_spec_for(
            f, name=name, side_effect=side_effect, scope=scope, freshness=freshness,
            idempotency_key=idempotency_key, retries=retries, retry_on=retry_on,
            backoff_s=backoff_s, stub=stub, reconcile=reconcile, compensate=compensate,
        )
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                run = run_var.get()
                if run is None:
                    return await f(*args, **kwargs)
                return await run._call_tool_async(spec, f, args, kwargs)

            async_wrapper.agentlab = spec  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        read_only = not spec.governed

        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            run = run_var.get()
            if run is None:
                return f(*args, **kwargs)
            # The fast path straight from here (one frame less): the checks are the run's
            # own in ``_call_tool``, which takes every other call.
            if read_only and run._fast and not run._ended:
                return call_read_only(run, spec, f, args, kwargs)  # type: ignore[arg-type,no-any-return]
            return run._call_tool(spec, f, args, kwargs)  # type: ignore[no-any-return]

        wrapper.agentlab = spec  # type: ignore[attr-defined]
        return wrapper

    if fn is not None:
        return wrap(fn)
    return wrap
