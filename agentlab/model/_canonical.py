"""Canonical, portable JSON: the one byte form agentlab hashes, stores and exports.

The portability rule (one rule, applied when a value is recorded):

* non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
* integers outside the signed 64-bit range become their decimal string;
* NUL characters and lone UTF-16 surrogates in strings (keys too) become U+FFFD;
* non-string mapping keys become strings (``None``/``True``/``False`` as JSON spells them);
* tuples become lists, sets become sorted lists, bytes become their text when they are
  UTF-8 (so they stay readable, and secrets in them can be redacted) else base64, pydantic
  models and dataclasses become their JSON form, anything else its ``repr``.

Every value that was changed is listed by JSON pointer, so nothing is altered silently;
the recorder stores that list on the event (``normalized``). Importing foreign data applies
the check without the repair: a value outside the rule is a :class:`PortabilityError`.

Two byte forms share the rule, both orjson's output with no whitespace:

* the *identity* form (:func:`dumps`, :func:`canonical`) sorts mapping keys, so equal values
  have equal bytes whatever order their keys were built in: hashes, idempotency keys,
  approval MACs, state trees and every comparison use it;
* the *stored* form (:func:`dumps_ordered`, :func:`canonical_body`) keeps keys in the order
  the agent produced them. Event bodies are stored in it, because key order is part of what
  a tool or model returned: an agent that writes a result into its next prompt with
  ``json.dumps`` must be served the same order on replay, or its prompt changes.

Parsing either form back and dumping it again in the same form yields the same bytes (a
property test holds this).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from agentlab.errors import PortabilityError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "canonical",
    "canonical_body",
    "check_portable",
    "dumps",
    "dumps_ordered",
    "loads",
    "portable",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_OPTS = orjson.OPT_SORT_KEYS
# The fast path refuses integers beyond 53 bits, so every large integer takes the exact walk
# (orjson would otherwise write unsigned 64-bit values that the rule turns into strings).
_FAST_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_ORDERED_OPTS = 0
_FAST_ORDERED_OPTS = orjson.OPT_STRICT_INTEGER
_NUL_ESCAPED = b"\\u0000"


def _default(value: Any) -> Any:
    """Turn the non-JSON types agent code commonly returns into JSON types."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON text (canonical or not)."""
    return orjson.loads(data)


def dumps(value: Any) -> bytes:
    """Identity bytes (sorted keys) of a value that is already portable (no repair, no check)."""
    return orjson.dumps(value, default=_default, option=_OPTS)


def dumps_ordered(value: Any) -> bytes:
    """Stored bytes (keys in their own order) of a value that is already portable.

    Re-serialising parsed stored bytes with it reproduces them exactly, whichever form they
    were written in, which is what import and the store's own checks need."""
    return orjson.dumps(value, default=_default, option=_ORDERED_OPTS)


def canonical(value: Any, *, ordered: bool = False) -> tuple[bytes, list[str]]:
    """Identity bytes of any value after the portability rule, and the pointers it changed;
    with ``ordered``, the stored form instead (keys in their own order).

    The fast path is one orjson call: orjson writes NaN and Infinity as ``null`` and
    escapes NUL, so output without ``null`` or an escaped NUL cannot hide either; anything
    else (including orjson's refusals: big integers, lone surrogates, odd keys) takes the
    exact, slower walk.
    """
    try:
        out = orjson.dumps(value, default=_default,
                           option=_FAST_ORDERED_OPTS if ordered else _FAST_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        out = None
    if out is not None and b"null" not in out and _NUL_ESCAPED not in out:
        return out, []
    changed: list[str] = []
    fixed = _normalise(value, "", changed, 0)
    return orjson.dumps(fixed, option=_ORDERED_OPTS if ordered else _OPTS), changed


def canonical_body(body: dict[str, Any]) -> bytes:
    """Stored bytes of an event body (keys in the order given); values the rule changed are
    listed under ``normalized`` (JSON pointers), so the stored event says what was altered."""
    data, fixed = canonical(body, ordered=True)
    if fixed:
        fixed_body = loads(data)
        fixed_body["normalized"] = sorted(fixed)
        data = dumps_ordered(fixed_body)
    return data


def portable(value: Any) -> tuple[Any, list[str]]:
    """The value after the portability rule, and the JSON pointers that were changed."""
    changed: list[str] = []
    return _normalise(value, "", changed, 0), changed


def check_portable(value: Any, *, where: str = "value") -> None:
    """Raise :class:`PortabilityError` naming the first pointer that breaks the rule."""
    changed: list[str] = []
    _normalise(value, "", changed, 0)
    if changed:
        raise PortabilityError(
            f"{where} is not portable JSON at {changed[0] or '/'!r} "
            f"({len(changed)} place(s) in all): NaN/Infinity, integers beyond 64 bits, "
            "NUL characters and lone surrogates are not allowed in imported data; "
            "re-export it with agentlab, which normalises such values when recording"
        )


def _pointer(path: str, key: str) -> str:
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"


def _fix_str(s: str) -> str | None:
    """The repaired string, or None when it needed no repair."""
    bad = "\x00" in s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        bad = True
    if not bad:
        return None
    return s.replace("\x00", "\ufffd")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


_MAX_DEPTH = 250
"""Deeper values are refused (orjson, and most JSON parsers, stop near 255 levels)."""


def _native(value: Any) -> tuple[bool, Any]:
    """orjson's own JSON form of the non-container types it serialises natively, so the
    exact walk agrees byte for byte with the fast path."""
    if isinstance(value, enum.Enum):
        return True, value.value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time | uuid.UUID):
        return True, orjson.dumps(value).decode()[1:-1]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return False, None


def _normalise(value: Any, path: str, changed: list[str], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise PortabilityError(
            f"value nests deeper than {_MAX_DEPTH} levels at {path!r}; "
            "is it self-referential? record a flatter structure"
        )
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        fixed = _fix_str(value)
        if fixed is None:
            return value
        changed.append(path)
        return fixed
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return int(value)
        changed.append(path)
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changed.append(path)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = _key(k)
            fixed_key = _fix_str(key)
            if fixed_key is not None or not isinstance(k, str):
                changed.append(_pointer(path, fixed_key if fixed_key is not None else key))
            key = fixed_key if fixed_key is not None else key
            out[key] = _normalise(v, _pointer(path, key), changed, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_normalise(v, f"{path}/{i}", changed, depth + 1) for i, v in enumerate(value)]
    native, converted = _native(value)
    return _normalise(converted if native else _default(value), path, changed, depth + 1)
