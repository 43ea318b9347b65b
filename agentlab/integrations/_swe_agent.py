"""An importer of SWE-agent trajectories (``.traj`` files, plain or gzipped): one run each.

Both of SWE-agent's layouts are read. Each entry of ``trajectory`` (one agent step, with
``source="trajectory[i]"``) becomes an ``llm_call`` (the response, the thought, and the
action it chose), then the ``tool_call`` that ran the action, its ``observation`` the result,
then a ``checkpoint`` of the step's ``state`` (open file, working directory...) when it
changed. In the newer layout the step's assistant message in ``history`` names the tool and
its JSON arguments (``tool_calls``) and ``execution_time`` its duration; in the older one the
tool is the action's first word (``edit``, ``open``, ``python``...) and its arguments the
command line. Commands that only look (``open``, ``goto``, ``scroll_*``, ``search_*``,
``find_file``, ``ls``, ``cat``..., ``str_replace_editor view``) are recorded as read-only,
every other as side-effecting. The system prompt and the issue (the first message of
``history`` that is not a demonstration) become ``message`` events.

The instance id (``replay_config.problem_statement.id``, else the file's name up to its
first dot, as SWE-agent names it ``INSTANCE.traj``) is the run's task; the model
(``replay_config.agent.model.name``) its agent version. ``info.model_stats`` gives the run's
totals only, not each call's, so its cost and tokens are set on the run's last model call
(every other call's are unknown); zero totals (a replayed demonstration) are left unknown.
``info.exit_status`` is the outcome: ``submitted`` (also after a limit, ``submitted
(exit_cost)``) ends the run succeeded, an ``exit_error`` errored and every other exit
(``exit_cost``, ``exit_context``, ``exit_format``...) failed; ``success`` stays unknown, as
no trajectory says whether its patch resolved the issue. The file has no timestamps: times
are synthetic (marked so in the run's metadata), tool durations those the file records.
Ids come from the file's content, so importing it twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

__all__ = ["import_swe_agent", "swe_agent_files", "swe_agent_read_only"]

_READ_COMMANDS = frozenset({
    "open", "goto", "scroll_up", "scroll_down", "search_dir", "search_file", "find_file",
    "ls", "cat", "head", "tail", "grep", "find", "pwd", "wc", "git_diff", "filemap",
})
_SUFFIXES = (".traj", ".traj.gz")


def swe_agent_read_only(tool: str, arguments: dict[str, Any]) -> bool:
    """Whether a SWE-agent command only looks (by its name, or a ``view`` command)."""
    return tool in _READ_COMMANDS or arguments.get("command") == "view"


def swe_agent_files(path: str | Path) -> list[Path]:
    """The trajectories at ``path``: the file itself, or every ``.traj`` / ``.traj.gz``
    under a folder (SWE-agent writes one folder per instance), sorted by path."""
    p = Path(path)
    if not p.is_dir():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.name.endswith(_SUFFIXES) and f.is_file())
    if not files:
        raise ImportFormatError(f"{p}: no .traj or .traj.gz files in this folder",
                                file=str(p))
    return files


def _replay_config(data: dict[str, Any], where: Where) -> dict[str, Any]:
    config = data.get("replay_config")
    if isinstance(config, str):  # some SWE-agent versions store it as a JSON string
        try:
            config = json.loads(config)
        except ValueError:
            where.fail("$.replay_config", "a string that is not JSON")
    if config is None:
        return {}
    return where.obj(config, "$.replay_config")


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


def _instance_id(path: Path, config: dict[str, Any]) -> str:
    given = _dig(config, "problem_statement", "id")
    if isinstance(given, str) and given:
        return given
    return path.name.split(".")[0]


def _state(value: Any, at: str, where: Where) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # the older layout: a JSON object written as text
        try:
            value = json.loads(value)
        except ValueError:
            where.fail(at, "a state string that is not a JSON object")
    return where.obj(value, at)


def _steps_messages(history: list[Any], where: Where) -> tuple[list[tuple[int, dict[str, Any]]],
                                                                  list[tuple[int, dict[str, Any]]]]:
    """The history's opening messages (system prompt, issue) and its assistant messages
    (one per trajectory step), demonstrations left out, with their positions."""
    opening: list[tuple[int, dict[str, Any]]] = []
    steps: list[tuple[int, dict[str, Any]]] = []
    for j, m in enumerate(history):
        msg = where.obj(m, f"$.history[{j}]")
        role = where.text(msg.get("role"), f"$.history[{j}].role")
        if msg.get("is_demo"):
            continue
        if role == "assistant":
            steps.append((j, msg))
        elif not steps and role in ("system", "user") and len(opening) < 2:
            opening.append((j, msg))
    return opening, steps


def _action(step: dict[str, Any], msg: dict[str, Any] | None, at: str, hat: str | None,
            where: Where) -> tuple[str, dict[str, Any], str | None]:
    """The tool, its arguments and its call id for one step's action."""
    calls = where.items(msg.get("tool_calls") or [], f"{hat}.tool_calls") if msg else []
    if calls:
        call = where.obj(calls[0], f"{hat}.tool_calls[0]")
        fn = where.obj(call.get("function"), f"{hat}.tool_calls[0].function")
        name = where.text(fn.get("name"), f"{hat}.tool_calls[0].function.name") or "?"
        raw = fn.get("arguments")
        try:
            args = json.loads(raw) if isinstance(raw, str) else (raw or {})
        except ValueError:
            args = {"_raw": raw}
        call_id = call.get("id")
        return name, args if isinstance(args, dict) else {"_raw": args}, \
            call_id if isinstance(call_id, str) else None
    action = where.text(step.get("action"), f"{at}.action") or ""
    words = action.split()
    return (words[0] if words else "?"), {"command": action.rstrip("\n")}, None


