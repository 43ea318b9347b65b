"""Serving a call from the record: the recorded value as the function would have returned
it, or the recorded error raised again."""

from __future__ import annotations

import collections.abc
import contextlib
import sys
import typing
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlab.errors import ReplayedError
from agentlab.model import ErrorInfo
from agentlab.record._calls import Serve

__all__ = ["rebuild_error", "served_value"]

_ADAPTERS: dict[Any, TypeAdapter[Any] | None] = {}
_PLAIN = (None, Any, dict, list, str, int, float, bool, object)


def _plain(annotation: Any) -> bool:
    """JSON as recorded already is such a value (``dict[str, Any]``, ``list[str]``...):
    validating it would change nothing and cost a walk over it."""
    if annotation in _PLAIN:
        return True
    origin = typing.get_origin(annotation)
    if origin in (dict, list, collections.abc.Mapping, collections.abc.Sequence):
        return all(_plain(arg) for arg in typing.get_args(annotation))
    return False


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    """The validator for values of ``annotation`` (None: serve the JSON as recorded),
    made once per annotation."""
    try:
        found = _ADAPTERS.get(annotation, False)
    except TypeError:  # an unhashable annotation
        return None
    if found is False:
        try:
            found = None if _plain(annotation) else TypeAdapter(annotation)
        except Exception:  # not a type pydantic can build: serve the JSON as recorded
            found = None
        _ADAPTERS[annotation] = found
    return found  # type: ignore[return-value]


def served_value(serve: Serve, annotation: Any) -> Any:
    """What a served call returns: the recorded (or substituted) value, validated into the
    function's return type so the agent gets what the function returns (a pydantic model,
    say); a recorded error is raised again."""
    if serve.substitutes:
        value = serve.value
    else:
        ev = serve.event
        if ev.status == "error" and ev.error is not None:
            raise rebuild_error(ev.error)
        value = ev.result if ev.kind == "tool_call" else ev.response
    adapter = _adapter(annotation)
    if adapter is None:
        return value
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return value


def rebuild_error(info: ErrorInfo) -> BaseException:
    """The recorded exception as the agent saw it: its own type when that type is already
    imported here and takes a message, else :class:`~agentlab.errors.ReplayedError`. The
    recorded details travel with it, so the replay records the same error."""
    module, _, name = info.type.rpartition(".")
    owner: Any = sys.modules.get(module or "builtins")
    exc: BaseException | None = None
    for part in name.split("."):
        owner = getattr(owner, part, None) if owner is not None else None
    if isinstance(owner, type) and issubclass(owner, Exception):
        try:
            exc = owner(info.message)
        except Exception:  # a constructor that wants more: the instance, with its message
            try:
                exc = owner.__new__(owner)
                exc.args = (info.message,)
                str(exc)  # a __str__ that needs what __init__ would have set falls back
            except Exception:
                exc = None
    if exc is None:
        exc = ReplayedError(info.type, info.message)
    for key, value in (info.attributes or {}).items():
        with contextlib.suppress(AttributeError, TypeError):  # read-only: leave it as built
            setattr(exc, key, value)
    exc._agentlab_error_info = info.model_dump()  # type: ignore[attr-defined]
    return exc
