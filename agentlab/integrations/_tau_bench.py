"""An importer of tau-bench run files (``EnvRunResult`` arrays, see sierra-research
tau-bench's ``historical_trajectories``): each (task, trial) becomes one agentlab run.

One event per message of the trajectory, each with its position (``source="traj[i]"``):
the system prompt and the user simulator's turns become ``message`` events; each assistant
message an ``llm_call`` (its response: the text and the tool calls it asked for); each tool
message the ``tool_call`` it answers (paired by ``tool_call_id`` in order, since ids recur
even within a run), with the parsed JSON result, or an error when the content starts with
``Error:``. tau-bench's tools that only read (``get_``, ``search_``, ``list_``, ``find_``,
``calculate``, ``think``) are recorded as read-only, every other tool as side-effecting
(``read_only=`` changes the rule). The task's gold writes (its gold actions but the reads,
which the suite does not score) and outputs become the run's ``expectation`` event; the
reward its outcome.

The task is named ``tau-bench:DOMAIN:NNN``, its number zero-padded to three digits so that
task names sort as numbers do (``metadata.task_index`` keeps the number). The files carry no
timestamps, tokens or agent cost: events get synthetic, strictly increasing times (the runs
ordered by task number then trial, each run's metadata saying its times are synthetic), and
tokens and cost are left unknown rather than guessed. Nor does a file's content name the
agent or its model, but its name often does: tau-bench's ``run.py`` names its results
``STRATEGY-MODEL-TEMPERATURE_range_A-B_user-USERMODEL-USERSTRATEGY_TIME.json`` and its
historical trajectories ``MODEL-DOMAIN.json``; the run's agent is ``tau-bench-STRATEGY``
(``tau-bench-agent`` when unnamed) and its version the model (``model=`` overrides the name;
none when nothing names it).

Ids are derived from the file's content, the task and the trial, so importing the same file
twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from agentlab.errors import ImportFormatError
from agentlab.integrations._files import Where, load_json
from agentlab.integrations._synthetic import (
    SYNTHETIC_TIMES,
    SyntheticRun,
    content_id,
    run_start_us,
    store_new,
)
from agentlab.store import RunStore

__all__ = [
    "FileNameHints",
    "file_name_hints",
    "import_tau_bench",
    "task_name",
    "tau_bench_read_only",
]

_READ_PREFIXES = ("get_", "search_", "list_", "find_", "calculate", "think")
# Words in tool names that belong to one tau-bench domain's tool set only.
_DOMAIN_WORDS = {"airline": ("reservation", "flight", "baggage", "certificate"),
                 "retail": ("order", "product", "user_address")}


def detect_domain(data: list[dict[str, Any]]) -> str | None:
    """The tau-bench domain whose tool names the runs use most (gold actions and the
    agent's calls), or None when no tool name points to one."""
    votes = dict.fromkeys(_DOMAIN_WORDS, 0)
    for run in data:
        task = (run.get("info") or {}).get("task") or {}
        names = [a.get("name", "") for a in task.get("actions") or [] if isinstance(a, dict)]
        for msg in run.get("traj") or []:
            for call in (msg.get("tool_calls") or []) if isinstance(msg, dict) else []:
                names.append(((call or {}).get("function") or {}).get("name", ""))
        for name in names:
            for domain, words in _DOMAIN_WORDS.items():
                votes[domain] += any(w in str(name) for w in words)
    best = max(votes, key=lambda d: votes[d])
    return best if votes[best] > 0 else None


def tau_bench_read_only(tool: str) -> bool:
    """Whether a tau-bench tool only reads (its name says so, by the suite's convention)."""
    return tool.startswith(_READ_PREFIXES)


def _parse(content: Any) -> tuple[Any, bool]:
    """A tool result: parsed JSON when it is JSON, and whether it is an error."""
    if isinstance(content, str):
        if content.startswith("Error:"):
            return content, True
        try:
            return json.loads(content), False
        except ValueError:
            return content, False
    return content, False



_STRATEGIES = ("tool-calling", "few-shot", "react", "act")
_RUN_PY_NAME = re.compile(
    r"^(?P<strategy>" + "|".join(_STRATEGIES) + r")-(?P<model>.+)-(?P<temperature>[0-9.]+)"
    r"_range_-?\d+--?\d+_user-(?P<user_model>.+)-(?P<user_strategy>[a-z_]+)_\d+$")
_HISTORICAL_NAME = re.compile(r"^(?P<model>.+)-(?P<domain>airline|retail)(?:\..*)?$")
TASK_DIGITS = 3


class FileNameHints(NamedTuple):
    """What a tau-bench results file's name says (None: it does not)."""

    model: str | None = None
    strategy: str | None = None
    user_model: str | None = None
    domain: str | None = None


def file_name_hints(path: str | Path) -> FileNameHints:
    """The agent strategy, model, user model and domain a results file's name gives, by
    tau-bench's two naming schemes (see the module docstring)."""
    name = Path(path).name
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    m = _RUN_PY_NAME.match(name)
    if m:
        return FileNameHints(m["model"], m["strategy"], m["user_model"])
    m = _HISTORICAL_NAME.match(name)
    if m:
        return FileNameHints(m["model"], domain=m["domain"])
    return FileNameHints()


def task_name(domain: str, task_id: Any) -> str:
    """``tau-bench:DOMAIN:NNN``: a whole-number task id zero-padded, so names sort as the
    numbers do."""
    number = _task_number(task_id)
    shown = str(task_id) if number is None else f"{number:0{TASK_DIGITS}d}"
    return f"tau-bench:{domain}:{shown}"


def _task_number(task_id: Any) -> int | None:
    if isinstance(task_id, bool):
        return None
    if isinstance(task_id, int):
        return task_id
    if isinstance(task_id, str) and task_id.isdigit():
        return int(task_id)
    return None


def _check(run: Any, k: int, where: Where) -> dict[str, Any]:
    """Check the shape the importer reads, naming the JSON path of the first misfit."""
    at = f"$[{k}]"
    data = where.obj(run, at)
    if isinstance(data["task_id"], (dict, list)) or data["task_id"] is None:
        where.fail(f"{at}.task_id", "expected a task number or name")
    where.number(data.get("reward"), f"{at}.reward")
    info = data.get("info")
    if info is not None:
        task = where.obj(info, f"{at}.info").get("task")
        if task is not None:
            where.obj(task, f"{at}.info.task")
            for j, action in enumerate(where.items(task.get("actions") or [],
                                                   f"{at}.info.task.actions")):
                where.obj(action, f"{at}.info.task.actions[{j}]")
                where.text(action.get("name"), f"{at}.info.task.actions[{j}].name")
                if action.get("kwargs") is not None:
                    where.obj(action["kwargs"], f"{at}.info.task.actions[{j}].kwargs")
            where.items(task.get("outputs") or [], f"{at}.info.task.outputs")
    for i, msg in enumerate(where.items(data["traj"], f"{at}.traj")):
        where.obj(msg, f"{at}.traj[{i}]")
        where.text(msg.get("role"), f"{at}.traj[{i}].role")
        for j, call in enumerate(where.items(msg.get("tool_calls") or [],
                                             f"{at}.traj[{i}].tool_calls")):
            call_at = f"{at}.traj[{i}].tool_calls[{j}]"
            fn = where.obj(where.obj(call, call_at).get("function"), f"{call_at}.function")
            where.text(fn.get("name"), f"{call_at}.function.name")
    return data


def _run(data: dict[str, Any], run_id: str, domain: str, names: FileNameHints,
         read_only: Callable[[str], bool], start_us: int) -> SyntheticRun:
    info = data.get("info") or {}
    task = info.get("task") or {}
    run = SyntheticRun(run_id, start_us=start_us)
    model = names.model or "unknown"
    run.event("run_started", {
        "workflow": f"tau-bench-{domain}",
        "agent_name": f"tau-bench-{names.strategy}" if names.strategy else "tau-bench-agent",
        "agent_version": names.model,
        "task_id": task_name(domain, data["task_id"]),
        "task_input": {"instruction": task.get("instruction"), "user_id": task.get("user_id")},
        "tags": ["tau-bench", f"trial:{data.get('trial')}"],
        "metadata": {k: v for k, v in {
            "trial": data.get("trial"), "task_index": _task_number(data["task_id"]),
            "ended_by": info.get("source"), "user_cost_usd": info.get("user_cost"),
            "user_model": names.user_model, **SYNTHETIC_TIMES}.items() if v is not None},
    })
    run.event("expectation", {
        "actions": [{"name": a.get("name", "?"), "arguments": a.get("kwargs") or {}}
                    for a in task.get("actions") or [] if not read_only(a.get("name", "?"))],
        "outputs": list(task.get("outputs") or []),
        "note": "tau-bench gold: the task's side-effecting actions (its reads left out) and "
                "the outputs the agent must state",
    })
    traj = data["traj"]
    # Pair calls and results by id, in order: the same id can recur within one run.
    results: dict[Any, deque[int]] = {}
    for i, m in enumerate(traj):
        if m.get("role") == "tool":
            results.setdefault(m.get("tool_call_id"), deque()).append(i)
    for i, msg in enumerate(traj):
        role = msg.get("role")
        if role in ("user", "system"):
            run.event("message", {"role": role, "content": msg.get("content")},
                      source=f"traj[{i}]")
        elif role == "assistant":
            calls = msg.get("tool_calls") or []
            run.event("llm_call", {
                "model": model,
                "response": {"content": msg.get("content"),
                             "tool_calls": [c.get("function") for c in calls]},
                "cost_source": "unknown",
            }, source=f"traj[{i}]")
            for call in calls:
                _tool_call(run, call, traj, results, read_only, i)
    reward = data.get("reward")
    success = reward is not None and float(reward) >= 1.0
    run.event("run_ended", {"status": "succeeded" if success else "failed", "success": success,
                            "score": None if reward is None else float(reward)})
    return run


def _tool_call(run: SyntheticRun, call: dict[str, Any], traj: list[dict[str, Any]],
               results: dict[Any, deque[int]], read_only: Callable[[str], bool],
               asked_at: int) -> None:
    fn = call.get("function") or {}
    name = fn.get("name", "?")
    try:
        arguments = json.loads(fn.get("arguments") or "{}")
    except ValueError:
        arguments = {"_raw": fn.get("arguments")}
    pending = results.get(call.get("id"))
    at = pending.popleft() if pending else None
    body: dict[str, Any] = {"tool": name, "call_id": call.get("id"),
                            "arguments": arguments if isinstance(arguments, dict)
                            else {"_raw": arguments},
                            "side_effect": not read_only(name)}
    if at is None:
        body.update(status="error", error={
            "type": "MissingResult", "message": "no tool message answers this call"})
    else:
        result, failed = _parse(traj[at].get("content"))
        if failed:
            body.update(status="error", error={"type": "ToolError", "message": str(result)})
        else:
            body["result"] = result
    run.event("tool_call", body, source=f"traj[{at if at is not None else asked_at}]")


def import_tau_bench(path: str | Path, store: RunStore, *, domain: str | None = None,
                     model: str | None = None,
                     read_only: Callable[[str], bool] = tau_bench_read_only,
                     progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Import every run of a tau-bench results file (plain or gzipped JSON); returns the run
    ids (new or present), in the file's order. Ids come from the decompressed content, so
    both forms agree. ``read_only(tool)`` tells the tools that change nothing (default:
    tau-bench's naming). ``domain`` (airline, retail...) is read from the tool names when
    not given, else from the file's name; ``model`` from the file's name. Every run is
    checked before any is written, and each is written in one transaction (a run already
    stored is left as it is): a malformed run
    is an :class:`~agentlab.errors.ImportFormatError` naming the file, the run and the JSON
    path, and nothing is imported. ``progress(done, total)`` is told of each run written."""
    data, raw = load_json(path, "tau-bench")
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and "traj" in r and "task_id" in r for r in data
    ):
        raise ImportFormatError(
            f"{path}: not a tau-bench results file (expected a JSON array of runs with "
            "'task_id', 'trial' and 'traj')", file=str(path)
        )
    file_id = hashlib.sha256(raw).hexdigest()[:16]
    run_ids = [content_id("tau-bench", file_id, r["task_id"], r.get("trial")) for r in data]
    for k, (run, run_id) in enumerate(zip(data, run_ids, strict=True)):
        _check(run, k, Where(path, f"{run_id} ($[{k}], task {run['task_id']!r}, trial "
                                   f"{run.get('trial')!r})"))
    names = file_name_hints(path)
    if model is not None:
        names = names._replace(model=model)
    if domain is None:
        domain = detect_domain(data) or names.domain
        if domain is None and data:
            raise ImportFormatError(
                f"{path}: no tool name tells the tau-bench domain; pass it with "
                "domain= (--domain airline|retail)", file=str(path))
    # Synthetic times in task-number order, then trial: a run list sorts as the tasks do.
    order = sorted(range(len(data)), key=lambda k: (
        _task_number(data[k]["task_id"]) is None, _task_number(data[k]["task_id"]) or 0,
        str(data[k]["task_id"]), str(data[k].get("trial")), k))
    slot = {k: n for n, k in enumerate(order)}
    built = [_run(run, run_id, domain or "unknown", names, read_only, run_start_us(slot[k]))
             for k, (run, run_id) in enumerate(zip(data, run_ids, strict=True))]
    store_new(store, built, progress)
    return run_ids
