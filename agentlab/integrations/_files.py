"""Reading the files importers are given: plain or gzip-compressed, told apart by content.

Public trajectory sets are large and compress ten to one, so the repository keeps its
vendored copies gzipped; an importer reads either form and sees the same bytes.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any, NoReturn

from agentlab.errors import ImportFormatError

__all__ = ["Where", "load_json", "read_source"]

_GZIP_MAGIC = b"\x1f\x8b"


def read_source(path: str | Path) -> bytes:
    """The file's content, decompressed when it is gzip (by its magic bytes, not its name)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError(f"{p}: no such file", file=str(p)) from None
    except IsADirectoryError:
        raise ImportFormatError(f"{p}: is a folder; name a file inside it",
                               file=str(p)) from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFormatError(f"{p}: a damaged gzip file ({exc}); fetch it again",
                               file=str(p)) from exc


def load_json(path: str | Path, what: str) -> tuple[Any, bytes]:
    """The file's parsed JSON and its (decompressed) bytes; ``what`` names the format the
    file was given as, for the error when it is not JSON."""
    raw = read_source(path)
    try:
        return json.loads(raw), raw
    except RecursionError as exc:
        raise ImportFormatError(
            f"{path}: JSON nested too deeply to import; {what} files are a few levels "
            "deep, so this is not one", file=str(path)) from exc
    except ValueError as exc:
        raise ImportFormatError(f"{path}: not JSON ({exc}); a {what} file is JSON",
                                file=str(path)) from exc


class Where:
    """Where an importer is in a file: raises :class:`ImportFormatError` naming the file,
    the run and the JSON path of a value that is not what the format holds there."""

    def __init__(self, path: str | Path, run: str | None = None) -> None:
        self.path = str(path)
        self.run = run

    def fail(self, at: str, what: str) -> NoReturn:
        where = self.path + (f": run {self.run}" if self.run else "") + f": at {at}"
        raise ImportFormatError(f"{where}: {what}; nothing of this run was imported",
                                file=self.path, run=self.run, at=at)

    def obj(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(at, f"expected an object, found {_kind(value)}")
        return value

    def items(self, value: Any, at: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(at, f"expected a list, found {_kind(value)}")
        return value

    def text(self, value: Any, at: str) -> str | None:
        """A string, or None when absent (null)."""
        if value is not None and not isinstance(value, str):
            self.fail(at, f"expected a string, found {_kind(value)}")
        return value

    def number(self, value: Any, at: str) -> float | None:
        """A number, or None when absent (null)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(at, f"expected a number, found {_kind(value)}")
        return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    name = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    shown = repr(value) if not isinstance(value, (dict, list)) else ""
    kind = name.get(type(value), "a number" if isinstance(value, (int, float)) else
                    type(value).__name__)
    return f"{kind} {shown[:60]}".rstrip()
