"""Recovery commands: replay, fork, resume and roll back recorded runs."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import click

from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    echo_report,
    fail,
    json_option,
    open_cli_store,
    progress_bar,
    store_option,
    wrap_errors,
)
from agentlab.errors import ReplayDivergence
from agentlab.model import loads

__all__: list[str] = []

agent_option = click.option(
    "--agent", "agent_ref", metavar="MODULE:FUNCTION",
    help="The code to run (an @agentlab.agent or a function (task_input) -> ...); default: "
         "the entry point the run recorded.")


def _json_arg(text: str, what: str) -> Any:
    try:
        return loads(text)
    except ValueError as exc:
        fail(f"{what} {text!r} is not JSON ({exc}); quote strings: '\"text\"'")


def _stopped(stop: ReplayDivergence, as_json: bool) -> None:
    """Report a replay that stopped: what it did so far, then exit 1 with the reason."""
    if stop.result is not None:
        if as_json:
            echo_json({**stop.result.to_dict(), "stopped": {
                "seq": stop.seq, "expected": stop.expected, "actual": stop.actual,
                "why": stop.why, "message": str(stop)}})
        else:
            click.echo(stop.result.to_text())
    fail(str(stop))


@cli.command("replay")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@agent_option
@click.option("--strict", "mode", flag_value="strict",
              help="Check the code still does exactly what the record holds (the default "
                   "without --agent): the first differing call stops the replay.")
@click.option("--after-fix", "mode", flag_value="after_fix",
              help="Run changed code against the record (the default with --agent): "
                   "identical calls are served, differing side effects are stubbed or stop it.")
@click.option("--live-reads", is_flag=True,
              help="After a fix: let read-only calls (and model calls) the record does not "
                   "hold run live. Side effects never run live in a replay.")
@wrap_errors
def replay_cmd(run_id: str, store_url: str | None, as_json: bool, agent_ref: str | None,
               mode: str | None, live_reads: bool) -> None:
    """Replay a recorded run as a new run linked to it: serve the recorded LLM responses
    and tool results, report every divergence, the outcome before and after, and the state
    diff at the end. Exits 1 when the replay stops at a divergence."""
    from agentlab.recovery import replay

    if mode == "strict" and live_reads:
        fail("--live-reads applies after a fix; a strict replay runs nothing live")
    with open_cli_store(store_url, create=False) as store, \
            progress_bar("replaying", as_json) as tick:
        try:
            result = replay(store, store.resolve(run_id), agent=agent_ref,
                            mode=mode,  # type: ignore[arg-type]
                            live_reads=live_reads, progress=tick)
        except ReplayDivergence as stop:
            _stopped(stop, as_json)
    echo_report(result, as_json)


def _state_edits(specs: tuple[str, ...]) -> dict[str, Any]:
    edits: dict[str, Any] = {}
    for spec in specs:
        path, sep, value = spec.partition("=")
        if not sep or not path.strip("/"):
            fail(f"--set-state {spec!r}: write PATH=JSON, e.g. account/plan='\"enterprise\"'")
        edits[path.strip("/")] = _json_arg(value, f"--set-state {path}=")
    return edits


@cli.command("fork")
@click.argument("run_id", metavar="RUN")
@click.option("--at", "at_seq", type=click.IntRange(min=1), required=True, metavar="SEQ",
              help="The step to fork at: a call (with --set-result) or any seq (with "
                   "--set-state: applied after the last checkpoint at or before it).")
@click.option("--set-result", metavar="JSON",
              help="The result (or model response) the call at SEQ answers with instead.")
@click.option("--set-state", multiple=True, metavar="PATH=JSON",
              help="Set a state value, e.g. account/plan='\"enterprise\"' (repeatable).")
@store_option
@json_option
@agent_option
@click.option("--no-live-reads", is_flag=True,
              help="Stop at a read the record does not hold instead of running it live.")
@click.option("--allow-side-effects", is_flag=True,
              help="Let side effects the record does not hold run live, through their "
                   "grants and approvals (asked with `agentlab approve`); default: stub or stop.")
@wrap_errors
def fork_cmd(run_id: str, at_seq: int, set_result: str | None, set_state: tuple[str, ...],
             store_url: str | None, as_json: bool, agent_ref: str | None, no_live_reads: bool,
             allow_side_effects: bool) -> None:
    """Re-run a recorded run from step SEQ with an edited tool result, model response or
    state value, as a child run linked to it. Steps before SEQ come from the record."""
    from agentlab.approval import announce
    from agentlab.recovery import fork

    if (set_result is None) == (not set_state):
        fail("give exactly one edit: --set-result JSON, or --set-state PATH=JSON")
    edit: dict[str, Any] = ({"result": _json_arg(set_result, "--set-result")}
                            if set_result is not None else {"state": _state_edits(set_state)})
    with open_cli_store(store_url, create=False) as store, progress_bar("forking", as_json) as tick:
        try:
            result = fork(store, store.resolve(run_id), at=at_seq, agent=agent_ref,
                          live_reads=not no_live_reads, allow_side_effects=allow_side_effects,
                          approver=announce if allow_side_effects else None,
                          progress=tick, **edit)
        except ReplayDivergence as stop:
            _stopped(stop, as_json)
    echo_report(result, as_json)


@cli.command("resume")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@agent_option
@wrap_errors
def resume_cmd(run_id: str, store_url: str | None, as_json: bool, agent_ref: str | None) -> None:
    """Continue an interrupted run (a crash, a pending approval, an error) with the code
    that recorded it: it catches up with the record without executing anything again, then
    goes on live. An approval it needs waits for `agentlab approve` from another terminal."""
    from agentlab.approval import announce
    from agentlab.recovery import resume

    with open_cli_store(store_url, create=False) as store:
        result = resume(store, store.resolve(run_id), agent=agent_ref, approver=announce)
    echo_report(result, as_json)
    if result.error is not None:
        fail(f"the resumed run ended in an error: {result.error}")


@cli.command("rollback")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@click.option("--tools", "tools_ref", metavar="MODULE[:OBJECT]",
              help="Where the run's tools are (a module, or an object holding them): their "
                   "compensate= undo the run's side effects. Default: the module of the "
                   "entry point the run recorded.")
@click.option("--approval-timeout", type=click.IntRange(min=1), default=10, show_default=True,
              metavar="MINUTES", help="How long an undo that needs approval waits for one.")
@wrap_errors
def rollback_cmd(run_id: str, store_url: str | None, as_json: bool, tools_ref: str | None,
                 approval_timeout: int) -> None:
    """Undo a run's finished side effects, newest first, through their registered
    compensations, under the same grants, policy and approvals (answer with `agentlab
    approve`); recorded as a rollback run. Run it again after an interruption: it resumes,
    and never undoes anything twice. Exits 1 unless everything was undone."""
    from agentlab.approval import announce
    from agentlab.recovery import rollback

    with open_cli_store(store_url, create=False) as store:
        summary = store.run(run_id)
        tools, policy = _tools_and_policy(store, summary.run_id, tools_ref)
        result = rollback(store, summary.run_id, tools=tools, policy=policy, approver=announce,
                          approval_timeout=timedelta(minutes=approval_timeout))
    echo_report(result, as_json)
    if not result.complete:
        fail("the rollback is not complete: see the lines above")


def _tools_and_policy(store: Any, run_id: str, ref: str | None) -> tuple[list[Any], Any]:
    """The tools that hold compensations, found in ``ref`` or in the recorded entry point's
    module, and the agent's policy (when the run recorded an @agent)."""
    import importlib

    from agentlab.record import Agent, RecordedRun, ToolSpec, load_agent

    code = RecordedRun.load(store, run_id).started.code
    policy = None
    if code is not None and code.entry:
        with contextlib.suppress(Exception):
            found = load_agent(code.entry)
            if isinstance(found, Agent):
                policy = found.options.get("policy")
    where = ref or (code.entry.split(":")[0] if code is not None and code.entry else None)
    if where is None:
        return [], policy
    module_name, _, attr = where.partition(":")
    holder: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        holder = getattr(holder, part)
    if callable(holder) and not hasattr(holder, "agentlab") and attr:
        holder = holder()
    values = holder if isinstance(holder, list | tuple) else [
        getattr(holder, n) for n in dir(holder) if not n.startswith("__")]
    return [v for v in values if isinstance(getattr(v, "agentlab", None), ToolSpec)], policy
