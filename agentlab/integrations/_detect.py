"""Telling which format a file to import is in, by its content (and a ``.traj`` name).

* ``agentlab``: the portable JSONL form (``.jsonl``), its first line a ``header`` (or
  another of its line types: a damaged file is told which line is wrong on import);
* ``tau-bench``: a JSON array of runs with ``task_id`` and ``traj``;
* ``swe-agent``: a JSON object with a ``trajectory`` list (files named ``*.traj``), or a
  folder holding such files;
* ``who-and-when``: a JSON object with a ``history`` list of messages, or a folder of such
  ``.json`` files;
* ``otlp``: OpenTelemetry spans as OTLP JSON, a ``{"resourceSpans": [...]}`` document (or
  one per line, as the Collector's ``file`` exporter writes them).

Compressed files are read as their content. A file none of these fits is an
:class:`~agentlab.errors.ImportFormatError` listing the formats, to be named with
``--format``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentlab.errors import ImportFormatError
from agentlab.integrations._files import read_source

__all__ = ["FORMATS", "detect_format"]

_PORTABLE_LINES = frozenset({"header", "blob", "event", "end"})

FORMATS: dict[str, str] = {
    "agentlab": "agentlab's portable JSONL, .jsonl (what `agentlab export` writes)",
    "tau-bench": "a tau-bench results file: a JSON array of runs with task_id and traj",
    "swe-agent": "a SWE-agent trajectory (.traj): a JSON object with a trajectory list, or "
                 "a folder of them",
    "who-and-when": "Who&When group chats: a JSON object with a history list, or a folder "
                    "of them",
    "otlp": "OpenTelemetry spans as OTLP JSON: {\"resourceSpans\": [...]} documents, one "
            "or one per line",
}
"""The formats ``agentlab import`` reads, and what each looks like."""


def _unknown(path: Path, why: str) -> ImportFormatError:
    listed = "; ".join(f"{name}: {what}" for name, what in FORMATS.items())
    return ImportFormatError(
        f"{path}: cannot tell the format ({why}); name it with --format, one of: {listed}",
        file=str(path))


def _of_json(data: Any) -> str | None:
    if isinstance(data, list) and data and all(
            isinstance(r, dict) and "traj" in r and "task_id" in r for r in data):
        return "tau-bench"
    if isinstance(data, dict):
        if "resourceSpans" in data:
            return "otlp"
        if isinstance(data.get("trajectory"), list):
            return "swe-agent"
        if isinstance(data.get("history"), list):
            return "who-and-when"
    return None


def _of_folder(path: Path) -> str:
    if any(f.name.endswith((".traj", ".traj.gz")) for f in path.rglob("*")):
        return "swe-agent"
    jsons = sorted(f for f in path.rglob("*")
                   if f.name.endswith((".json", ".json.gz")) and f.is_file())
    if jsons and detect_format(jsons[0]) == "who-and-when":
        return "who-and-when"
    raise _unknown(path, "a folder with no .traj files and no Who&When .json files, in it "
                         "or below it")


def detect_format(path: str | Path) -> str:
    """The format of the file or folder at ``path`` (a key of :data:`FORMATS`)."""
    p = Path(path)
    if p.is_dir():
        return _of_folder(p)
    if p.name.endswith((".traj", ".traj.gz")):
        return "swe-agent"
    raw = read_source(p)
    text = raw.lstrip()
    if not text:
        raise _unknown(p, "the file is empty")
    if text[:1] == b"{":
        first = text.split(b"\n", 1)[0]
        try:
            head = json.loads(first)
        except (ValueError, RecursionError):
            head = None
        if isinstance(head, dict) and head.get("type") in _PORTABLE_LINES:
            return "agentlab"  # a damaged one is told apart line by line on import
        if isinstance(head, dict) and "resourceSpans" in head:
            return "otlp"  # one document a line
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        return "agentlab"
    if text[:1] not in (b"{", b"["):
        raise _unknown(p, "it is not JSON")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _unknown(p, "JSON nested too deeply") from None
    except ValueError as exc:
        raise _unknown(p, f"not JSON nor JSON lines: {exc}") from None
    found = _of_json(data)
    if found is None:
        shape = f"a JSON {'array' if isinstance(data, list) else type(data).__name__}"
        if isinstance(data, list) and not data:
            shape = "an empty JSON array"
        elif isinstance(data, dict):
            shape = f"a JSON object with keys {sorted(data)[:8]}"
        raise _unknown(p, f"{shape} fits none of them")
    return found
