"""Serving a call from the record: the recorded value as the function would have returned
it, or the recorded error raised again."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlab.errors import ReplayedError
from agentlab.model import ErrorInfo
from agentlab.record._calls import Serve

__all__ = ["rebuild_error", "served_value"]

_ADAPTERS: dict[Any, TypeAdapter[Any] | None] = {}
_PLAIN = (None, Any, dict, list, str, int, float, bool, object)


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    if annotation in _PLAIN:
        return None
    try:
        found = _ADAPTERS.get(annotation, False)
    except TypeError:  # an unhashable annotation
        return None
    if found is False:
        try:
            found = TypeAdapter(annotation)
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
        except Exception:
            exc = None
    if exc is None:
        exc = ReplayedError(info.type, info.message)
    exc._agentlab_error_info = info.model_dump()  # type: ignore[attr-defined]
    return exc
