"""How old a tool result says it is: the fields agentlab reads for freshness checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["AGE_FIELDS", "STAMP_FIELDS", "result_age", "result_stamp"]

AGE_FIELDS = ("age_s", "cache_age_s", "age_seconds")
"""Result fields read as the value's age in seconds."""
STAMP_FIELDS = ("as_of", "fetched_at", "cached_at", "updated_at", "timestamp")
"""Result fields read as when the value was true (the first present one counts)."""


def result_age(result: Any) -> float | None:
    """The age in seconds a result reports about itself, if it does."""
    if not isinstance(result, Mapping):
        result = getattr(result, "__dict__", None)
        if not isinstance(result, Mapping):
            return None
    for name in AGE_FIELDS:
        raw = result.get(name)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
    return None


def result_stamp(result: Any) -> datetime | None:
    """When a (recorded, JSON) result says its value was true, if it does."""
    if not isinstance(result, Mapping):
        return None
    for name in STAMP_FIELDS:
        raw = result.get(name)
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None
