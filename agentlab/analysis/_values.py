"""Values in a run's content, and where each one entered the run (value provenance).

Faults travel as values: a wrong id, amount or date that a call's argument or the final
answer took from an earlier tool result, user message or model output. This module finds
the values an event holds and, for any value, the earliest event that held it.

A *value* is what a fault can carry: a number (``1,200.50`` and ``1200.5`` are one value),
an identifier (``Z7GOZK``, ``olivia_gonzalez_2305``, ``19/02/2009``, ``1:41.614``), a
quoted or emphasised span, a capitalised name of two words or more, or a short string leaf
of structured content. Prose words are not values (they match everywhere), except that a
caller looking for one particular value (an expected output) may ask for any text.

Each value has a *specificity* between 0 and 1: how unlikely it is that two events hold it
by chance. ``2`` is in every other message, ``950000``, ``1.445`` and ``Z7GOZK`` are not;
evidence drawn from a value is weighed by it, so a chance match of a small number never
decides a ranking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Literal

__all__ = ["Holding", "Value", "ValueIndex", "as_value", "holds", "is_leaf_value",
           "last_position", "number_key", "text_key", "values_in"]

ValueKind = Literal["number", "text"]

_NUMBER = re.compile(
    r"(?<![\w.,/:])(?<!\w-)[-+]?[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?(?![\w/:]|[.,-]\d)")
_COMPOUND = re.compile(r"(?<![\w.,])\d+(?:[:/\-]\d+){1,3}(?:\.\d+)?(?![\w])")
_IDENT = re.compile(r"(?<![\w-])[A-Za-z0-9][\w-]*[A-Za-z0-9](?![\w-])")
_QUOTED = re.compile(r"\"([^\"\n]{2,80})\"|“([^”\n]{2,80})”|\*\*([^*\n]{1,80})\*\*|`([^`\n]{2,80})`"
                     r"|(?<![\w])'([^'\n]{2,80})'(?![\w])|\\boxed\{([^{}\n]{1,80})\}")
_CAP = r"(?:[A-Z][\w'’-]*[a-z0-9][\w'’-]*|[A-Z]{2,}|[A-Z]\.)"
# Words of one name sit on one line, with no sentence end between them ("Magda M." is a
# name, "Agreed. The" and "Conclusion\nThe" are not).
_NAME = re.compile(rf"(?<![\w]){_CAP}(?:[ \t]+(?:(?:of|the|de|la|von|van)[ \t]+)*{_CAP}){{1,4}}"
                   r"(?![\w])")
_CODE_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_SPACE = re.compile(r"\s+")
_LEAF_MAX = 100


@dataclass(frozen=True, slots=True)
class Value:
    """One value: its normalised ``key`` (what two holders must share), how it was first
    written, its kind and its specificity."""

    key: str
    text: str
    kind: ValueKind
    specificity: float


def number_key(text: str) -> str | None:
    """The normalised form of a number as written (``$1,200.50`` -> ``1200.5``), or None."""
    t = text.strip().replace(",", "").lstrip("$€£").rstrip("%")
    sign = ""
    if t and t[0] in "+-":
        sign, t = ("-" if t[0] == "-" else ""), t[1:].lstrip("$€£")
    try:
        d = Decimal(t)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    with localcontext() as ctx:  # normalise exactly: a 30-digit account number is not rounded
        ctx.prec = max(28, len(t) + 2)
        out = format(d.normalize(), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return (sign + out) if out != "0" else "0"


def text_key(text: str) -> str:
    """The normalised form of a text value: case-folded, spaces collapsed, outer punctuation
    and quotes dropped."""
    return _SPACE.sub(" ", text.casefold()).strip(" \t\n.,;:!?\"'“”‘’*`()[]{}")


def _number_specificity(key: str) -> float:
    digits = key.lstrip("-").replace(".", "").lstrip("0")
    n = len(digits)
    if "." in key and n >= 3:
        return 0.9
    if n <= 1:
        return 0.1
    if n == 2:
        return 0.3
    if n == 4 and 1800 <= abs(float(key)) <= 2100 and "." not in key:
        return 0.5  # a year: common in prose, still telling
    return 0.6 if n == 3 else 0.85


def _text_specificity(key: str) -> float:
    has_digit = any(c.isdigit() for c in key)
    has_alpha = any(c.isalpha() for c in key)
    if (has_digit and has_alpha) or len(key) >= 12:
        return 0.9
    if has_digit:  # a date, a time, a version
        return 0.8
    if len(key) >= 6:
        return 0.7
    return 0.5 if len(key) >= 3 else 0.2


def _number(text: str) -> Value | None:
    key = number_key(text)
    if key is None:
        return None
    return Value(key, text, "number", _number_specificity(key))


_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)


def _text(text: str) -> Value | None:
    key = _ARTICLE.sub("", text_key(text))
    if len(key) < 2:
        return None
    return Value(key, text.strip(), "text", _text_specificity(key))


def _is_identifier(token: str) -> bool:
    letters = any(c.isalpha() for c in token)
    digits = any(c.isdigit() for c in token)
    if letters and digits:
        return True
    if "_" in token and letters:
        return True
    # a code (CHN, IOC, NASA); a longer word in capitals is shouting or a control word
    return token.isupper() and 2 <= len(token) <= 6 and token.isalpha()


def _from_text(text: str, *, words: bool) -> Iterator[Value]:
    for m in _COMPOUND.finditer(text):
        if (v := _text(m.group())) is not None:
            yield v
    for m in _NUMBER.finditer(text):
        if (v := _number(m.group())) is not None:
            yield v
    for m in _IDENT.finditer(text):
        token = m.group()
        if (words or _is_identifier(token)) and (v := _text(token)) is not None:
            yield v
    for m in _QUOTED.finditer(text):
        span = next(g for g in m.groups() if g is not None)
        if _NUMBER.fullmatch(span.strip()):
            if (v := _number(span)) is not None:
                yield v
        elif (v := _text(span)) is not None:
            yield v
    for m in _NAME.finditer(text):
        if (v := _text(m.group())) is not None:
            yield v


def values_in(content: Any, *, words: bool = False, code: bool = True) -> dict[str, Value]:
    """The values ``content`` holds, by key (the first spelling of each is kept).

    Structured content is walked: numbers are values; a string field of a few words on one
    line is a value whole, and every string is searched for values within. ``words=True`` also
    takes every word of prose (for looking up one particular text value); ``code=False``
    skips fenced code blocks of prose.
    """
    out: dict[str, Value] = {}

    def add(vs: Iterable[Value]) -> None:
        for v in vs:
            out.setdefault(v.key, v)

    def walk(x: Any, depth: int) -> None:
        if depth > 40:
            return
        if isinstance(x, bool) or x is None:
            return
        if isinstance(x, int | float):
            if (v := _number(repr(x))) is not None:
                out.setdefault(v.key, v)
            return
        if isinstance(x, str):
            if depth > 0 and is_leaf_value(x):  # a field's whole value: "Z7GOZK", "Paris"
                whole = _number(x) if _NUMBER.fullmatch(x.strip()) else _text(x)
                if whole is not None:
                    out.setdefault(whole.key, whole)
            add(_from_text(x if code else _CODE_FENCE.sub(" ", x), words=words))
            return
        if isinstance(x, dict):
            for item in x.values():
                walk(item, depth + 1)
            return
        if isinstance(x, list | tuple):
            for item in x:
                walk(item, depth + 1)

    walk(content, 0)
    return out


def is_leaf_value(x: str) -> bool:
    """A string field that is a value rather than prose: short, one line, a few words."""
    t = x.strip()
    return bool(t) and len(t) <= _LEAF_MAX and "\n" not in t and t.count(" ") < 5 \
        and not t.endswith((".", "!", "?", ":"))


Part = Literal["input", "result", "output", "arguments"]


@dataclass(frozen=True, slots=True)
class Holding:
    """An event that holds a value, and in which of its parts: ``input`` (the task, a
    user's or system message, an approver's edit), ``result`` (a tool's result or error),
    ``output`` (what the agent said: a message, a model's response) or ``arguments`` (what
    the agent passed to a tool)."""

    seq: int
    part: Part


class ValueIndex:
    """Where each value appears in a run, in order: built once, then asked per value.

    ``add(seq, part, content)`` is called for each event part in seq order;
    :meth:`origin` gives the earliest holder before a point.
    """

    def __init__(self) -> None:
        self._held: dict[str, list[Holding]] = {}
        self._values: dict[str, Value] = {}
        self._texts: list[tuple[int, Part, str]] = []
        self._at: dict[tuple[int, Part], dict[str, Value]] = {}

    def at(self, seq: int, part: Part) -> dict[str, Value]:
        """The values one event part holds (as :meth:`add` found them; empty if none)."""
        return self._at.get((seq, part), {})

    def add(self, seq: int, part: Part, content: Any) -> dict[str, Value]:
        vals = values_in(content)
        self._at[(seq, part)] = vals
        for key, v in vals.items():
            self._values.setdefault(key, v)
            held = self._held.setdefault(key, [])
            if not held or held[-1] != Holding(seq, part):
                held.append(Holding(seq, part))
        self._texts.append((seq, part, _flat_text(content)))
        return vals

    def value(self, key: str) -> Value | None:
        return self._values.get(key)

    def holders(self, key: str) -> list[Holding]:
        """Every event part that holds the value, in order."""
        return list(self._held.get(key, ()))

    def origin(self, key: str, before: int | None = None) -> Holding | None:
        """The earliest event part holding the value (before seq ``before``, if given)."""
        for h in self._held.get(key, ()):
            if before is None or h.seq < before:
                return h
            break
        return None

    def find_text(self, value: Value, before: int | None = None) -> Holding | None:
        """The earliest event part whose text holds ``value`` as a whole word or phrase
        (for values a caller brings: an expected output need not be a value here)."""
        pattern = _phrase(value)
        for seq, part, text in self._texts:
            if before is not None and seq >= before:
                return None
            if pattern.search(text):
                return Holding(seq, part)
        return None


def _flat_text(content: Any) -> str:
    if isinstance(content, str):
        return content.casefold()
    from agentlab.model import dumps

    try:
        return dumps(content).decode().casefold()
    except (TypeError, ValueError):
        return str(content).casefold()


def _phrase(value: Value) -> re.Pattern[str]:
    words = [re.escape(w) for w in value.key.split(" ")]
    body = r"[\s\W_]+".join(words)
    return re.compile(rf"(?<![\w]){body}(?![\w])")


def as_value(x: Any) -> Value | None:
    """A value a caller brings (an expected output, an argument): a number when it reads
    as one, else text."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float):
        return _number(repr(x))
    text = str(x).strip()
    if _NUMBER.fullmatch(text):
        return _number(text)
    return _text(text)


def holds(content: Any, value: Value) -> bool:
    """Whether ``content`` holds ``value``: as a number among its numbers, or as a whole
    word or phrase of its text."""
    if value.kind == "number":
        return value.key in values_in(content)
    return _phrase(value).search(_flat_text(content)) is not None


def last_position(text: str, value: Value) -> int:
    """Where ``value`` last occurs in ``text`` (-1: nowhere), to tell the last stated."""
    folded = text.casefold()
    return max(folded.rfind(value.text.casefold()), folded.rfind(value.key))
