"""The signing key, kept outside the store, and the keyed hashes made with it.

Credential fingerprints and approval MACs are HMAC-SHA256 under sub-keys derived from one
secret key. The key comes from ``AGENTLAB_KEY`` or from a key file (``AGENTLAB_KEY_FILE``,
default ``~/.config/agentlab/key``), created with 32 random bytes and mode 0600 on first
use. Whoever can write the database but not read the key cannot forge a decision, and a
fingerprint reveals nothing of a secret without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from agentlab.config import settings
from agentlab.errors import SecretError

__all__ = ["fingerprint", "key_path", "keyed_hash", "signing_key"]

_MIN_KEY_BYTES = 16
_lock = threading.Lock()
_cache: dict[str, bytes] = {}


def key_path() -> Path:
    """Where the key file is (whether or not it exists yet)."""
    configured = settings().key_file
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentlab" / "key"


def _read_or_create(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return _read_or_create(path)
        with os.fdopen(fd, "wb") as fh:
            fh.write(fresh + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return fresh
    except OSError as exc:
        raise SecretError(f"cannot read the signing key file {path}: {exc}") from exc
    if len(data) < _MIN_KEY_BYTES:
        raise SecretError(
            f"the signing key in {path} is {len(data)} bytes; it needs at least "
            f"{_MIN_KEY_BYTES} (delete the file and agentlab makes a new one, but existing "
            "fingerprints and pending approvals will no longer verify)"
        )
    return data


def signing_key() -> bytes:
    """The process's signing key (from ``AGENTLAB_KEY`` or the key file)."""
    # Cached by where it comes from, so a governed call does not re-read settings.
    where = (os.environ.get("AGENTLAB_KEY"), os.environ.get("AGENTLAB_KEY_FILE"), os.getcwd())
    found = _by_source.get(where)
    if found is None:
        found = _by_source[where] = _load_key()
    return found


_by_source: dict[tuple[str | None, str | None, str], bytes] = {}
_subkeys: dict[tuple[bytes, str], bytes] = {}


def _load_key() -> bytes:
    env = os.environ.get("AGENTLAB_KEY")
    if env is not None:
        if len(env.encode()) < _MIN_KEY_BYTES:
            raise SecretError(
                f"AGENTLAB_KEY is {len(env.encode())} bytes; it needs at least {_MIN_KEY_BYTES} "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return env.encode()
    path = key_path()
    with _lock:
        found = _cache.get(str(path))
        if found is None:
            found = _cache[str(path)] = _read_or_create(path)
        return found


def keyed_hash(purpose: str, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under the sub-key for ``purpose`` (hex)."""
    key = signing_key()
    sub = _subkeys.get((key, purpose))
    if sub is None:
        sub = _subkeys[(key, purpose)] = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
    return hmac.new(sub, data, hashlib.sha256).hexdigest()


def fingerprint(secret: str) -> str:
    """The keyed fingerprint of a credential's secret: checkable, not reversible."""
    return keyed_hash("credential-fingerprint", secret.encode("utf-8"))