def _exit(status: str | None) -> dict[str, Any]:
    if status is None:
        return {"status": "failed", "error": {
            "type": "NoExitStatus", "message": "the trajectory records no exit status"}}
    if status.startswith("submitted"):
        return {"status": "succeeded"}
    kind = "errored" if "error" in status else "failed"
    return {"status": kind, "error": {"type": "ExitStatus", "message": status}}


def _usage(stats: dict[str, Any] | None, where: Where) -> dict[str, Any]:
    """The run's cost and tokens from ``info.model_stats``; nothing when they are zero."""
    if not stats:
        return {}
    at = "$.info.model_stats"
    cost = where.number(stats.get("instance_cost", stats.get("total_cost")),
                        f"{at}.instance_cost")
    sent = where.number(stats.get("tokens_sent"), f"{at}.tokens_sent")
    received = where.number(stats.get("tokens_received"), f"{at}.tokens_received")
    if not cost and not sent and not received:
        return {}
    return {"cost_usd": cost, "input_tokens": None if sent is None else int(sent),
            "output_tokens": None if received is None else int(received),
            "cost_source": "price_table"}


def _run(path: Path, data: Any, run_id: str, start_us: int, model: str | None,
         read_only: Callable[[str, dict[str, Any]], bool]) -> SyntheticRun:
    where = Where(path, run_id)
    data = where.obj(data, "$")
    trajectory = where.items(data.get("trajectory"), "$.trajectory")
    history = where.items(data.get("history") or [], "$.history")
    info = where.obj(data.get("info") or {}, "$.info")
    config = _replay_config(data, where)
    model = model or _dig(config, "agent", "model", "name")
    if model is not None and not isinstance(model, str):
        where.fail("$.replay_config.agent.model.name", "expected a string")
    exit_status = where.text(info.get("exit_status"), "$.info.exit_status")
    stats = info.get("model_stats")
    usage = _usage(where.obj(stats, "$.info.model_stats") if stats is not None else None,
                   where)
    opening, step_msgs = _steps_messages(history, where)
    # Assistant messages pair with the trajectory's steps when there is one for each.
    paired = len(step_msgs) == len(trajectory)
    instance = _instance_id(path, config)
    run = SyntheticRun(run_id, start_us=start_us)
    issue = _dig(config, "problem_statement", "text")
    if not isinstance(issue, str) and len(opening) > 1:
        issue = opening[1][1].get("content")
    run.event("run_started", {
        "workflow": "swe-agent",
        "agent_name": "swe-agent",
        "agent_version": model,
        "task_id": instance,
        "task_input": {"instance_id": instance, "problem_statement": issue},
        "tags": ["swe-agent"],
        "metadata": {k: v for k, v in {
            "environment": data.get("environment"), "exit_status": exit_status,
            "repo": _dig(config, "env", "repo", "repo_name"),
            "base_commit": _dig(config, "env", "repo", "base_commit"),
            "api_calls": (stats or {}).get("api_calls") if isinstance(stats, dict) else None,
            "model_stats_note": "info.model_stats totals set on the run's last model call"
            if usage else None,
            **SYNTHETIC_TIMES}.items() if v is not None},
    })
    for j, said in opening:
        role = said.get("role")
        run.event("message", {"role": role, "content": said.get("content")},
                  source=f"history[{j}]")
    for i, entry in enumerate(trajectory):
        at = f"$.trajectory[{i}]"
        step = where.obj(entry, at)
        thought = where.text(step.get("thought"), f"{at}.thought")
        response = where.text(step.get("response"), f"{at}.response")
        observation = step.get("observation")
        if observation is not None and not isinstance(observation, str):
            where.fail(f"{at}.observation", "expected a string")
        seconds = where.number(step.get("execution_time"), f"{at}.execution_time")
        hat: str | None = f"$.history[{step_msgs[i][0]}]" if paired else None
        msg: dict[str, Any] | None = step_msgs[i][1] if paired else None
        tool, arguments, call_id = _action(step, msg, at, hat, where)
        last = i == len(trajectory) - 1
        run.event("llm_call", {
            "model": model or "unknown",
            "response": {"content": response, "thought": thought,
                         "action": step.get("action"),
                         "tool_calls": [{"name": tool, "arguments": arguments}]},
            **(usage if last else {"cost_source": "unknown"}),
        }, source=f"trajectory[{i}]")
        run.event("tool_call", {
            "tool": tool, "call_id": call_id, "arguments": arguments, "result": observation,
            "side_effect": not read_only(tool, arguments),
        }, source=f"trajectory[{i}]",
            duration_ms=None if seconds is None else round(seconds * 1000, 3))
        state = _state(step.get("state"), f"{at}.state", where)
        if state is not None:
            run.state(state, source=f"trajectory[{i}].state")
    run.event("run_ended", {**_exit(exit_status), "success": None})
    return run


def import_swe_agent(path: str | Path, store: RunStore, *, model: str | None = None,
                     read_only: Callable[[str, dict[str, Any]], bool] = swe_agent_read_only,
                     progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Import a SWE-agent trajectory, or every one under a folder; returns the run ids (new
    or present). ``model`` names the model where the file does not. Every file is checked
    before any run is written, and each run is written in one transaction: a malformed file
    is an :class:`~agentlab.errors.ImportFormatError` naming the file, the run and the JSON
    path, and nothing is imported. ``progress(done, total)`` is told of each run written."""
    built: list[SyntheticRun] = []
    for n, f in enumerate(swe_agent_files(path)):
        data, raw = load_json(f, "SWE-agent .traj")
        if not isinstance(data, dict) or "trajectory" not in data:
            raise ImportFormatError(
                f"{f}: not a SWE-agent trajectory (expected a JSON object with a "
                "'trajectory' list, and 'history' and 'info')", file=str(f))
        run_id = content_id("swe-agent", hashlib.sha256(raw).hexdigest()[:16])
        built.append(_run(f, data, run_id, run_start_us(n), model, read_only))
    store_new(store, built, progress)
    return [r.run_id for r in built]
