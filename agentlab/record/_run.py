"""``record_run``: the context manager that records one agent run into a store.

The run's lifecycle, state, LLM calls and outcome live here; events are built in
:mod:`agentlab.record._core` and every call goes through :mod:`agentlab.record._pipeline`
as the run's mode plans it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from agentlab.approval import ApprovalManager
from agentlab.errors import RecordingError, RunNotFoundError
from agentlab.model import (
    PAUSED_HOLDER,
    CodeRef,
    RunKind,
    expected_actions,
    new_id,
    now_ns,
)
from agentlab.model._ids import Clock, IdFactory
from agentlab.record._admission import learn_secrets
from agentlab.record._calls import RECORDING, CallMode
from agentlab.record._context import frame_var, run_var
from agentlab.record._core import NO_STATS, Governance, Phase, RunCore, error_info, recorded_as
from agentlab.record._lease import activate, deactivate, holder_alive, lease_until, new_holder
from agentlab.record._model_calls import (
    call_model,
    call_model_async,
    check_messages,
    model_event,
    model_request,
)
from agentlab.record._pipeline import call_read_only, call_tool, call_tool_async, warn_unrecorded
from agentlab.record._prices import Price
from agentlab.record._resume import resume_mode
from agentlab.record._spec import ModelSpec, ToolSpec
from agentlab.record._state import RunState
from agentlab.record._writer import BackgroundWriter, writer_for
from agentlab.store import RunStore

__all__ = ["RunRecorder", "error_info"]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,35}")


def _governance_ref(gov: Governance | None) -> dict[str, Any] | None:
    """What the run records of its governance (grant names, the policy's rule names)."""
    if gov is None or (not gov.grants and gov.policy is None):
        return None
    ref: dict[str, Any] = {"grants": list(gov.grants)}
    if gov.policy is not None:
        ref["policy"] = [rule.name for rule in gov.policy.rules]
    return ref


def _error_body(exc: BaseException, info: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"error": info}
    seen = recorded_as(exc)
    if seen is not None:
        body["recorded_as"] = seen
    return body


class RunRecorder(RunCore):
    """An active run: its state, and methods to record LLM calls, steps and the outcome.

    Made by :func:`record_run`; use it as a context manager (``with`` or ``async with``).
    """

    state: RunState

    def __init__(
        self,
        store: RunStore,
        *,
        workflow: str,
        agent: str,
        agent_version: str | None,
        task_input: Any,
        task_id: str | None,
        owner: str | None,
        team: str | None,
        phase: Phase | None,
        run_id: str | None,
        parent_run_id: str | None,
        fork_seq: int | None,
        tags: Iterable[str],
        metadata: Mapping[str, Any] | None,
        state: Mapping[str, Any] | None,
        prices: Mapping[str, Price] | None,
        clock: Clock | None,
        id_factory: IdFactory | None,
        governance: Governance | None = None,
        resume: bool = False,
        catch_up: bool = True,
        code: CodeRef | None = None,
        run_kind: RunKind | None = None,
        replay_mode: Literal["strict", "after_fix"] | None = None,
        mode: CallMode | None = None,
        expected: Mapping[str, Any] | None = None,
    ) -> None:
        if not workflow or not agent:
            raise RecordingError("record_run needs a workflow name and an agent name")
        if phase not in (None, "read", "draft", "act"):
            raise RecordingError(f"phase must be 'read', 'draft' or 'act', not {phase!r}")
        self.store = store
        self.writer: BackgroundWriter = writer_for(store)
        self._enqueue = self.writer.enqueue
        self._clock: Clock = clock or now_ns
        self._new_id: IdFactory = id_factory or new_id
        # With the default factory the store may assign a read-only call's id at write
        # time; an injected factory (byte-stable tests) must make every id itself.
        self._lazy_ids = id_factory is None
        self.run_id = run_id or self._new_id()
        if not _RUN_ID.fullmatch(self.run_id):
            raise RecordingError(
                f"run_id {self.run_id!r} is not usable: 1-36 characters of letters, digits and "
                "._:- (starting with a letter or digit); or leave it out for a generated id"
            )
        self.workflow = workflow
        self.agent = agent
        self.phase = phase
        self._prices = prices
        self._max_payload = int(getattr(store, "max_payload_bytes", 16 * 1024 * 1024))
        self._start_fields = {
            "workflow": workflow, "agent_name": agent, "agent_version": agent_version,
            "task_id": task_id, "task_input": task_input, "owner": owner, "team": team,
            "phase": phase, "parent_run_id": parent_run_id, "fork_seq": fork_seq,
            "run_kind": run_kind, "replay_mode": replay_mode,
            "code": code.model_dump(exclude_none=True) if code is not None else None,
            "governance": _governance_ref(governance),
            "tags": list(tags) or None, "metadata": dict(metadata) if metadata else None,
        }
        self._metadata = MappingProxyType(dict(metadata or {}))
        self._initial_state = dict(state) if state else None
        if expected is not None and not isinstance(expected, Mapping):
            raise RecordingError("expected= takes a mapping with 'actions', 'outputs' and/or "
                                 "'note', e.g. {'outputs': ['42']}")
        unknown = set(expected or ()) - {"actions", "outputs", "note"}
        if unknown:
            raise RecordingError(f"expected= has unknown keys {sorted(unknown)}; it takes "
                                 "'actions', 'outputs' and 'note'")
        self._expected = (_expectation_body(expected.get("actions"), expected.get("outputs"),
                                            expected.get("note")) if expected else None)
        self.governance = governance or Governance()
        self._governed = self.governance.active
        self.approvals = ApprovalManager(store, clock=self._clock, id_factory=self._new_id)
        self.mode: CallMode = mode or RECORDING
        self._fast = self.mode.live and not self._governed
        self._taken_up_us: int | None = None
        self._resume = resume
        if resume and run_id is None:
            raise RecordingError("resume=True needs the run_id of the run to continue")
        if resume and mode is not None:
            raise RecordingError("resume=True brings its own mode (catch-up); pass no mode")
        self._catch_up = catch_up
        self._success: bool | None = None
        self._score: float | None = None
        self._occurrences: dict[str, int] = {}
        self._tokens: list[Any] = []
        self._started = False
        self._ended = False
        self.paused: str | None = None
        self._holder = ""
        self.state = RunState(self)

    def __repr__(self) -> str:
        return f"<RunRecorder {self.run_id} {self.workflow}/{self.agent}>"

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The run's metadata, as given to ``record_run`` (read-only)."""
        return self._metadata

    @property
    def task_input(self) -> Any:
        """The task input the run was given."""
        return self._start_fields["task_input"]

    # -- calls (the decorators hand them over through run_var) -------------------------------

    def _call_tool(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        if self._ended:  # a thread or task that outlived its run
            warn_unrecorded(self.run_id, spec.name)
            return fn(*args, **kwargs)
        if self._fast and not spec.governed:
            return call_read_only(self, spec, fn, args, kwargs)
        return call_tool(self, spec, fn, args, kwargs)

    def _call_undo(self, spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                   of_seq: int) -> Any:
        """A rollback's compensation of the parent run's action at ``of_seq``: a governed,
        side-effecting call like any other, marked with what it undoes."""
        return call_tool(self, spec, fn, args, {}, compensates=of_seq)

    async def _call_tool_async(self, spec: ToolSpec, fn: Callable[..., Any],
                               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._ended:
            warn_unrecorded(self.run_id, spec.name)
            return await fn(*args, **kwargs)
        return await call_tool_async(self, spec, fn, args, kwargs)

    def _call_model(self, spec: ModelSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        if self._ended:
            warn_unrecorded(self.run_id, spec.name)
            return fn(*args, **kwargs)
        return call_model(self, spec, fn, args, kwargs)

    async def _call_model_async(self, spec: ModelSpec, fn: Callable[..., Any],
                                args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._ended:
            warn_unrecorded(self.run_id, spec.name)
            return await fn(*args, **kwargs)
        return await call_model_async(self, spec, fn, args, kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            raise RecordingError(f"run {self.run_id} is already active; a recorder is entered once")
        self._started = True
        learn_secrets(self)
        self._holder = new_holder()
        resumed = self._resume and self._take_up()
        activate(self._holder)
        self.writer.hold(self.run_id, self._holder)
        if not resumed:
            body = {k: v for k, v in self._start_fields.items() if v is not None}
            if self._resume:
                # A run started under a chosen id that others may take up (a resumable run,
                # a rollback): its start is written now, so that of two processes starting
                # it at once one is refused here, before it records anything.
                try:
                    self._emit_durable("run_started", body, parent_id=None, stats=NO_STATS)
                except BaseException:
                    self._let_go()
                    self._started = False
                    raise
            else:
                self._emit("run_started", body, parent_id=None, stats=NO_STATS)
        self._tokens = [run_var.set(self), frame_var.set(None)]
        if self._expected is not None:
            self._emit("expectation", dict(self._expected), parent_id=None, stats=NO_STATS)
        if self._initial_state:
            try:
                self.state.update(self._initial_state)
            except BaseException as exc:
                self._finish(exc)
                raise

    def _take_up(self) -> bool:
        """Continue a stored run that has not ended, or ended in an error (``resume=True``);
        False if it does not exist yet, so the same code starts a run or resumes it."""
        try:
            summary = self.store.run(self.run_id, exact=True)
        except RunNotFoundError:
            return False
        if summary.status in ("succeeded", "failed"):
            self._started = False
            raise RecordingError(
                f"run {self.run_id} has already ended ({summary.status}); a finished run is "
                "not resumed: start a new run (or fork this one)"
            )
        if summary.workflow != self.workflow or summary.agent_name != self.agent:
            self._started = False
            raise RecordingError(
                f"run {self.run_id} is {summary.workflow}/{summary.agent_name}, not "
                f"{self.workflow}/{self.agent}; resume it with the same workflow and agent"
            )
        now_us = now_ns() // 1000
        held_us = (int(summary.held_until.timestamp() * 1_000_000)
                   if summary.held_until is not None else None)
        if holder_alive(summary.holder, held_us, now_us) or not self.store.take_run(
                self.run_id, holder=self._holder, until_us=lease_until(now_us),
                was=summary.holder):
            self._started = False
            until = f" (lease until {summary.held_until:%Y-%m-%d %H:%M:%S} UTC)" \
                if summary.held_until is not None else ""
            raise RecordingError(
                f"run {self.run_id} is being carried on by {summary.holder or 'another process'}"
                f"{until}; two processes never carry one run on at once: resume it once that "
                "process has stopped (a killed process frees it at once on this host, "
                "elsewhere when its lease runs out)")
        try:
            catch_up, reason = resume_mode(self.store, self.run_id, catch_up=self._catch_up)
            if catch_up is None:  # continued live: the code goes on from the recorded state
                self.state._absorb(self.store.state_at(self.run_id), ())
        except BaseException:
            self._started = False
            raise
        if catch_up is not None:
            self.mode = catch_up
            self._fast = False
        self._taken_up_us = self._clock() // 1000
        if summary.status == "errored":
            reason += f" (the run had ended in an error: {summary.status})"
        self._emit("run_resumed", {"from_seq": summary.last_seq, "reason": reason},
                   parent_id=None, stats=NO_STATS)
        return True

    def pause(self, reason: str) -> None:
        """Leave the run open when this recorder ends without an error: no ``run_ended``,
        the lease given up, so ``record_run(run_id=..., resume=True)`` carries it on later, in
        any process (once an approval is decided, say); ``run.paused`` holds the reason."""
        if not reason:
            raise RecordingError("pause() needs a reason (what the run waits for)")
        self.paused = reason

    def _finish(self, exc: BaseException | None, *, flush: bool = True) -> None:
        """Record how the run ended; ``run_ended`` is written whatever else fails."""
        run_tok, frame_tok = self._tokens
        if self.paused is not None and exc is None:
            try:  # written so far, then free for a resume anywhere (an expired lease)
                self.flush()
            finally:
                self._ended = True
                self._let_go()
                self.store.take_run(self.run_id, holder=PAUSED_HOLDER, until_us=0, was=self._holder)
                frame_var.reset(frame_tok)
                run_var.reset(run_tok)
            return
        late: BaseException | None = None
        try:
            if not self.mode.live:
                try:
                    self.mode.finish(exc)
                except BaseException as mode_exc:  # e.g. the code did less than the record
                    if exc is None:
                        exc = late = mode_exc
            try:
                self.state.checkpoint(force=False)
            except Exception as cp_exc:  # e.g. a value mutated into something unrecordable
                self._emit("error", {"error": error_info(cp_exc)}, parent_id=None)
            body: dict[str, Any] = {}
            if exc is not None:
                info = error_info(exc)
                self._emit("error", _error_body(exc, info), parent_id=None)
                body["status"] = "errored"
                body["error"] = info
            else:
                body["status"] = "failed" if self._success is False else "succeeded"
            if self._success is not None:
                body["success"] = self._success
            if self._score is not None:
                body["score"] = self._score
            self._emit("run_ended", body, parent_id=None, stats=NO_STATS)
            self._ended = True
            if flush:
                self.flush()
        finally:
            self._ended = True
            self._let_go()
            frame_var.reset(frame_tok)
            run_var.reset(run_tok)
        if late is not None:  # the code returned, but the mode found the run wanting
            raise late

    def _let_go(self) -> None:
        """This recorder no longer carries the run on (its end, written, released the
        lease in the store)."""
        self.writer.let_go(self.run_id)
        deactivate(self._holder)

    def __enter__(self) -> RunRecorder:
        self._start()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._finish(exc)

    async def __aenter__(self) -> RunRecorder:
        self._start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # The durable flush runs in a worker thread, so the event loop keeps serving.
        self._finish(exc, flush=False)
        await asyncio.to_thread(self.flush)

    # -- what agent code calls ----------------------------------------------------------------

    def outcome(self, *, success: bool | None = None, score: float | None = None) -> None:
        """Set how the run did; recorded when it ends (``success=False`` marks it failed).
        Only the arguments given change: ``outcome(score=0.9)`` keeps an earlier success."""
        if success is not None:
            self._success = success
        if score is not None:
            self._score = score

    @property
    def success(self) -> bool | None:
        """The success the agent has set so far with :meth:`outcome` (None if not yet)."""
        return self._success

    def llm_call(
        self,
        model: str,
        *,
        messages: Sequence[Any] = (),
        response: Any = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost_usd: float | None = None,
        provider: str | None = None,
        duration_ms: float | None = None,
        error: BaseException | None = None,
    ) -> str:
        """Record a model call the agent already made. ``cost_usd`` is the provider-reported
        cost and wins over the price table. Returns the event id.

        A replay cannot serve such a call (the agent had the response first), only compare
        its request; decorate the function that asks the model with :func:`~agentlab.llm`
        to make its responses replayable."""
        messages = check_messages(messages)
        if not self.mode.live:
            self.mode.model_noted(model_request(_NOTED, _noted, (list(messages),),
                                                {"model": model}))
        body, stats = model_event(
            model, messages, response=response, input_tokens=input_tokens,
            output_tokens=output_tokens, provider_cost=cost_usd, provider=provider,
            duration_ms=duration_ms, error=error, prices=self._prices)
        body["reported"] = True
        # An event's time is when the step started: a call reported after it finished
        # (with its duration) started that long before now.
        start = self._clock() - int(duration_ms * 1e6) if duration_ms is not None else None
        return self._emit("llm_call", body, stats=stats, ts_ns=start)

    def message(self, content: Any, *, role: Literal["user", "assistant", "system"] = "assistant",
                agent: str | None = None) -> str:
        """Record a message of the conversation: what the user said (``role="user"``), what
        the agent told the user (the default), or, in a run of several agents, one
        participant's message (``agent`` names it). The agent's last message is its final
        answer, which ``explain`` checks against the expected outputs. Returns the event id."""
        if role not in ("user", "assistant", "system"):
            raise RecordingError(f"role must be 'user', 'assistant' or 'system', not {role!r}")
        body: dict[str, Any] = {"role": role, "content": content}
        if agent is not None:
            body["agent"] = str(agent)
        return self._emit("message", body)

    def expect(self, *, actions: Iterable[Any] | None = None,
               outputs: Iterable[Any] | None = None, note: str | None = None) -> str:
        """State what a correct run does: ``actions``, the side-effecting calls it makes in
        order (``{"name": tool, "arguments": {...}}``; arguments left out are not checked),
        and ``outputs``, values its final answer states. ``explain`` holds the run against
        them. Returns the event id."""
        body = _expectation_body(actions, outputs, note)
        return self._emit("expectation", body, parent_id=None, stats=NO_STATS)

    def enter_phase(self, phase: Phase) -> None:
        """Move the run to another phase (read → draft → act); recorded, and it changes
        what the policy lets tools do from here on."""
        if phase not in ("read", "draft", "act"):
            raise RecordingError(f"phase must be 'read', 'draft' or 'act', not {phase!r}")
        previous = self.phase
        body: dict[str, Any] = {"phase": phase}
        if previous is not None:
            body["previous"] = previous
        self._emit("phase", body, parent_id=None, stats=NO_STATS)
        self.phase = phase

    def error(self, exc: BaseException, *, handled: bool = True) -> str:
        """Record an error the agent handled (or, with ``handled=False``, one it did not)."""
        body = _error_body(exc, error_info(exc))
        body["handled"] = handled
        return self._emit("error", body)


def _expectation_body(actions: Iterable[Any] | None, outputs: Iterable[Any] | None,
                      note: str | None) -> dict[str, Any]:
    if actions is None and outputs is None:
        raise RecordingError("an expectation needs actions, outputs or both")
    body: dict[str, Any] = {}
    if actions is not None:
        try:
            body["actions"] = [a.model_dump() for a in expected_actions(actions)]
        except ValueError as exc:
            raise RecordingError(f"expected actions: {exc}") from None
    if outputs is not None:
        body["outputs"] = list(outputs)
    if note is not None:
        body["note"] = str(note)
    return body


def _noted(messages: Sequence[Any], model: str) -> None:
    """Stands for a model call reported after the fact (``llm_call``): never called."""


_NOTED = ModelSpec(model=None, params=("messages", "model"), name="llm_call")
