"""A minimal importer for tau-bench run files (``EnvRunResult`` arrays, see sierra-research
tau-bench's ``historical_trajectories``): each (task, trial) becomes one agentlab run.

Calls and results are paired by ``tool_call_id`` in order (ids recur, even within a run).
Mapping: the user simulator's turns become ``step`` events named ``user``; each assistant
message an ``llm_call`` (its response: the text and the tool calls it asked for); each tool
call paired with its result (by ``tool_call_id``) a ``tool_call`` whose result is the parsed
JSON, or an error when the content starts with ``Error:``. The gold action sequence goes into
the run's metadata (``expected_actions``) for branch-point analysis, and the reward into the
outcome. The files carry no timestamps, tokens or agent cost: events get synthetic,
strictly increasing times, and tokens and cost are left unknown rather than guessed.

Ids are derived from the file's content, the task and the trial, so importing the same file
twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentlab.errors import ImportFormatError
from agentlab.integrations._files import read_source
from agentlab.model import canonical_body, event_stats
from agentlab.store import PendingEvent, RunStore

__all__ = ["import_tau_bench"]

_EPOCH_US = 1_700_000_000_000_000


def _id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


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


def _events(run: dict[str, Any], run_id: str, domain: str, model: str) -> Iterator[PendingEvent]:
    info = run.get("info") or {}
    task = info.get("task") or {}
    clock = iter(range(_EPOCH_US, _EPOCH_US + 10_000_000, 1000))
    n = iter(range(1_000_000))

    def ev(kind: str, body: dict[str, Any]) -> PendingEvent:
        body["kind"] = kind
        data = canonical_body(body)
        return PendingEvent(run_id, _id(run_id, next(n)), None, next(clock), kind, data, None,
                            event_stats(kind, body))

    yield ev("run_started", {
        "workflow": f"tau-bench-{domain}",
        "agent_name": "tau-bench-agent",
        "agent_version": model,
        "task_id": f"tau-bench:{domain}:{run['task_id']}",
        "task_input": {"instruction": task.get("instruction"), "user_id": task.get("user_id")},
        "tags": ["tau-bench", f"trial:{run.get('trial')}"],
        "metadata": {
            "trial": run.get("trial"),
            "expected_actions": task.get("actions") or [],
            "expected_outputs": task.get("outputs") or [],
            "ended_by": info.get("source"),
            "user_cost_usd": info.get("user_cost"),
        },
    })
    # Pair calls and results by id, in order: the same id can recur within one run.
    results: dict[Any, deque[dict[str, Any]]] = {}
    for m in run["traj"]:
        if m.get("role") == "tool":
            results.setdefault(m.get("tool_call_id"), deque()).append(m)
    for msg in run["traj"]:
        role = msg.get("role")
        if role == "user":
            yield ev("step", {"name": "user", "output": msg.get("content")})
        elif role == "assistant":
            calls = msg.get("tool_calls") or []
            yield ev("llm_call", {
                "model": model,
                "response": {"content": msg.get("content"),
                             "tool_calls": [c.get("function") for c in calls]},
                "cost_source": "unknown",
            })
            for call in calls:
                fn = call.get("function") or {}
                try:
                    arguments = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    arguments = {"_raw": fn.get("arguments")}
                pending = results.get(call.get("id"))
                reply = pending.popleft() if pending else None
                body: dict[str, Any] = {"tool": fn.get("name", "?"), "call_id": call.get("id"),
                                        "arguments": arguments}
                if reply is None:
                    body.update(status="error", error={
                        "type": "MissingResult", "message": "no tool message answers this call"})
                else:
                    result, failed = _parse(reply.get("content"))
                    if failed:
                        body.update(status="error",
                                    error={"type": "ToolError", "message": str(result)})
                    else:
                        body["result"] = result
                yield ev("tool_call", body)
    reward = run.get("reward")
    success = reward is not None and float(reward) >= 1.0
    yield ev("run_ended", {"status": "succeeded" if success else "failed", "success": success,
                           "score": None if reward is None else float(reward)})


def import_tau_bench(path: str | Path, store: RunStore, *, domain: str = "airline",
                     model: str = "unknown") -> list[str]:
    """Import every run of a tau-bench results file (plain or gzipped JSON); returns the run
    ids (new or present). Ids come from the decompressed content, so both forms agree."""
    raw = read_source(path)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ImportFormatError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and "traj" in r and "task_id" in r for r in data
    ):
        raise ImportFormatError(
            f"{path}: not a tau-bench results file (expected a JSON array of runs with "
            "'task_id', 'trial' and 'traj')"
        )
    file_id = hashlib.sha256(raw).hexdigest()[:16]
    ids: list[str] = []
    for run in data:
        run_id = _id("tau-bench", file_id, run["task_id"], run.get("trial"))
        store.append(list(_events(run, run_id, domain, model)))
        ids.append(run_id)
    return ids

