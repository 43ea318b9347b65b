"""One store per URL in a process: every run recorded into the same URL shares its store
and so its one background writer. A forked child starts with none (the parent's database
connections and writer thread are not its own)."""

from __future__ import annotations

import os
import threading

from agentlab.config import settings
from agentlab.store import RunStore, announce_new_store, normalise_url, open_store

__all__ = ["store_for"]

_stores: dict[str, RunStore] = {}
_stores_lock = threading.Lock()


def store_for(store: RunStore | str | os.PathLike[str] | None) -> RunStore:
    """A store object, or the process's one store for a URL/path (one writer per store)."""
    if isinstance(store, RunStore):
        return store
    configured = settings()
    key = normalise_url(store if store is not None else configured.store)
    with _stores_lock:
        found = _stores.get(key)
        if found is None:
            if store is None:
                announce_new_store(key, configured.store_from)
            found = _stores[key] = open_store(key)
        return found


def _forget_stores_after_fork() -> None:
    global _stores_lock
    _stores.clear()
    _stores_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_stores_after_fork)
