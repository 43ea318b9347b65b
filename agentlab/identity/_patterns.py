"""Secret-shaped strings: the patterns the redactor looks for, and their byte triggers.

A pattern names what it finds (the marker says ``[REDACTED:<name>]``), which group of a match
is the secret, and byte *triggers*: at least one of them appears in the canonical JSON of any
value the pattern would change, which lets the redactor skip, with one byte scan, every event
that holds nothing to scrub. See :mod:`agentlab.identity._redact` for what is and is not
treated as secret by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_PATTERNS", "MARKER_PREFIX", "MIN_SECRET_LEN", "SecretPattern"]

MARKER_PREFIX: Final = "[REDACTED"
"""Every marker starts with this: ``[REDACTED:secret]``, ``[REDACTED:bearer]``, ..."""

MIN_SECRET_LEN: Final = 6
"""Shorter known secrets are refused: replacing them would mangle ordinary text."""

_SECRET_MARK: Final = f"{MARKER_PREFIX}:secret]"
_ERROR_MARK: Final = f"{MARKER_PREFIX}:scrubber-error]"


def _marker(name: str) -> str:
    return f"{MARKER_PREFIX}:{name}]"


# ---------------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """A secret-shaped string: where ``regex`` matches, the span of ``group`` becomes
    ``[REDACTED:<name>]``, so context such as ``Bearer `` or ``https://user:`` stays readable.

    ``triggers`` serve :meth:`Redactor.might_contain`: byte regexes of which the canonical
    JSON of any value this pattern changes matches at least one (mind JSON escaping: a space
    may appear as a space or as ``\\n``...). Begin each with a literal byte, which keeps the
    combined scan fast. Left empty, one is derived from a literal prefix of ``regex``; if
    there is none, ``might_contain`` answers True while the pattern is registered.
    """

    name: str
    regex: re.Pattern[str]
    group: int | str = 0
    triggers: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(
                f"pattern name {self.name!r} cannot go in a marker; use letters, digits, "
                "'-', '_' or '.'"
            )
        if not isinstance(self.regex, re.Pattern) or not isinstance(self.regex.pattern, str):
            raise TypeError(
                f"pattern {self.name!r}: regex must be a compiled str pattern "
                f"(re.compile(...)), not {self.regex!r}; Redactor.add_pattern takes a string"
            )
        g = self.group
        if isinstance(g, str) and g not in self.regex.groupindex:
            raise ValueError(f"pattern {self.name!r} has no group named {g!r}")
        if isinstance(g, int) and not 0 <= g <= self.regex.groups:
            raise ValueError(f"pattern {self.name!r} has no group {g}")
        for t in self.triggers:
            _check_trigger(self.name, t)
        if not self.triggers:
            object.__setattr__(self, "triggers", _prefix_triggers(self.regex))


def _check_trigger(name: str, trigger: bytes) -> None:
    if not isinstance(trigger, bytes):
        raise TypeError(f"pattern {name!r}: triggers are bytes regexes, not {trigger!r}")
    try:
        compiled = re.compile(trigger)
    except re.error as exc:
        raise ValueError(f"pattern {name!r}: trigger {trigger!r} is not a regex: {exc}") from None
    if compiled.flags or compiled.groups:
        raise ValueError(
            f"pattern {name!r}: trigger {trigger!r} is joined with others into one scan, so it "
            "may not set global flags or capture; use (?i:...) and (?:...) instead"
        )


def _ci(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


_LITERAL_PREFIX = re.compile(r"(?:\\b)?([A-Za-z0-9_\-]+)")


def _prefix_triggers(regex: re.Pattern[str]) -> tuple[bytes, ...]:
    """A trigger from the literal text every match of ``regex`` starts with, or none.

    Conservative: no alternation anywhere, no verbose mode, and no Unicode case folding
    (under which ``K`` and ``ſ`` match ``k`` and ``s`` while their bytes differ).
    """
    flags = regex.flags
    if flags & re.VERBOSE or "|" in regex.pattern:
        return ()
    if flags & re.IGNORECASE and not flags & re.ASCII:
        return ()
    m = _LITERAL_PREFIX.match(regex.pattern)
    if m is None:
        return ()
    literal = m.group(1)
    if regex.pattern[m.end() : m.end() + 1] in ("?", "*", "{"):
        literal = literal[:-1]  # the quantifier makes the last character optional
    if len(literal) < 3:
        return ()
    if not flags & re.IGNORECASE:
        return (re.escape(literal).encode(),)
    rest = _ci(literal[1:])
    heads = dict.fromkeys((literal[0].upper(), literal[0].lower()))
    return tuple(f"{re.escape(c)}{rest}".encode() for c in heads)


def _word_triggers(word: str, at: int, tail: str) -> tuple[bytes, ...]:
    """Case-insensitive ``word`` + ``tail`` anchored on ``word[at]`` (a rare letter, so the
    combined scan stops at few places); the letters after it are matched first, as they
    reject most places fastest, then a lookbehind checks the whole word."""
    after = _ci(word[at + 1 :])
    return tuple(
        f"{c}{after}{f'(?<={_ci(word[:at])}{c}{after})' if at else ''}{tail}".encode()
        for c in (word[at].upper(), word[at].lower())
    )


# After a secret-sounding name, canonical JSON shows one of these bytes: a quote, ``:``,
# ``=``, a space, or the backslash that starts an escaped quote, tab or newline.
_AFTER_NAME = r"""[\\"' :=]"""
_KEY_WORDS = r"passw(?:or)?d|secret|token|api[_-]?key|access[_-]?key|authorization"
_TOKEN = r"A-Za-z0-9\-._~+/"

_PRIVATE_KEY = SecretPattern(
    "private-key",
    re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?P<secret>[\s\S]+?)"
        r"(?=-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    ),
    "secret",
    (b"KEY-----", b"KEY BLOCK-----"),
)
_URL_PASSWORD = SecretPattern(
    "url-password",
    # The scheme is not part of the match (it stays anyway): starting at "://" keeps the
    # search a fast literal scan instead of trying every word as a scheme.
    re.compile(r"(?a)://[^\s:/?#@\"'<>\[\]]*:(?P<secret>(?!\[REDACTED)[^\s/?#\"'<>]+)@"),
    "secret",
    (rb'//[^/\s"]*@',),
)
_JWT = SecretPattern(
    "jwt",
    re.compile(r"(?a)eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    0,
    (rb"J(?<=\.eyJ)",),
)
# "sk-" not inside a word ("task-..."): in JSON the byte before it is not a letter or digit,
# unless that ends an escape (\n, \u00e9...), which decodes to a character that is not one.
_SK_TRIGGERS = (
    rb"k-(?<=sk-)(?:(?<![A-Za-z0-9]sk-)|(?<=\\[bfnrt]sk-)|(?<=\\u[0-9a-f]{4}sk-))"
    rb"[A-Za-z0-9_\-]{20}",
)
_ANTHROPIC = SecretPattern(
    "anthropic-key",
    re.compile(r"(?a)sk-(?<![A-Za-z0-9]sk-)ant-[A-Za-z0-9_\-]{20,}"),
    0,
    _SK_TRIGGERS,
)
_OPENAI = SecretPattern(
    "openai-key",
    re.compile(r"(?a)sk-(?<![A-Za-z0-9]sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    0,
    _SK_TRIGGERS,
)
_GITHUB = SecretPattern(
    "github-token",
    re.compile(r"(?a)\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    0,
    (rb"gh[pousr]_[A-Za-z0-9]{36}", rb"github_pat_"),
)
_SLACK = SecretPattern(
    "slack-token",
    re.compile(r"(?a)\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    0,
    (rb"xox[abposr]-",),
)
_AWS = SecretPattern(
    "aws-access-key-id",
    re.compile(r"(?a)\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    0,
    (rb"KIA(?<=AKIA)[A-Z0-9]{16}", rb"SIA(?<=ASIA)[A-Z0-9]{16}"),
)
_GOOGLE = SecretPattern(
    "google-api-key",
    re.compile(r"(?a)\bAIza[A-Za-z0-9_\-]{35}(?![A-Za-z0-9_\-])"),
    0,
    (rb"za(?<=AIza)[A-Za-z0-9_\-]{35}",),
)
_BEARER = SecretPattern(
    "bearer",
    # A token has a digit or punctuation, or is 16+ letters: "bearer of bad news" and
    # "a Bearer Token" stay, "Bearer abc.def" does not.
    re.compile(
        rf"(?ai)\bbearer\s+(?P<secret>(?=[{_TOKEN}]*[0-9\-._~+/])[{_TOKEN}]+=*|[A-Za-z]{{16,}}=*)"
    ),
    "secret",
    _word_triggers("bearer", 0, r"[ \\]"),
)
_ASSIGNMENT = SecretPattern(
    "assignment",
    re.compile(
        rf"(?ai)(?:{_KEY_WORDS})"
        r"""\\?["']?\s*[:=]\s*"""
        r"(?:(?:bearer|basic|token|digest)\s+)?+"  # an HTTP auth scheme word stays readable
        r"""\\?["']?"""
        r"""(?P<secret>(?!\[REDACTED)(?:(?<=")[^"\\\r\n]+|(?<=')[^'\\\r\n]+|[^\s"'`,;&<>\\]+))"""
    ),
    "secret",
    (
        *_word_triggers("password", 4, _AFTER_NAME),
        *_word_triggers("passwd", 4, _AFTER_NAME),
        *_word_triggers("secret", 2, _AFTER_NAME),
        *_word_triggers("token", 2, _AFTER_NAME),
        *_word_triggers("apikey", 3, _AFTER_NAME),
        *_word_triggers("api_key", 4, _AFTER_NAME),
        *_word_triggers("api-key", 4, _AFTER_NAME),
        *_word_triggers("accesskey", 6, _AFTER_NAME),
        *_word_triggers("access_key", 7, _AFTER_NAME),
        *_word_triggers("access-key", 7, _AFTER_NAME),
        *_word_triggers("authorization", 7, _AFTER_NAME),
    ),
)

DEFAULT_PATTERNS: Final[tuple[SecretPattern, ...]] = (
    _PRIVATE_KEY,
    _URL_PASSWORD,
    _JWT,
    _ANTHROPIC,  # before OpenAI's, which would also match "sk-ant-..."
    _OPENAI,
    _GITHUB,
    _SLACK,
    _AWS,
    _GOOGLE,
    _BEARER,  # before the assignment, so "Authorization: Bearer <jwt>" keeps "Bearer"
    _ASSIGNMENT,
)
"""Secret-shaped strings redacted by default (see the module docstring for what is not)."""


# ---------------------------------------------------------------------------------------------
# The redactor
