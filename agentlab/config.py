"""The configuration table: one place for every setting and where its value comes from.

Precedence: an explicit argument > an ``AGENTLAB_*`` environment variable >
``[tool.agentlab]`` in the nearest ``pyproject.toml`` > the default below.

| setting            | env                          | default          |
| ------------------ | ---------------------------- | ---------------- |
| store              | AGENTLAB_STORE               | agentlab.db, found upwards |
| durability         | AGENTLAB_DURABILITY          | full             |
| max_payload_bytes  | AGENTLAB_MAX_PAYLOAD_BYTES   | 16777216 (16 MiB)|
| batch_size         | AGENTLAB_BATCH_SIZE          | 1000             |
| flush_interval_s   | AGENTLAB_FLUSH_INTERVAL_S    | 0.2              |
| key_file           | AGENTLAB_KEY_FILE            | ~/.config/agentlab/key |

The store, when no setting names it, is the nearest ``agentlab.db`` in the working directory
or a folder above it (as git finds its repository), else ``./agentlab.db``; a relative
``store`` in a ``pyproject.toml`` is relative to that file's folder, so a notebook in a
subfolder of the project opens the project's store.

The signing key itself (for credential fingerprints and approval MACs) may instead be
given in ``AGENTLAB_KEY``; it is never read from pyproject, which is usually committed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from agentlab.errors import ConfigError

__all__ = ["Settings", "settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "agentlab.db"
    durability: Literal["full", "normal"] = "full"
    max_payload_bytes: int = 16 * 1024 * 1024
    batch_size: int = 1000
    flush_interval_s: float = 0.2
    key_file: str = ""
    store_from: str = "default"
    """Where ``store`` came from: ``AGENTLAB_STORE``, a pyproject.toml's path, ``found``
    (an agentlab.db in a folder above) or ``default`` (agentlab.db in the working folder)."""


DEFAULT_STORE_FILE = "agentlab.db"


def _pyproject_table(start: Path) -> tuple[dict[str, Any], Path]:
    """The ``[tool.agentlab]`` table of the nearest pyproject.toml and that file's folder."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {candidate}: {exc}") from exc
            table = data.get("tool", {}).get("agentlab", {})
            return (dict(table) if isinstance(table, dict) else {}), folder
    return {}, start


def _is_path(store: str) -> bool:
    return "://" not in store and not store.startswith("sqlite:")


def found_store(start: Path) -> Path | None:
    """The nearest existing ``agentlab.db`` in ``start`` or a folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_STORE_FILE
        if candidate.is_file():
            return candidate
    return None


def _coerce(name: str, raw: Any, kind: type) -> Any:
    try:
        value = kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}={raw!r} is not a valid {kind.__name__}") from exc
    if name == "durability" and value not in ("full", "normal"):
        raise ConfigError(f"setting durability={raw!r}: use 'full' or 'normal'")
    if name in ("max_payload_bytes", "batch_size") and value <= 0:
        raise ConfigError(f"setting {name}={raw!r} must be positive")
    return value


@lru_cache(maxsize=1)
def _cached(cwd: str, env_key: tuple[tuple[str, str], ...]) -> Settings:
    table, project = _pyproject_table(Path(cwd))
    env = dict(env_key)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "store_from":
            continue
        kind = type(f.default)
        env_name = f"AGENTLAB_{f.name.upper()}"
        if env_name in env:
            values[f.name] = _coerce(f.name, env[env_name], kind)
            if f.name == "store":
                values["store_from"] = env_name
        elif f.name in table:
            values[f.name] = _coerce(f.name, table[f.name], kind)
            if f.name == "store":
                values["store_from"] = str(project / "pyproject.toml")
                if _is_path(values["store"]) and not Path(
                        values["store"]).expanduser().is_absolute():
                    values["store"] = str(project / values["store"])  # the project's folder
    if "store" not in values and (found := found_store(Path(cwd))) is not None \
            and found.parent != Path(cwd):
        values["store"], values["store_from"] = str(found), "found"
    return Settings(**values)


def settings() -> Settings:
    """The settings in force for this process and working directory."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AGENTLAB_")))
    return _cached(os.getcwd(), env)
