"""The agent's entry point, declared once: the function that is the agent, the workflow it
serves, its version, and how its runs are governed.

A run started through :meth:`Agent.run` records which code it executed (the importable
``module:qualname``, the version, and the git commit of the working tree when there is
one), so ``agentlab replay RUN`` and ``agentlab resume RUN`` find the code again with no
flags, and ``--agent module:function`` can name other code (the fixed version).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from agentlab.errors import RecordingError, RecoveryError
from agentlab.model import CodeRef
from agentlab.record._record_run import record_run

__all__ = ["Agent", "AgentResult", "agent", "call_agent", "code_ref", "load_agent"]

P = ParamSpec("P")
R = TypeVar("R")

_RUN_OPTIONS = frozenset(inspect.signature(record_run).parameters) - {
    "workflow", "agent", "agent_version", "task_input", "code"}


@dataclass(frozen=True, slots=True)
class AgentResult:
    """How one run of an agent went: its id, what the function returned, and its status."""

    run_id: str
    output: Any
    status: str
    success: bool | None


def call_agent(fn: Callable[..., Any], task_input: Any,
               kwargs: Mapping[str, Any] | None = None) -> Any:
    """Call an agent's function (sync or ``async``) with its task input, inside the run that
    is active. An ``async`` agent is run to completion on its own event loop; from code
    that already runs an event loop, await :meth:`Agent.arun` (or run the recovery function
    in a thread: ``await asyncio.to_thread(agentlab.replay, ...)``)."""
    value = fn(task_input, **dict(kwargs or {}))
    if not inspect.iscoroutine(value):
        return value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(value)
    value.close()
    raise RecordingError(
        f"{getattr(fn, '__qualname__', fn)} is async and an event loop is already running "
        "here: await agent.arun(...), or run this in a thread (asyncio.to_thread)")


def _git(folder: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                              timeout=3, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=64)
def _git_state(folder: str) -> tuple[str | None, bool | None]:
    """(commit, has local changes) of the git working tree holding ``folder``."""
    head = _git(folder, "rev-parse", "HEAD")
    if head is None:
        return None, None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return head.strip() or None, (bool(status.strip()) if status is not None else None)


def _entry_of(fn: Callable[..., Any]) -> str | None:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        return None
    if module == "__main__":  # `python -m pkg.mod` knows its importable name
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = getattr(spec, "name", None) or module
    return f"{module}:{qualname}"


def code_ref(fn: Callable[..., Any], version: str | None) -> CodeRef:
    """Where ``fn`` lives and at which version: its entry point, and the git commit (with
    whether the tree had local changes) of the working tree its source file is in."""
    commit = dirty = None
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    if source is not None and os.environ.get("AGENTLAB_NO_GIT") != "1":
        commit, dirty = _git_state(os.path.dirname(os.path.abspath(source)))
    return CodeRef(entry=_entry_of(fn), version=version, git_commit=commit, git_dirty=dirty)


class Agent(Generic[P, R]):
    """An agent's entry point (made by :func:`agent`). Calling it calls the function;
    :meth:`run` records a run of it."""

    def __init__(self, fn: Callable[P, R], workflow: str, *, name: str | None,
                 version: str | None, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - _RUN_OPTIONS)
        if unknown:
            raise TypeError(f"agent(): unknown record_run options {unknown}; use any of "
                            f"{sorted(_RUN_OPTIONS)}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.workflow = workflow
        self.name = name or fn.__name__.replace("_", "-")
        self.version = version
        self.options = dict(options)
        self._code: CodeRef | None = None

    def __repr__(self) -> str:
        return f"<Agent {self.workflow}/{self.name} {self.version or ''} ({self.entry})>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    @property
    def entry(self) -> str | None:
        """The importable ``module:qualname`` a replay loads."""
        return _entry_of(self.fn)

    @property
    def code(self) -> CodeRef:
        if self._code is None:
            self._code = code_ref(self.fn, self.version)
        return self._code

    def run(self, task_input: Any = None, *, kwargs: Mapping[str, Any] | None = None,
            **options: Any) -> AgentResult:
        """Record one run: ``record_run`` with the agent's options (``options`` override
        them), calling the function with ``task_input`` and ``kwargs``.

        >>> result = triage.run({"ticket_id": "T-1"}, store=store)   # doctest: +SKIP
        """
        settings = self._settings(options)
        with record_run(self.workflow, agent=self.name, agent_version=self.version,
                        task_input=task_input, code=self.code, **settings) as run:
            output = call_agent(self.fn, task_input, kwargs)
        status = "running" if run.paused else "failed" if run.success is False else "succeeded"
        return AgentResult(run.run_id, output, status, run.success)

    async def arun(self, task_input: Any = None, *, kwargs: Mapping[str, Any] | None = None,
                   **options: Any) -> AgentResult:
        """:meth:`run` for an ``async`` agent, from code that runs an event loop."""
        settings = self._settings(options)
        async with record_run(self.workflow, agent=self.name, agent_version=self.version,
                              task_input=task_input, code=self.code, **settings) as run:
            output = self.fn(task_input, **dict(kwargs or {}))
            if inspect.isawaitable(output):
                output = await output
        status = "running" if run.paused else "failed" if run.success is False else "succeeded"
        return AgentResult(run.run_id, output, status, run.success)

    def _settings(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - _RUN_OPTIONS)
        if unknown:
            raise TypeError(f"{self.name}.run(): unknown options {unknown}; use any of "
                            f"{sorted(_RUN_OPTIONS)}")
        return {**self.options, **options}


def agent(workflow: str, *, version: str | None = None, name: str | None = None,
          **options: Any) -> Callable[[Callable[P, R]], Agent[P, R]]:
    """Declare a function ``(task_input, **kwargs) -> output`` as the agent of ``workflow``.

    ``name`` is the agent (the principal its grants name; default: the function's name with
    dashes); ``version`` its code version; ``options`` are ``record_run`` keywords that
    govern every run (``grants``, ``policy``, ``phase``, ``owner``...). Start runs with
    ``.run(task_input, store=...)``.

    >>> @agent("support-triage", version="1.1.0", name="triage-bot",
    ...        grants=["crm-reader"], phase="read")
    ... def triage(task_input: dict) -> str: ...
    """

    def wrap(fn: Callable[P, R]) -> Agent[P, R]:
        if isinstance(fn, Agent):
            raise TypeError("agent() is applied once per function")
        return Agent(fn, workflow, name=name, version=version, options=options)

    return wrap


def load_agent(entry: str) -> Agent[..., Any] | Callable[..., Any]:
    """The agent (or plain function) that ``module:qualname`` names, imported."""
    module_name, sep, qualname = entry.partition(":")
    if not sep or not module_name or not qualname:
        raise RecoveryError(f"agent {entry!r} is not 'module:function' (e.g. "
                            "'mypkg.agents:triage')")
    if "<locals>" in qualname:
        raise RecoveryError(f"{entry} is defined inside a function and cannot be imported; "
                            "define the agent at module level, or pass the function itself")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RecoveryError(f"cannot import {module_name!r} for agent {entry}: {exc}; run "
                            "from where the agent's code is importable, or name it with "
                            "--agent module:function") from exc
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise RecoveryError(f"{module_name} has no {qualname!r} (agent {entry}); name "
                                "the agent with --agent module:function")
    if not callable(found):
        raise RecordingError(f"{entry} is not callable")
    return found  # type: ignore[no-any-return]
