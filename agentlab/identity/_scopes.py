"""Scopes and scope patterns: ``crm:read``, ``jira:write:SUP-*``.

A scope is a colon-separated path of segments. A pattern matches a scope segment by
segment, each with shell-style globs (``SUP-*`` matches ``SUP-57``); a last segment ``**``
matches any remaining segments. So ``jira:write:SUP-*`` allows ``jira:write:SUP-57`` but
not ``jira:write:ENG-101`` nor ``jira:admin``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from agentlab.errors import GrantError

__all__ = ["ScopeSpec", "is_broad", "render_scope", "scope_matches", "validate_scope"]

ScopeSpec = str | Callable[[Mapping[str, Any]], str]
"""What a tool declares: a scope, a template filled from the call's arguments
(``"jira:write:{project}"``), or a function of the arguments."""

_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]+$")
_NOT_CONCRETE = re.compile(r"[*?\[\]!]|\A:|::|:\Z|\A\Z")
"""A glob character or an empty segment (at either end, between two colons, or all)."""
_BROAD_WORDS = {"admin", "root", "superuser", "owner"}


def validate_scope(pattern: str) -> str:
    """Return ``pattern`` if well formed, else raise GrantError saying what is wrong."""
    segments = pattern.split(":")
    if not pattern or any(not s for s in segments):
        raise GrantError(f"scope {pattern!r} has an empty segment; write e.g. 'crm:read'")
    for i, seg in enumerate(segments):
        if seg == "**":
            if i != len(segments) - 1:
                raise GrantError(f"scope {pattern!r}: '**' may only be the last segment")
            continue
        if not _SEGMENT.match(seg):
            raise GrantError(
                f"scope {pattern!r}: segment {seg!r} may hold letters, digits, '_', '-', '.' "
                "and the globs * ? [..]"
            )
    return pattern


def scope_matches(pattern: str, scope: str) -> bool:
    """Whether a grant's scope ``pattern`` allows the required ``scope``."""
    return _matches(pattern, scope)


@functools.lru_cache(maxsize=4096)
def _matches(pattern: str, scope: str) -> bool:
    # A pure function of two strings asked on every governed call, mostly of the same
    # few pairs: remembered, a check costs a dictionary look-up instead of ~1.5 µs.
    want = pattern.split(":")
    have = scope.split(":")
    if want and want[-1] == "**":
        head = want[:-1]
        return len(have) >= len(head) and all(
            fnmatchcase(s, p) for s, p in zip(have, head, strict=False)
        )
    return len(want) == len(have) and all(
        fnmatchcase(s, p) for s, p in zip(have, want, strict=True)
    )


def is_broad(pattern: str) -> bool:
    """A wildcard or admin-like scope: one that the grant lint flags on side effects."""
    segments = pattern.split(":")
    if any(seg in ("*", "**") for seg in segments):
        return True
    return any(seg.lower() in _BROAD_WORDS for seg in segments)


def render_scope(spec: ScopeSpec, arguments: Mapping[str, Any]) -> str:
    """The scope a call needs, filled from its arguments."""
    if callable(spec):
        scope = spec(arguments)
    else:
        try:
            scope = spec.format_map(arguments) if "{" in spec else spec
        except (KeyError, IndexError, ValueError) as exc:
            raise GrantError(
                f"scope template {spec!r} needs argument {exc} that the call did not pass"
            ) from exc
    if not isinstance(scope, str):
        raise GrantError(f"the scope function returned {scope!r}, not a string")
    # A required scope is concrete: globs or empty segments here would come from arguments
    # (a project named "*") and must not widen what the call claims to need.
    if _NOT_CONCRETE.search(scope) is not None:
        raise GrantError(
            f"the call needs scope {scope!r}, which is not concrete (globs or empty segments, "
            "probably from an argument); refusing rather than guessing"
        )
    return scope
