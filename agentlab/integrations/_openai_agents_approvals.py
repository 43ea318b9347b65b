"""A paused OpenAI Agents SDK run kept in the store, and resumed on agentlab decisions (used
by :mod:`agentlab.integrations.openai_agents`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agents import Agent, RunState
from agents.items import ToolApprovalItem

import agentlab.record as rec
from agentlab.approval import DEFAULT_TIMEOUT, ApprovalManager, pass_through_gate
from agentlab.errors import ApprovalError, ConfigError
from agentlab.integrations._openai_agents_items import _arguments, _jsonable
from agentlab.model import ApprovalRequest
from agentlab.store import RunStore

PAUSED_KEY = "openai_agents_paused"
"""The ``run.state`` key holding a paused run: the SDK's ``RunState.to_json()`` (scrubbed
of secrets like every state value) and the agentlab approval request of each pending call."""

def _call_of(item: ToolApprovalItem) -> tuple[str, str, dict[str, Any]]:
    raw = _jsonable(item.raw_item)
    call_id = raw.get("call_id") or raw.get("id")
    if not call_id:
        raise ConfigError(f"the SDK asks approval for a call without an id ({raw!r:.200}); "
                          "agentlab keys approvals on the model's tool-call id")
    arguments = _arguments(raw.get("arguments"))
    return (str(call_id), str(item.tool_name or raw.get("name")),
            arguments if isinstance(arguments, dict) else {"input": arguments})


def pause_for_approvals(result: Any, *, timeout: timedelta = DEFAULT_TIMEOUT
                        ) -> list[ApprovalRequest]:
    """Turn the SDK's interruptions (``result.interruptions``) into agentlab approval
    requests of the active run, keyed ``openai-agents:<tool-call id>``, and persist the
    paused ``RunState`` under ``run.state[PAUSED_KEY]``; the run is left open
    (``run.pause``), not ended. Calling it again for the same calls returns the same
    requests. Decide them with ``agentlab approve ID`` (or ``ApprovalManager``, the widget)
    and resume with :func:`resume_state`."""
    run = rec.current_run()
    if run is None:
        raise ConfigError("pause_for_approvals needs the agentlab run the SDK run was "
                          "recorded in: call it inside `with al.record_run(...)`")
    items = list(getattr(result, "interruptions", None) or ())
    if not items:
        return []
    manager = ApprovalManager(run.store)
    requests: dict[str, ApprovalRequest] = {}
    for item in items:
        call_id, tool_name, arguments = _call_of(item)
        requests[call_id] = manager.request(
            run_id=run.run_id, call_key=f"openai-agents:{call_id}", tool=tool_name,
            arguments=arguments, rule="needs_approval", timeout=timeout)
    run.state[PAUSED_KEY] = {"state": result.to_state().to_json(),
                             "approvals": {c: r.id for c, r in requests.items()}}
    run.pause("waiting for approval of " + ", ".join(
        f"{r.tool} ({r.id})" for r in requests.values()))
    return list(requests.values())


@dataclass(frozen=True, slots=True)
class ResumedState:
    """What :func:`resume_state` gives back: the SDK state to run, the run it paused in and
    the agentlab decision applied to each call (``approved`` or ``rejected``)."""

    state: RunState[Any, Any]
    paused_run_id: str
    decisions: Mapping[str, str]


async def resume_state(store: RunStore, agent: Agent[Any], request_id: str, *,
                       by: str = "openai-agents:resume") -> ResumedState:
    """Load the run paused with approval ``request_id`` (any of its requests), apply the
    agentlab decision of each pending call (``state.approve`` or ``state.reject``) and
    return the state for ``Runner.run(agent, state)``. Call it inside
    ``record_run(..., run_id=<the paused run>, resume=True, catch_up=False)`` (the request's
    ``run_id``), so the paused run goes on in this process; it writes
    ``run.state["openai_agents_resumed"]`` (the request and decision of each call) and drops
    the paused SDK state. Inside another run it links that run to the paused one the same
    way.

    Each decision passes agentlab's gate checks (authentic, by an allowed approver, bound to
    the same call and arguments) and is consumed: a paused run resumes once. A request still
    pending, or decided with edited arguments (the SDK cannot run edited calls), is refused
    with :class:`~agentlab.errors.ApprovalError`.
    """
    manager = ApprovalManager(store)
    first = manager.get(request_id)
    paused = store.state_at(first.run_id).get(PAUSED_KEY)
    if not isinstance(paused, Mapping):
        raise ConfigError(f"run {first.run_id} holds no paused OpenAI Agents SDK run; it is "
                          "persisted by pause_for_approvals inside the recorded run")
    state = await RunState.from_json(agent, dict(paused["state"]))
    ids: Mapping[str, str] = paused["approvals"]
    decisions: dict[str, str] = {}
    for item in state.get_interruptions():
        call_id, tool_name, arguments = _call_of(item)
        if call_id not in ids:
            raise ConfigError(f"the paused state of run {first.run_id} waits on call "
                              f"{call_id} ({tool_name}), which has no agentlab approval "
                              "request: pause_for_approvals was not given this result")
        req = manager.get(ids[call_id])
        if req.status == "pending":
            raise ApprovalError(f"approval {req.id} ({tool_name}) is still pending: decide "
                                f"it first (`agentlab approve {req.id}` or reject)")
        gate = pass_through_gate(
            manager, None, run_id=req.run_id, call_key=req.call_key, tool=tool_name,
            arguments=arguments, current_arguments=functools.partial(dict, arguments), grant=req.grant,
            scope=req.scope, rule=req.rule or "needs_approval", phase=req.phase,
            timeout=DEFAULT_TIMEOUT, consumer=by)
        if gate.edited is not None:
            raise ApprovalError(f"approval {req.id} edited the arguments of {tool_name}; the "
                                "SDK runs the model's arguments only: approve or reject it")
        if gate.denial is None:
            state.approve(item)
            decisions[call_id] = "approved"
        elif gate.denial.code in ("rejected", "approval_expired"):
            state.reject(item)
            decisions[call_id] = "rejected"
        else:
            raise ApprovalError(f"approval {req.id} cannot resume {tool_name}: "
                                f"{gate.denial.reason}")
    run = rec.current_run()
    if run is not None:  # the resumed run says what it continues and on whose decision
        run.state["openai_agents_resumed"] = {
            "paused_run": first.run_id,
            "approvals": {c: {"request": ids[c], "decision": d} for c, d in decisions.items()}}
        if run.run_id == first.run_id and PAUSED_KEY in run.state:
            del run.state[PAUSED_KEY]  # the pause is taken up: the SDK state moves on
    return ResumedState(state, first.run_id, decisions)
