"""Secret redaction: known secret values and secret-shaped strings never reach the store.

Before anything is recorded (tool arguments and results, LLM messages, errors, state,
metadata) a :class:`Redactor` replaces every known secret (each credential the process
resolved) with ``[REDACTED:secret]`` and every match of its patterns with
``[REDACTED:<pattern name>]``, and lists the JSON pointers it changed so the event says what
was scrubbed. A scrubber that fails leaves ``[REDACTED:scrubber-error]``, never the value.

The background writer calls :meth:`Redactor.might_contain` on every event's canonical bytes:
one compiled byte scan, so the events with nothing to scrub (nearly all) are never decoded.
It has no false negatives: each pattern declares byte *triggers*, of which canonical JSON of
any value the pattern would change shows at least one (see :class:`SecretPattern`).

What the default patterns treat as secret, and what deliberately not (tests pin both):

* ``Bearer <token>``, ``scheme://user:PASSWORD@host``, provider keys and tokens (OpenAI,
  Anthropic, GitHub, Slack, AWS access key ids, Google API keys), JWTs, private key blocks;
* the value of an assignment to a secret-sounding name (``password``, ``passwd``,
  ``secret``, ``token``, ``api_key``, ``access_key``, ``authorization``, also as a suffix:
  ``client_secret``, ``accessToken``), written ``name=value``, ``name: value`` or
  ``"name": "value"``, and a mapping entry ``{"password": "..."}`` (an entry is also read as
  the text ``key=value``). ``Authorization: Basic xyz`` keeps its scheme word;
* not: the word alone (``the token count was 512``, ``keep it secret``), names that only
  contain one (``max_tokens=512``, ``token_count: 3``, ``secretary: Ann``), UUIDs, hex
  digests, ISO timestamps, ticket ids such as ``SUP-57``. ``token: 512`` *is* redacted: it
  reads as an assignment, and a pattern cannot tell a count from a credential.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from agentlab.model._canonical import (
    _default,
    _fix_str,
    _key,
    _native,
    _pointer,
    canonical,
    canonical_body,
)

__all__ = [
    "DEFAULT_PATTERNS",
    "MARKER_PREFIX",
    "MIN_SECRET_LEN",
    "Redactor",
    "SecretPattern",
    "default_redactor",
]

from agentlab.identity._compiled import Callback, Compiled, Config, compile_config
from agentlab.identity._patterns import (
    _ERROR_MARK,
    _SECRET_MARK,
    DEFAULT_PATTERNS,
    MARKER_PREFIX,
    MIN_SECRET_LEN,
    SecretPattern,
)

log = logging.getLogger("agentlab.identity")

_MAX_DEPTH = 250  # as agentlab.model.canonical: deeper values are refused (here: fail closed)
_MAX_PASSES = 4  # secret passes over one string before it is given up as unscrubbable
_ENTRY_VALUE_MAX = 4096  # how much of a mapping value the ``key=value`` reading looks at

class _Failed(Exception):
    """A string could not be scrubbed; the caller substitutes the error marker."""


def _replace_secrets(c: Compiled, text: str) -> str:
    """``text`` with every known secret replaced; overlapping occurrences merge into one
    marker, and a marker that, with its neighbours, spells a secret again is scrubbed too."""
    gate = c.secret_gate
    if gate is None or gate.search(text) is None:
        return text
    for _ in range(_MAX_PASSES):
        spans: list[tuple[int, int]] = []
        for secret in c.secrets:
            i = text.find(secret)
            while i >= 0:
                spans.append((i, i + len(secret)))
                i = text.find(secret, i + 1)
        spans.sort()
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out: list[str] = []
        pos = 0
        for s, e in merged:
            out.append(text[pos:s])
            out.append(_SECRET_MARK)
            pos = e
        out.append(text[pos:])
        text = "".join(out)
        if gate.search(text) is None:
            return text
    raise _Failed


def _may_change(c: Compiled, value: str | dict[str, str]) -> bool:
    """The byte scan of :meth:`Redactor.might_contain` on one string or mapping entry,
    which lets the walk skip the (far slower) patterns for nearly every string."""
    if c.always:
        return True
    if c.trigger is None:
        return False
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a lone surrogate: scrub it the slow way
        return True
    return c.trigger.search(data) is not None


def _scrub_str(c: Compiled, text: str) -> str:
    if not _may_change(c, text):
        return text
    try:
        return _scrub_str_unsafe(c, text)
    except _Failed:
        return _ERROR_MARK


def _scrub_str_unsafe(c: Compiled, text: str) -> str:
    out = _replace_secrets(c, text)
    first = out
    for regex, _, _, repl in c.patterns:
        out = regex.sub(repl, out)
    for fn in c.callbacks:
        try:
            got = fn(out)
        except Exception:
            return _ERROR_MARK
        if got is None:
            continue
        if not isinstance(got, str):
            return _ERROR_MARK
        out = got
    if out is not first:  # a pattern's marker or a callback may have written a secret
        out = _replace_secrets(c, out)
    return out


def _scrub_entry(c: Compiled, key: str, value: str) -> str | None:
    """A mapping entry read as the text ``key=value``: a match that begins in the key and
    puts its secret group in the value hides the value from there on (None: no match)."""
    value_start = value[:_ENTRY_VALUE_MAX]
    if not c.patterns or not _may_change(c, {key: value_start}):
        return None
    cut = len(key) + 1
    text = f"{key}={value_start}"
    for regex, group, marker, _ in c.patterns:
        for m in regex.finditer(text):
            if m.start() >= len(key):
                break
            s, e = m.span(group)
            if s >= cut and e > s:
                return value[: s - cut] + marker
    return None


def _note(changed: list[str], path: str) -> None:
    if not changed or changed[-1] != path:
        changed.append(path)


def _unique_key(key: str, original: Mapping[Any, Any], out: dict[Any, Any] | None) -> str:
    """``key``, or ``key#2``, ``key#3``... when two keys scrub to the same marker."""
    candidate, n = key, 2
    while candidate in original or (out is not None and candidate in out):
        candidate = f"{key}#{n}"
        n += 1
    return candidate


