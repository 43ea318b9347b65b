"""Reading the files importers are given: plain or gzip-compressed, told apart by content.

Public trajectory sets are large and compress ten to one, so the repository keeps its
vendored copies gzipped; an importer reads either form and sees the same bytes.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from agentlab.errors import ImportFormatError

__all__ = ["read_source"]

_GZIP_MAGIC = b"\x1f\x8b"


def read_source(path: str | Path) -> bytes:
    """The file's content, decompressed when it is gzip (by its magic bytes, not its name)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ImportFormatError(f"{p}: is a folder; name a file inside it") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFormatError(f"{p}: a damaged gzip file ({exc}); fetch it again") from exc
