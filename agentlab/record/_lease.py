"""Run leases: which recorder carries a run on, so that two processes never do at once.

A run is held by the recorder that records it, named ``host:pid:token``, until a time its
writer keeps pushing forward (every third of :data:`LEASE_S`) and that ends with the run.
A resume takes a run over only from a holder that is gone: on this host, a process that no
longer exists (or stopped renewing); elsewhere, a lease that ran out. So a resume started
while the original process still works, or two rollbacks at once, are refused instead of
both acting.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading

__all__ = ["LEASE_S", "activate", "deactivate", "holder_alive", "lease_until", "new_holder"]

LEASE_S = float(os.environ.get("AGENTLAB_RUN_LEASE_S", "60"))
"""How long a run's lease lasts without renewal (a live recorder renews it)."""

_HOST = socket.gethostname()
_live: set[str] = set()
_lock = threading.Lock()


def new_holder() -> str:
    """A fresh holder name for one recorder of this process."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_until(now_us: int) -> int:
    return now_us + int(LEASE_S * 1_000_000)


def activate(holder: str) -> None:
    with _lock:
        _live.add(holder)


def deactivate(holder: str) -> None:
    with _lock:
        _live.discard(holder)


def holder_alive(holder: str | None, held_until_us: int | None, now_us: int) -> bool:
    """Whether ``holder`` still carries its run on (see the module docstring)."""
    if holder is None:
        return False
    expired = held_until_us is not None and held_until_us < now_us
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return not expired
    host, pid = parts[0], int(parts[1])
    if host != _HOST:
        return not expired
    if pid == os.getpid():
        with _lock:
            return holder in _live
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    return not expired


def _forget_after_fork() -> None:
    global _lock
    _live.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
