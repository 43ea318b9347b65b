"""Small agents for the recovery tests: a plan of calls to run, and mutations of it.

Each step of a plan is one call: a read-only ``fetch``, a side-effecting ``save`` (it counts
its executions in ``WORLD``) or a model call ``think``. The original agent runs
:data:`PLAN`; a mutant runs a changed plan, so the first call where the plans part is the
first divergence a strict replay must name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from agentlab.record import ModelReply, agent, current_run, llm, tool

WORKFLOW = "plans"
AGENT = "plan-bot"
GRANT = "plans-writer"

WORLD: Counter[str] = Counter()
"""Executions that reached the 'world', by tool: a replay must add nothing here."""

Step = tuple[str, str]

PLAN: list[Step] = [("fetch", "a"), ("think", "x"), ("fetch", "b"), ("save", "a"),
                    ("think", "y"), ("fetch", "c"), ("save", "b")]


@tool
def fetch(key: str) -> dict[str, Any]:
    WORLD["fetch"] += 1
    return {"key": key, "n": len(key) * 3}


def _dry_save(key: str, value: int) -> dict[str, Any]:
    return {"saved": key, "value": value, "dry_run": True}


@tool(side_effect=True, scope="plans:write", stub=_dry_save)
def save(key: str, value: int) -> dict[str, Any]:
    WORLD["save"] += 1
    return {"saved": key, "value": value}


@llm(model="fake-model", provider="tests")
def think(messages: list[dict[str, Any]]) -> ModelReply:
    WORLD["think"] += 1
    text = " ".join(str(m["content"]) for m in messages)
    return ModelReply({"thought": text.upper()}, input_tokens=len(text), output_tokens=3)


def run_plan(plan: list[Step]) -> dict[str, Any]:
    run = current_run()
    assert run is not None
    done: dict[str, Any] = {}
    for i, (kind, arg) in enumerate(plan):
        if kind == "fetch":
            done[f"fetch{i}"] = fetch(arg)
            run.state[f"fetched_{arg}"] = done[f"fetch{i}"]
        elif kind == "save":
            done[f"save{i}"] = save(arg, i)
        else:
            done[f"think{i}"] = think([{"role": "user", "content": arg}])
    run.outcome(success=True)
    return done


@agent(WORKFLOW, version="1.0", name=AGENT, grants=[GRANT])
def original(task_input: Any) -> dict[str, Any]:
    """The recorded agent: runs PLAN."""
    return run_plan(PLAN)


def agent_for(plan: list[Step]) -> Callable[[Any], dict[str, Any]]:
    """Other code: an agent that runs ``plan`` instead."""

    def mutant(task_input: Any) -> dict[str, Any]:
        return run_plan(plan)

    return mutant


def mutations() -> list[tuple[str, list[Step], int | None]]:
    """(name, mutated plan, index of the first call that differs; None: the mutant makes a
    call past the end of the record)."""
    out: list[tuple[str, list[Step], int | None]] = []
    n = len(PLAN)
    for i in range(n - 1):
        swapped = list(PLAN)
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        if swapped != PLAN:
            out.append((f"reorder {i}<->{i + 1}", swapped, i))
    for i, (kind, arg) in enumerate(PLAN):
        changed = list(PLAN)
        changed[i] = (kind, arg + "-changed")
        label = "another model request" if kind == "think" else "changed arguments"
        out.append((f"{label} at {i}", changed, i))
    for i in range(n + 1):
        extra = [*PLAN[:i], ("fetch", "extra"), *PLAN[i:]]
        out.append((f"extra call at {i}", extra, i if i < n else None))
    for i in range(n):
        missing = PLAN[:i] + PLAN[i + 1:]
        first = next((j for j in range(n) if j >= len(missing) or missing[j] != PLAN[j]), i)
        out.append((f"missing call {i}", missing, first))
    return out
