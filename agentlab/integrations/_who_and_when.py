"""An importer of Who&When runs (ag2ai/Agents_Failure_Attribution): failed group chats of
several agents, one JSON file per run, with a human's label of the agent and the step that
caused the failure.

Each entry of the file's ``history`` becomes one event with its position
(``source="history[i]"``): a participant's message a ``message`` attributed to its agent;
an entry of a code executor (a participant named like ``Computer_terminal`` or
``executor``, or given in ``executors=``) that answers code the ``tool_call`` it is: the
code blocks of the last message that had any as its arguments, the output as its result, a
non-zero exit code as an error, attributed to the agent who wrote the code (an executor's
entry with no code to run is a message of its own). The question is the task input,
the ground truth the run's expected output, and the run failed (every run of the set did).
The files have no times: the runs of a folder start a minute apart in file-number order, and
say in their metadata that their times are synthetic.

The human labels (``mistake_agent``, ``mistake_step``, ``mistake_reason``) are *not*
stored with the run: they are the answer key of an evaluation, so
:func:`who_and_when_labels` returns them separately (``agentlab import ... --labels-out``),
in the form ``agentlab eval-attribution`` reads. Ids come from the file's content, so
importing a file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from agentlab.errors import ImportFormatError
from agentlab.integrations._files import Where, load_json, shape_errors
from agentlab.integrations._synthetic import (
    SYNTHETIC_TIMES,
    SyntheticRun,
    content_id,
    run_start_us,
    store_new,
)
from agentlab.store import RunStore

__all__ = ["AttributionLabel", "import_who_and_when", "who_and_when_files",
           "who_and_when_labels"]

_EXECUTOR_NAME = re.compile(r"terminal|executor", re.IGNORECASE)
_EXIT = re.compile(r"^\s*exitcode:\s*(-?\d+)")
_CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)

AttributionLabel = dict[str, Any]
"""``{"run_id", "step": "history[i]", "agent", "reason"}``: one labelled failure."""


def who_and_when_files(path: str | Path) -> list[Path]:
    """The run files at ``path``: the file itself, or the ``.json`` / ``.json.gz`` files of
    a folder and its subfolders (the data set keeps its two halves in two), each folder's in
    numeric order."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    files = [f for f in p.rglob("*") if f.name.endswith((".json", ".json.gz")) and f.is_file()]
    if not files:
        raise ImportFormatError(f"{p}: no .json or .json.gz files in this folder or below it")

    def order(f: Path) -> tuple[str, int, str]:
        stem = f.name.split(".")[0]
        return (str(f.parent), int(stem) if stem.isdigit() else 1 << 30, f.name)
    return sorted(files, key=order)


def _load(path: Path) -> tuple[dict[str, Any], str]:
    data, raw = load_json(path, "Who&When run")
    run_id = content_id("who-and-when", hashlib.sha256(raw).hexdigest()[:16])
    if not isinstance(data, dict) or not isinstance(data.get("history"), list):
        raise ImportFormatError(
            f"{path}: not a Who&When run (expected an object with a 'history' list of "
            "messages, each with 'content' and 'name' or 'role')", file=str(path))
    where = Where(path, run_id)
    for i, m in enumerate(data["history"]):
        if "content" not in where.obj(m, f"$.history[{i}]"):
            where.fail(f"$.history[{i}]", "a message with no 'content'")
    return data, run_id


def _speaker(m: dict[str, Any]) -> str:
    return str(m.get("name") or m.get("role") or "?")


def _is_executor(name: str, executors: frozenset[str]) -> bool:
    return name in executors or bool(_EXECUTOR_NAME.search(name))


def _run(data: dict[str, Any], run_id: str, executors: frozenset[str],
         start_us: int) -> SyntheticRun:
    run = SyntheticRun(run_id, start_us=start_us)
    history = data["history"]
    question = data.get("question")
    run.event("run_started", {
        "workflow": "who-and-when",
        "agent_name": "group-chat",
        "task_id": f"who-and-when:{data.get('question_ID') or run_id}",
        "task_input": {"question": question, "level": data.get("level")},
        "tags": ["who-and-when"],
        "metadata": {"agents": sorted({_speaker(m) for m in history}),
                     "system_prompts": data.get("system_prompt") or None,
                     **SYNTHETIC_TIMES},
    })
    truth = data.get("ground_truth")
    if truth is not None and str(truth).strip():
        run.event("expectation", {"outputs": [truth],
                                  "note": "Who&When ground truth of the question"})
    last_author: str | None = None
    last_code: list[str] = []
    for i, m in enumerate(history):
        name = _speaker(m)
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        if _is_executor(name, executors) and last_code:
            exit_code = _EXIT.match(text)
            body: dict[str, Any] = {"tool": name, "arguments": {"code": "\n".join(last_code)},
                                    "result": text}
            if exit_code is not None and int(exit_code.group(1)) != 0:
                body.update(status="error", error={
                    "type": "ExecutionFailed", "message": text.strip()[:2000]})
            run.event("tool_call", body, source=f"history[{i}]", agent=last_author)
            last_code = []
            continue
        # An executor that had no code to run speaks for the environment, not as an agent.
        role = "user" if _is_executor(name, executors) else "assistant"
        run.event("message", {"role": role, "content": content},
                  source=f"history[{i}]", agent=name)
        blocks = _CODE_BLOCK.findall(text)
        if blocks:
            last_code = [b.strip() for b in blocks]
            last_author = name
    run.event("run_ended", {"status": "failed", "success": False})
    return run


def import_who_and_when(path: str | Path, store: RunStore, *,
                        executors: Iterable[str] = (),
                        progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Import a Who&When run file, or every run file of a folder (plain or gzipped JSON);
    returns the run ids (new or present). ``executors`` names participants that run code
    (besides those named like a terminal or an executor). Every file is checked before any
    run is written (a malformed one is an :class:`~agentlab.errors.ImportFormatError`
    naming the file, the run and the JSON path), then each run is written in one
    transaction; ``progress(done, total)`` is told of each run written."""
    names = frozenset(executors)
    files = who_and_when_files(path)
    loaded = [_load(f) for f in files]
    built = []
    for n, (f, (data, run_id)) in enumerate(zip(files, loaded, strict=True)):
        with shape_errors(f, run_id):
            built.append(_run(data, run_id, names, run_start_us(n)))
    store_new(store, built, progress, source=path)
    return [r.run_id for r in built]


def who_and_when_labels(path: str | Path) -> Iterator[AttributionLabel]:
    """The human labels of the runs at ``path``, keyed by the run ids the importer gives."""
    for f in who_and_when_files(path):
        data, run_id = _load(f)
        step = data.get("mistake_step")
        if step is None or not str(step).strip().isdigit():
            continue  # no label, or "-1" (no step to blame): nothing to score against
        yield {"run_id": run_id, "step": f"history[{int(step)}]",
               "agent": data.get("mistake_agent"), "reason": data.get("mistake_reason"),
               "file": f.name}
