"""The tool decorator: arguments, structured results, errors and retries of every call.

A read-only tool costs the caller one serialisation and a queue append. A tool marked
``side_effect=True`` is recorded write-ahead: its intent (arguments and idempotency key) is
committed before it runs and its result right after, so after a crash it is known whether
the action never ran, started, or finished.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, overload

from agentlab.identity import ScopeSpec
from agentlab.record._context import run_var

__all__ = ["ToolSpec", "tool"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How a tool is recorded. Made by :func:`tool`; read it from ``wrapper.agentlab``."""

    name: str
    side_effect: bool = False
    scope: ScopeSpec | None = None
    """The scope a call needs, e.g. ``"jira:write:{project}"`` (filled from arguments)."""
    freshness: timedelta | None = None
    """The oldest a result may be; an older one (by the age it reports) is marked stale."""
    idempotency_key: Callable[[Mapping[str, Any]], str] | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff_s: float = 0.0
    params: tuple[str, ...] = ()
    skip_first: bool = False
    """A method's ``self``/``cls``: not an argument worth recording (its repr holds a memory
    address, which would also make default idempotency keys differ between processes)."""
    signature: inspect.Signature | None = field(default=None, compare=False)
    governed: bool = False
    """Takes the full path: side effects, retries or a scope (set by :func:`tool`)."""

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name (defaults not filled in)."""
        if self.skip_first and args:
            args = args[1:]
        if self.signature is None:
            if len(args) > len(self.params):
                raise TypeError(
                    f"{self.name}() takes {len(self.params)} positional arguments "
                    f"but {len(args)} were given"
                )
            out = dict(zip(self.params, args, strict=False))
            if kwargs:
                out.update(kwargs)
            return out
        bound = self.signature.bind(*args, **kwargs)  # ``self`` already dropped above
        out = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                out[name] = list(value)
            else:
                out[name] = value
        return out


def _spec_for(fn: Callable[..., Any], **options: Any) -> ToolSpec:
    sig = inspect.signature(fn)
    first = next(iter(sig.parameters), None)
    skip_first = first in ("self", "cls")
    if skip_first:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    simple = all(
        p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        for p in sig.parameters.values()
    )
    params = tuple(
        n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )
    retries = options.get("retries", 0)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    name = options.pop("name", None) or getattr(fn, "__name__", "tool")
    scope = options.get("scope")
    if scope is not None and not callable(scope):
        from agentlab.identity import validate_scope

        validate_scope(scope.replace("{", "x").replace("}", "x") if "{" in scope else scope)
    governed = bool(options.get("side_effect") or retries or scope is not None
                    or options.get("freshness") is not None)
    return ToolSpec(name=name, params=params, signature=None if simple else sig,
                    skip_first=skip_first, governed=governed, **options)


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

    >>> @tool(scope="crm:read")
    ... def lookup_account(account_id: str) -> dict: ...
    >>> @tool(side_effect=True, scope="jira:write:{project}",
    ...       idempotency_key=lambda a: f"issue:{a['title']}")
    ... def create_issue(project: str, title: str) -> dict: ...
    """

    def wrap(f: Callable[P, R]) -> Callable[P, R]:
        spec = _spec_for(
            f, name=name, side_effect=side_effect, scope=scope, freshness=freshness,
            idempotency_key=idempotency_key,
            retries=retries, retry_on=retry_on, backoff_s=backoff_s,
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

        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            run = run_var.get()
            if run is None:
                return f(*args, **kwargs)
            return run._call_tool(spec, f, args, kwargs)  # type: ignore[no-any-return]

        wrapper.agentlab = spec  # type: ignore[attr-defined]
        return wrapper

    if fn is not None:
        return wrap(fn)
    return wrap
