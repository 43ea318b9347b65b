"""The entry points agent code calls: :func:`record_run`, which starts recording a run, and
the functions that reach the run being recorded in this context (:func:`current_run`,
:func:`expect`, :func:`message`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, cast

from agentlab.approval import DEFAULT_TIMEOUT, Approver, Policy
from agentlab.errors import RecordingError
from agentlab.identity import SecretSource
from agentlab.model import CodeRef, RunKind
from agentlab.model._ids import Clock, IdFactory
from agentlab.record._calls import CallMode
from agentlab.record._context import run_var
from agentlab.record._core import Governance, Phase
from agentlab.record._prices import Price
from agentlab.record._run import RunRecorder
from agentlab.record._stores import store_for
from agentlab.store import RunStore

__all__ = ["current_run", "expect", "message", "record_run"]


def current_run() -> RunRecorder | None:
    """The run being recorded in this context, if any."""
    return cast("RunRecorder | None", run_var.get())


def _active(what: str) -> RunRecorder:
    run = current_run()
    if run is None:
        raise RecordingError(f"{what} is called inside a recorded run (record_run or an "
                             "@agent); to hold a stored run against expectations, pass "
                             "expected= to explain()")
    return run


def expect(*, actions: Iterable[Any] | None = None, outputs: Iterable[Any] | None = None,
           note: str | None = None) -> str:
    """State what a correct run does, in the run being recorded (see
    :meth:`RunRecorder.expect`)."""
    return _active("expect()").expect(actions=actions, outputs=outputs, note=note)


def message(content: Any, *, role: Literal["user", "assistant", "system"] = "assistant",
            agent: str | None = None) -> str:
    """Record a message in the run being recorded (see :meth:`RunRecorder.message`)."""
    return _active("message()").message(content, role=role, agent=agent)

def record_run(
    workflow: str,
    *,
    agent: str,
    agent_version: str | None = None,
    task_input: Any = None,
    task_id: str | None = None,
    owner: str | None = None,
    team: str | None = None,
    phase: Phase | None = None,
    store: RunStore | str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    fork_seq: int | None = None,
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    prices: Mapping[str, Price] | None = None,
    clock: Clock | None = None,
    id_factory: IdFactory | None = None,
    grants: Iterable[str] = (),
    secrets: Mapping[str, SecretSource] | None = None,
    policy: Policy | None = None,
    approver: Approver | None = None,
    approval_timeout: timedelta = DEFAULT_TIMEOUT,
    resume: bool = False,
    catch_up: bool = True,
    code: CodeRef | None = None,
    run_kind: RunKind | None = None,
    replay_mode: Literal["strict", "after_fix"] | None = None,
    mode: CallMode | None = None,
    expected: Mapping[str, Any] | None = None,
) -> RunRecorder:
    """Record one agent run; use the result with ``with`` or ``async with``.

    >>> with record_run("support-triage", agent="triage-bot", task_input=ticket) as run:  # doctest: +SKIP
    ...     run.state["ticket"] = ticket
    ...     account = lookup_account(ticket["account_id"])      # a @tool
    ...     run.outcome(success=True)

    ``store`` is a store, a URL or a path (default: ``AGENTLAB_STORE``, else
    ``./agentlab.db``). ``clock`` and ``id_factory`` make recordings byte-stable in tests.

    Governance: ``grants`` names the stored grants the run may act through (``secrets``
    supplies a callable for a grant whose secret is not an env/file reference); ``policy``
    decides per call; ``approver`` is told of each approval request (without one, calls
    that need approval are refused); a request expires after ``approval_timeout``.
    ``resume=True`` with a ``run_id`` continues that run if it exists and has not ended
    (after a crash, a restart, a pending approval) or ended in an error: the code catches
    up with the record (nothing recorded is executed or written again) and goes on live
    (see :mod:`agentlab.record._resume`). With ``catch_up=False`` the resumed run goes on
    live at once, for code that continues where it stopped instead of running again from
    the start (a LangGraph graph resumed from its checkpoint after a paused approval).

    ``expected`` states what a correct run does, ``{"actions": [...], "outputs": [...]}``
    (see :meth:`RunRecorder.expect`); ``explain`` holds the run against it.

    ``code`` names the code that runs (an :func:`~agentlab.agent` fills it in); ``run_kind``,
    ``replay_mode`` and ``mode`` are set by the recovery functions (:mod:`agentlab.recovery`).
    """
    if not catch_up and not resume:
        raise RecordingError("catch_up=False says how to resume a run: pass resume=True and "
                             "the run_id of the run to continue")
    return RunRecorder(
        store_for(store), workflow=workflow, agent=agent, agent_version=agent_version,
        task_input=task_input, task_id=task_id, owner=owner, team=team, phase=phase,
        run_id=run_id, parent_run_id=parent_run_id, fork_seq=fork_seq, tags=tags,
        metadata=metadata, state=state, prices=prices, clock=clock, id_factory=id_factory,
        governance=Governance(
            grants=tuple(grants), secrets=dict(secrets or {}), policy=policy,
            approver=approver, approval_timeout=approval_timeout,
        ),
        resume=resume, catch_up=catch_up, code=code, run_kind=run_kind,
        replay_mode=replay_mode, mode=mode,
        expected=expected,
    )