def _walk(c: Compiled, value: Any, path: str, changed: list[str], depth: int) -> Any:
    if isinstance(value, str):
        new = _scrub_str(c, value)
        if new == value:
            return value
        _note(changed, path)
        return new
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > _MAX_DEPTH:
        raise _Failed
    if isinstance(value, Mapping):
        return _walk_mapping(c, value, path, changed, depth)
    if isinstance(value, list | tuple):
        out: list[Any] | None = None
        for i, item in enumerate(value):
            new_item = _walk(c, item, f"{path}/{i}", changed, depth + 1)
            if out is None and new_item is not item:
                out = list(value[:i])
            if out is not None:
                out.append(new_item)
        if out is None:
            return value
        return tuple(out) if isinstance(value, tuple) else out
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return value
        new = _scrub_str(c, text)
        if new == text:
            return value
        _note(changed, path)
        return new
    # Anything else is recorded in its JSON form (agentlab.model.canonical's rule): scrub
    # that, and keep the object itself when the form had nothing to hide.
    native, form = _native(value)
    if not native:
        form = _default(value)
    mark = len(changed)
    new_form = _walk(c, form, path, changed, depth + 1)
    return value if len(changed) == mark else new_form


def _walk_mapping(
    c: Compiled, value: Mapping[Any, Any], path: str, changed: list[str], depth: int
) -> Any:
    out: dict[Any, Any] | None = None
    items = list(value.items())
    for i, (k, v) in enumerate(items):
        if isinstance(k, str) and isinstance(v, str) and not _may_change(c, {k: v}):
            if out is not None:  # one scan clears the key, the value and the entry
                out[k] = v
            continue
        text_key = k if isinstance(k, str) else _key(k)
        new_text_key = _scrub_str(c, text_key)
        key_changed = new_text_key != text_key
        new_k = _unique_key(new_text_key, value, out) if key_changed else k
        here = _pointer(path, new_k if key_changed else text_key)
        if key_changed:
            _note(changed, here)
        new_v = _walk(c, v, here, changed, depth + 1)
        if isinstance(new_v, str) and isinstance(new_k, str):
            entry = _scrub_entry(c, new_k, new_v)
            if entry is not None:
                new_v = entry
                _note(changed, here)
        if out is None and (key_changed or new_v is not v):
            out = dict(items[:i])
        if out is not None:
            out[new_k] = new_v
    return value if out is None else out


_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


