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
reward its outcome. The files carry no timestamps, tokens or
agent cost: events get synthetic, strictly increasing times, and tokens and cost are left
unknown rather than guessed.

Ids are derived from the file's content, the task and the trial, so importing the same file
twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentlab.errors import ImportFormatError
from agentlab.integrations._files import read_source
from agentlab.integrations._synthetic import SyntheticRun, content_id
from agentlab.store import RunStore

__all__ = ["import_tau_bench", "tau_bench_read_only"]

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


def _run(data: dict[str, Any], run_id: str, domain: str, model: str,
         read_only: Callable[[str], bool]) -> SyntheticRun:
    info = data.get("info") or {}
    task = info.get("task") or {}
    run = SyntheticRun(run_id)
    run.event("run_started", {
        "workflow": f"tau-bench-{domain}",
        "agent_name": "tau-bench-agent",
        "agent_version": model,
        "task_id": f"tau-bench:{domain}:{data['task_id']}",
        "task_input": {"instruction": task.get("instruction"), "user_id": task.get("user_id")},
        "tags": ["tau-bench", f"trial:{data.get('trial')}"],
        "metadata": {"trial": data.get("trial"), "ended_by": info.get("source"),
                     "user_cost_usd": info.get("user_cost")},
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
                     model: str = "unknown",
                     read_only: Callable[[str], bool] = tau_bench_read_only) -> list[str]:
    """Import every run of a tau-bench results file (plain or gzipped JSON); returns the run
    ids (new or present). Ids come from the decompressed content, so both forms agree.
    ``read_only(tool)`` tells the tools that change nothing (default: tau-bench's naming).
    ``domain`` (airline, retail...) is read from the tool names when not given."""
    raw = read_source(path)
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise ImportFormatError(
            f"{path}: JSON nested too deeply to import; tau-bench files are a few levels "
            "deep, so this is not one") from exc
    except ValueError as exc:
        raise ImportFormatError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and "traj" in r and "task_id" in r for r in data
    ):
        raise ImportFormatError(
            f"{path}: not a tau-bench results file (expected a JSON array of runs with "
            "'task_id', 'trial' and 'traj')"
        )
    if domain is None:
        domain = detect_domain(data)
        if domain is None and data:
            raise ImportFormatError(
                f"{path}: no tool name tells the tau-bench domain; pass it with "
                "domain= (--domain airline|retail)")
    file_id = hashlib.sha256(raw).hexdigest()[:16]
    ids: list[str] = []
    for run in data:
        run_id = content_id("tau-bench", file_id, run["task_id"], run.get("trial"))
        store.append(_run(run, run_id, domain or "unknown", model, read_only).pending())
        ids.append(run_id)
    return ids

