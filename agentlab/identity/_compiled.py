"""The compiled form of a redactor's configuration: the regexes a scrub applies and the
one byte regex that decides, per event, whether there is anything to scrub at all.

Known secrets are found through an *anchor* (a slice of their canonical JSON form starting at
their rarest byte) and patterns through their declared triggers; all alternatives are merged
behind shared first bytes, so the scan stops at few places in ordinary event JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from agentlab.identity._patterns import SecretPattern, _marker

__all__ = ["Callback", "Compiled", "Config", "compile_config"]

Callback = Callable[[str], str | None]
_Repl = Callable[[re.Match[str]], str]


@dataclass(frozen=True, slots=True)
class Config:
    secrets: frozenset[str]
    patterns: tuple[SecretPattern, ...]
    callbacks: tuple[Callback, ...]
    version: int


@dataclass(frozen=True, slots=True)
class Compiled:
    """Everything a scrub or a byte scan needs, built once per configuration."""

    config: Config
    secrets: tuple[str, ...]  # longest first
    secret_gate: re.Pattern[str] | None
    patterns: tuple[tuple[re.Pattern[str], int | str, str, _Repl], ...]  # + marker, repl
    callbacks: tuple[Callback, ...]
    trigger: re.Pattern[bytes] | None
    always: bool  # some callback or pattern has no trigger: every value might change


# Bytes ordered from common to rare in event JSON; a known secret's scan anchor starts at
# its rarest byte, so the combined scan stops at few places. Unlisted bytes are rarest.
_COMMON_BYTES = b'" etaoinsrlhdcu:,mpf_gyw.b0123456789{}[]vkTSAICEONRLDMPBUFHGWY-/xjqz'
_ANCHOR_LEN = 10


def _secret_anchor(secret: str) -> bytes | None:
    """A slice of the secret's canonical JSON form (None if it cannot occur there)."""
    try:
        escaped = orjson.dumps(secret)[1:-1]
    except orjson.JSONEncodeError:  # a lone surrogate: canonical JSON replaces it
        return None
    width = min(len(escaped), _ANCHOR_LEN)

    def rarity(i: int) -> int:
        found = _COMMON_BYTES.find(escaped[i : i + 1])
        return len(_COMMON_BYTES) if found < 0 else found

    start = max(range(len(escaped) - width + 1), key=rarity)
    return re.escape(escaped[start : start + width])


_HEAD = re.compile(rb"(?:[A-Za-z0-9_/\"' :=,@]|\\[^A-Za-z0-9])(?![*+?{])")


def _combine(alternatives: Iterable[bytes]) -> re.Pattern[bytes]:
    """One byte regex matching where any alternative does.

    Alternatives starting with the same literal byte are merged behind it, so that the
    regex engine's first-byte filter stops at few places and tries few branches there.
    """
    groups: dict[bytes, list[bytes]] = {}
    alone: list[bytes] = []
    for alt in dict.fromkeys(alternatives):
        m = _HEAD.match(alt)
        if m is None or b"|" in alt:
            alone.append(alt)
        else:
            groups.setdefault(m.group(), []).append(alt[m.end() :])
    parts = [
        head if b"" in rests else head + b"(?:" + b"|".join(rests) + b")"
        for head, rests in groups.items()
    ]
    return re.compile(b"|".join(parts + alone))


def compile_config(config: Config) -> Compiled:
    secrets = tuple(sorted(config.secrets, key=lambda s: (-len(s), s)))
    alternatives = [a for a in map(_secret_anchor, secrets) if a is not None]
    for p in config.patterns:
        alternatives.extend(p.triggers)
    return Compiled(
        config=config,
        secrets=secrets,
        secret_gate=re.compile("|".join(map(re.escape, secrets))) if secrets else None,
        patterns=tuple(
            (p.regex, p.group, _marker(p.name), _replacer(p.group, _marker(p.name)))
            for p in config.patterns
        ),
        callbacks=config.callbacks,
        trigger=_combine(alternatives) if alternatives else None,
        always=bool(config.callbacks) or any(not p.triggers for p in config.patterns),
    )


def _replacer(group: int | str, marker: str) -> _Repl:
    """A ``re.sub`` replacement that swaps only the group's span for the marker."""

    def repl(m: re.Match[str]) -> str:
        s, e = m.span(group)
        if s == e:  # the group did not take part, or is empty: nothing to hide
            return m.group()
        base = m.start()
        whole = m.group()
        return whole[: s - base] + marker + whole[e - base :]

    return repl
