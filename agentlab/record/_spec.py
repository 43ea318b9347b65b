"""What agentlab knows about a recorded function: a tool's spec, a model call's spec.

Specs are made once, when a function is decorated, and read on every call; they hold no
run state. The recovery hooks a tool may declare live here too: a ``stub`` that answers
for it in a replay, a ``reconcile`` that says whether an interrupted call took effect, a
``compensate`` that undoes it in a rollback.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from agentlab.identity import ScopeSpec

__all__ = ["NOT_APPLIED", "Compensation", "ModelSpec", "ToolSpec", "model_spec_for",
           "return_type", "tool_spec_for"]


class _NotApplied:
    """The answer of a ``reconcile`` hook when the interrupted call did not take effect."""

    _instance: _NotApplied | None = None

    def __new__(cls) -> _NotApplied:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "agentlab.NOT_APPLIED"


NOT_APPLIED: Any = _NotApplied()
"""Returned by a tool's ``reconcile`` hook when the call it is asked about never took
effect: resuming then executes the call."""


@dataclass(frozen=True, slots=True)
class Compensation:
    """How a rollback undoes a side-effecting tool's finished call.

    ``fn(arguments, result)`` undoes it (the call's recorded arguments and result);
    ``scope`` is the scope the undo needs, a template filled from the *original* call's
    arguments (default: the scope the original call ran under); ``reconcile(arguments,
    result)`` says whether an undo interrupted by a crash took effect (its result) or not
    (:data:`NOT_APPLIED`), so a restarted rollback neither repeats nor skips it.
    """

    fn: Callable[[Mapping[str, Any], Any], Any]
    scope: ScopeSpec | None = None
    reconcile: Callable[[Mapping[str, Any], Any], Any] | None = None


def _bind(name: str, params: tuple[str, ...], signature: inspect.Signature | None,
          skip_first: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments by parameter name (defaults not filled in)."""
    if skip_first and args:
        args = args[1:]
    if signature is None:
        if len(args) > len(params):
            raise TypeError(
                f"{name}() takes {len(params)} positional arguments but {len(args)} were given"
            )
        out = dict(zip(params, args, strict=False))
        if kwargs:
            out.update(kwargs)
        return out
    bound = signature.bind(*args, **kwargs)  # ``self`` already dropped above
    out = {}
    for pname, value in bound.arguments.items():
        kind = signature.parameters[pname].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[pname] = list(value)
        else:
            out[pname] = value
    return out


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How a tool is recorded. Made by :func:`~agentlab.tool`; read it from
    ``wrapper.agentlab``."""

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
    stub: Callable[..., Any] | None = None
    """Answers for the tool in a replay that may not run it: called with the same
    arguments, it must not touch the world."""
    reconcile: Callable[[Mapping[str, Any], str], Any] | None = None
    """``reconcile(arguments, idempotency_key)``: the result of an interrupted call that
    took effect, or :data:`NOT_APPLIED` when it did not."""
    compensate: Compensation | None = None
    """How a rollback undoes a finished call."""
    params: tuple[str, ...] = ()
    skip_first: bool = False
    """A method's ``self``/``cls``: not an argument worth recording (its repr holds a memory
    address, which would also make default idempotency keys differ between processes)."""
    signature: inspect.Signature | None = field(default=None, compare=False)
    governed: bool = False
    """Takes the full path: side effects, retries or a scope (set by :func:`tool`)."""

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name (defaults not filled in)."""
        return _bind(self.name, self.params, self.signature, self.skip_first, args, kwargs)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How a model call is recorded. Made by :func:`~agentlab.llm`."""

    model: str | None
    """The model's name; None takes it from the call's ``model`` argument."""
    provider: str | None = None
    messages: str = "messages"
    """The parameter that carries the messages; every other argument is a parameter."""
    returns: Any = None
    """The type a response served from the record is validated into (default: the
    function's return annotation, unless it is a ModelReply)."""
    params: tuple[str, ...] = ()
    skip_first: bool = False
    signature: inspect.Signature | None = field(default=None, compare=False)
    name: str = "llm"

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        return _bind(self.name, self.params, self.signature, self.skip_first, args, kwargs)


def _shape(fn: Callable[..., Any]) -> tuple[inspect.Signature | None, tuple[str, ...], bool]:
    """(the signature when arguments need it to bind, positional names, drops self)."""
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
    return (None if simple else sig), params, skip_first


def tool_spec_for(fn: Callable[..., Any], **options: Any) -> ToolSpec:
    signature, params, skip_first = _shape(fn)
    retries = options.get("retries", 0)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    name = options.pop("name", None) or getattr(fn, "__name__", "tool")
    comp = options.get("compensate")
    if comp is not None and not isinstance(comp, Compensation):
        if not callable(comp):
            raise TypeError("compensate= must be a callable (arguments, result) or a "
                            f"Compensation, not {type(comp).__name__}")
        options["compensate"] = Compensation(comp)
    for hook in ("stub", "reconcile"):
        if options.get(hook) is not None and not callable(options[hook]):
            raise TypeError(f"{hook}= must be a callable, not {type(options[hook]).__name__}")
    if options.get("reconcile") is not None and not options.get("side_effect"):
        raise ValueError(f"{name}: reconcile= is for side-effecting tools (side_effect=True)")
    if options.get("compensate") is not None and not options.get("side_effect"):
        raise ValueError(f"{name}: compensate= is for side-effecting tools (side_effect=True)")
    scopes = [options.get("scope"),
              options["compensate"].scope if options.get("compensate") is not None else None]
    for scope in scopes:
        if scope is not None and not callable(scope):
            from agentlab.identity import validate_scope

            validate_scope(scope.replace("{", "x").replace("}", "x") if "{" in scope else scope)
    governed = bool(options.get("side_effect") or retries or options.get("scope") is not None
                    or options.get("freshness") is not None)
    return ToolSpec(name=name, params=params, signature=signature, skip_first=skip_first,
                    governed=governed, **options)


def model_spec_for(fn: Callable[..., Any], *, model: str | None, provider: str | None,
                   returns: Any, messages: str) -> ModelSpec:
    signature, params, skip_first = _shape(fn)
    names = (signature or inspect.signature(fn)).parameters
    if messages not in names and messages not in params:
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} has no {messages!r} parameter; "
                        "a model call takes the messages it sends (name it with messages=)")
    if model is None and "model" not in names and "model" not in params:
        raise TypeError(f"{getattr(fn, '__name__', fn)!r}: give the model's name, "
                        "@llm(model='gpt-4o'), or take it as a 'model' argument")
    return ModelSpec(model=model, provider=provider, messages=messages, returns=returns,
                     params=params, signature=signature, skip_first=skip_first,
                     name=getattr(fn, "__name__", "llm"))


_HINTS: dict[Any, Any] = {}
_NO_HINT = object()


def return_type(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` (None when absent or unresolvable), cached: a result
    served from the record is validated into it so the agent gets what the tool returns."""
    key = getattr(fn, "__func__", fn)
    found = _HINTS.get(key, _NO_HINT)
    if found is _NO_HINT:
        try:
            found = typing.get_type_hints(key).get("return")
        except Exception:  # unresolvable forward references: serve the JSON as recorded
            found = None
        if len(_HINTS) > 10_000:
            _HINTS.clear()
        _HINTS[key] = found
    return found
