"""Where a store lives on disk: announcing a default store about to be created empty, and
refusing a missing file where a store must already exist."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from agentlab.errors import NewStoreWarning, StoreError
from agentlab.store._engine import normalise_url

__all__ = ["announce_new_store", "check_sqlite_path", "require_existing_sqlite", "sqlite_path"]


def sqlite_path(url: str | os.PathLike[str]) -> Path | None:
    """The file a SQLite store URL or path names; None for other databases."""
    full = normalise_url(url)
    return Path(full.removeprefix("sqlite:///")) if full.startswith("sqlite:///") else None


def announce_new_store(store: str | os.PathLike[str], source: str = "default") -> None:
    """Warn (:class:`~agentlab.errors.NewStoreWarning`) when the default store is about to
    be created empty: a notebook in a subfolder, say, that did not find the project's, or a
    setting naming a file that is not there. ``source`` says where the name came from
    (:attr:`agentlab.config.Settings.store_from`)."""
    path = sqlite_path(store)
    if path is None:
        return
    path = path.resolve()
    if path.exists():
        return
    if source == "default":
        why = (f"no store found in {Path.cwd()} or any folder above it; creating a new empty "
               f"store at {path} (set AGENTLAB_STORE or [tool.agentlab] store in "
               "pyproject.toml to use an existing one)")
    else:
        named = "AGENTLAB_STORE" if source == "AGENTLAB_STORE" else (
            f"[tool.agentlab] store in {source}")
        why = (f"{named} names {path}, which does not exist; creating a new empty store "
               "there (check the path if you meant an existing store)")
    warnings.warn(f"agentlab: {why}", NewStoreWarning, stacklevel=3)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_sqlite_path(url: str | os.PathLike[str]) -> None:
    """Refuse, before SQLite touches it, a SQLite path that cannot be a store: a directory,
    an unreadable file, or a file that is not a SQLite database (a text file given to
    --store by mistake). An empty file is a new store."""
    path = sqlite_path(url)
    if path is None:
        return
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a store file; give a file in it (e.g. "
                         f"{path / 'agentlab.db'}) to --store or AGENTLAB_STORE")
    if not path.is_file():
        return
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read the store file {path} ({exc.strerror or exc}); check "
                         "its permissions, or give another --store") from None
    if head and head != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not an agentlab store: it is not a SQLite database (it begins "
            f"{head[:12]!r}); give the path of a store (e.g. agentlab.db) or a PostgreSQL URL "
            "to --store or AGENTLAB_STORE. The file was not changed")


def read_only_reason(url: str | os.PathLike[str]) -> str | None:
    """Why this user can read but not write the SQLite store at ``url`` (None: it can write,
    or the store does not exist yet). SQLite writes the file itself and, in WAL mode, keeps
    ``-wal`` and ``-shm`` files beside it, so a folder it cannot create them in makes the
    store read-only too."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    if not os.access(path, os.W_OK):
        return f"the file {path} is read-only for this user"
    wal = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
    if not os.access(path.parent, os.W_OK | os.X_OK) and not all(
            os.access(f, os.W_OK) for f in wal):
        return f"its folder {path.parent} is read-only for this user"
    return None


def require_existing_sqlite(url: str | os.PathLike[str]) -> None:
    """Refuse a SQLite URL whose file does not exist (a read-only command, a typo)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(
            f"no store at {path}; record a run into it first (or run `agentlab demo`), "
            "or check --store / AGENTLAB_STORE"
        )