class Redactor:
    """Replaces known secrets and secret-shaped strings with markers.

    Thread-safe: changes build a new immutable configuration under a lock; scrubs and scans
    read whichever configuration is current, without locking.

    >>> r = Redactor(secrets=["hunter2-xyz"])
    >>> r.scrub({"q": "pw is hunter2-xyz"})
    ({'q': 'pw is [REDACTED:secret]'}, ['/q'])
    """

    def __init__(
        self,
        *,
        patterns: Iterable[SecretPattern] = DEFAULT_PATTERNS,
        secrets: Iterable[str] = (),
        callbacks: Iterable[Callback] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._config = Config(frozenset(), (), (), 0)
        self._cache: Compiled | None = None
        for p in patterns:
            self.add_pattern(p)
        for s in secrets:
            self.add_secret(s)
        for fn in callbacks:
            self.add_callback(fn)
        _REDACTORS.add(self)

    def __repr__(self) -> str:
        cfg = self._config  # counts only: a repr must never show a secret
        return (
            f"<Redactor {len(cfg.patterns)} patterns, {len(cfg.secrets)} secrets, "
            f"{len(cfg.callbacks)} callbacks, version {cfg.version}>"
        )

    @property
    def version(self) -> int:
        """Increases whenever secrets, patterns or callbacks change (callers may cache)."""
        return self._config.version

    def _change(self, **changes: Any) -> None:
        cfg = self._config
        self._config = replace(cfg, **changes, version=cfg.version + 1)

    def add_secret(self, value: str) -> None:
        """Redact this exact value (a resolved credential) wherever it appears."""
        if not isinstance(value, str):
            raise TypeError(f"a secret is a str, not {type(value).__name__}")
        if len(value) < MIN_SECRET_LEN:
            raise ValueError(
                f"a secret of {len(value)} characters is too short to redact safely (it would "
                f"mangle ordinary text); known secrets need at least {MIN_SECRET_LEN}"
            )
        forms = {value}
        fixed = _fix_str(value)  # how canonical JSON stores it, if that differs
        if fixed is not None:
            forms.add(fixed)
        with self._lock:
            if not forms <= self._config.secrets:
                self._change(secrets=self._config.secrets | forms)

    def add_pattern(self, pattern: SecretPattern | str, *, name: str = "pattern") -> None:
        """Redact matches of a pattern; a string is compiled and named ``name``."""
        if isinstance(pattern, str):
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
            pattern = SecretPattern(name, regex)
        elif not isinstance(pattern, SecretPattern):
            raise TypeError(f"add_pattern takes a SecretPattern or a str, not {pattern!r}")
        with self._lock:
            if pattern not in self._config.patterns:
                self._change(patterns=(*self._config.patterns, pattern))

    def add_callback(self, fn: Callback) -> None:
        """Also pass every string through ``fn``: it returns the replacement, or None for no
        change. If it raises, the whole string becomes ``[REDACTED:scrubber-error]``."""
        if not callable(fn):
            raise TypeError(f"a callback is a function of one str, not {fn!r}")
        with self._lock:
            if fn not in self._config.callbacks:
                self._change(callbacks=(*self._config.callbacks, fn))

    def _compiled(self) -> Compiled:
        cfg = self._config
        c = self._cache
        if c is None or c.config is not cfg:
            c = self._cache = compile_config(cfg)  # a race only builds it twice
        return c

    def scrub_text(self, text: str) -> str:
        """``text`` with known secrets, then pattern matches, then callbacks applied."""
        if not isinstance(text, str):
            raise TypeError(f"scrub_text takes a str, not {type(text).__name__}; use scrub()")
        try:
            return _scrub_str(self._compiled(), text)
        except Exception:
            return _ERROR_MARK

    def scrub(self, value: Any) -> tuple[Any, list[str]]:
        """The value with every string (and mapping key) scrubbed, and the JSON pointers
        that changed, in walk order.

        The input is never mutated; unchanged subtrees are shared. Objects that are not
        JSON-like are scrubbed in the JSON form agentlab would record, and kept as they are
        when that form has nothing to hide. Any failure gives
        ``("[REDACTED:scrubber-error]", [""])``: better no value than a leaked one.
        """
        c = self._compiled()
        changed: list[str] = []
        try:
            return _walk(c, value, "", changed, 0), changed
        except Exception as exc:  # fail closed, and say so without showing the value
            log.warning(
                "scrubbing a value failed (%s); it is recorded as %s",
                type(exc).__name__,
                _ERROR_MARK,
            )
            return _ERROR_MARK, [""]

    def might_contain(self, data: bytes) -> bool:
        """Whether :meth:`scrub` could change the value these canonical JSON bytes encode.

        One compiled byte scan; never False when a scrub would change something (false
        positives are possible, and rare). With callbacks registered it is always True.
        """
        c = self._cache
        if c is None or c.config is not self._config:
            c = self._compiled()
        if c.always:
            return True
        return c.trigger is not None and c.trigger.search(data) is not None

    def scrub_json(self, data: bytes) -> tuple[bytes, list[str]] | None:
        """Canonical JSON scrubbed: None when there is nothing to scrub, else the new
        canonical bytes (as ``agentlab.model.canonical_body`` writes them) and the pointers."""
        if not self.might_contain(data):
            return None
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return orjson.dumps(_ERROR_MARK), [""]
        new, changed = self.scrub(value)
        if not changed:
            return None
        return (canonical_body(new) if isinstance(new, dict) else canonical(new)[0]), changed


# ---------------------------------------------------------------------------------------------
# The process-wide redactor and logging

_default_lock = threading.Lock()
_process_redactor: Redactor | None = None


def default_redactor() -> Redactor:
    """The process's redactor: every resolved credential secret is added to it, and the
    recorder scrubs every event with it. A forked child keeps it (and its secrets)."""
    global _process_redactor
    r = _process_redactor
    if r is None:
        with _default_lock:
            if _process_redactor is None:
                _process_redactor = Redactor()
            r = _process_redactor
    return r


def _after_fork_in_child() -> None:
    # A lock held by a thread of the parent at the fork would stay held forever here.
    global _default_lock
    _default_lock = threading.Lock()
    for r in list(_REDACTORS):
        r._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
