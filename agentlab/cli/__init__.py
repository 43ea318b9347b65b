"""The ``agentlab`` command: thin commands over the public API.

Every command that touches a store takes ``--store URL``; without it the store is resolved by
``open_store`` (``AGENTLAB_STORE``, else ``[tool.agentlab] store`` in ``pyproject.toml``, else
``./agentlab.db``). Read-only commands never create a store: a missing one is an error. Most
commands take ``--json``. Failures exit 1 with a one-line reason on stderr.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import BinaryIO, TextIO

import click

from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    store_option,
    wrap_errors,
)
from agentlab.cli._lazy import LazyGroup
from agentlab.errors import NewStoreWarning

__all__ = ["LAZY_COMMANDS", "cli", "main"]


# Commands defined in their own modules, imported when first used (see cli/_lazy.py): the
# module and the one-line help `agentlab --help` shows (a test holds it to the command's own).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "approvals": ("agentlab.cli._approvals",
        "List approval requests waiting for a human (every request with --all)."),
    "approve": ("agentlab.cli._approvals",
        "Approve the pending tool call ID: the waiting agent runs it exactly as shown, "
        "once."),
    "approver": ("agentlab.cli._approvers",
        "Who may decide approval requests: approvers, their groups and their keys."),
    "conclude": ("agentlab.cli._analysis",
        "Conclude the run's investigation with its culprit step and a note (records the"
        " time to explain, from which MTTE is measured)."),
    "demo": ("agentlab.cli._demo",
        "Build the sample store: two weeks of the sample support-triage agent, then "
        "explain its bad run."),
    "edit": ("agentlab.cli._approvals",
        "Approve the pending tool call ID with changed arguments; prints what changed."),
    "eval-attribution": ("agentlab.cli._attribution",
        "Score explain's culprit ranking against labelled failed runs."),
    "explain": ("agentlab.cli._analysis",
        "Explain a run: ranked culprit steps with evidence, the credential of each "
        "call, the state carried between steps, and whether it can be replayed (RUN may"
        " be a prefix)."),
    "fork": ("agentlab.cli._recovery",
        "Re-run a recorded run from step SEQ with an edited tool result, model response"
        " or state value, as a child run linked to it."),
    "grant": ("agentlab.cli._grants",
        "Issue a grant: agent AGENT may act for OWNER in workflow WF with the given "
        "scopes."),
    "grants": ("agentlab.cli._grants",
        "List grants: who may act, for whom, in which workflow, with which scopes."),
    "import": ("agentlab.cli._import",
        "Import runs from files or folders: agentlab's portable JSONL, tau-bench, "
        "SWE-agent, Who&When or OTLP (told from the content); each file all or nothing."),
    "investigate": ("agentlab.cli._analysis",
        "Open an investigation of a run (the time-to-explain clock starts) and explain "
        "it."),
    "lab": ("agentlab.cli._lab",
        "Start JupyterLab on 127.0.0.1 in notebooks/ with the store configured."),
    "metrics": ("agentlab.cli._metrics",
        "Completion rate with human override rate, retry and incident rates, cost per "
        "successful run, latency p50/p95 and MTTE, per group of runs."),
    "reject": ("agentlab.cli._approvals",
        "Reject the pending tool call ID: it does not run, and the run records why."),
    "replay": ("agentlab.cli._recovery",
        "Replay a recorded run as a new run linked to it: serve the recorded LLM "
        "responses and tool results, report every divergence, the outcome before and "
        "after, and the state diff at the end."),
    "resume": ("agentlab.cli._recovery",
        "Continue an interrupted run (a crash, a pending approval, an error) with the "
        "code that recorded it: it catches up with the record without executing "
        "anything again, then goes on live."),
    "revoke": ("agentlab.cli._grants",
        "Revoke grant NAME: every later call through it is refused, in every process."),
    "rollback": ("agentlab.cli._recovery",
        "Undo a run's finished side effects, newest first, through their registered "
        "compensations, under the same grants, policy and approvals (answer with "
        "`agentlab approve`); recorded as a rollback run."),
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentlab")
def cli() -> None:
    """Record, govern, explain, recover and measure AI agent runs.

    Commands that touch a store take --store URL (default: AGENTLAB_STORE, else
    [tool.agentlab] store in pyproject.toml, else the nearest agentlab.db); commands that
    print data take --json.

    \b
    New here?  agentlab demo --auto-approve     record the sample agent's runs
               agentlab runs                    list them
               agentlab explain RUN             why a bad one failed
    """


@cli.command()
@store_option
@json_option
@click.option("--workflow", help="Only runs of this workflow.")
@click.option("--agent", help="Only runs of this agent name.")
@click.option("--agent-version", help="Only runs of this agent version.")
@click.option("--status", type=click.Choice(["running", "paused", "abandoned", "succeeded",
                                           "failed", "errored"]),
              help="Only runs with this status (paused: left open by its recorder, to be "
                   "resumed; abandoned: marked running, but the process recording it "
                   "stopped renewing its lease).")
@click.option("--task", "task_id", help="Only runs of this task id.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many runs, newest first.")
@wrap_errors
def runs(store_url: str | None, as_json: bool, workflow: str | None, agent: str | None,
         agent_version: str | None, status: str | None, task_id: str | None, limit: int) -> None:
    """List runs, newest first."""
    from agentlab.cli._render import runs_table
    from agentlab.store import RunFilter

    with open_cli_store(store_url, create=False) as store:
        found = store.runs(RunFilter(workflow=workflow, agent_name=agent,
                                     agent_version=agent_version, status=status,
                                     task_id=task_id, limit=limit))
        ids = store.short_ids(r.run_id for r in found) if not as_json else {}
    if as_json:
        echo_json(found)
    else:
        click.echo(runs_table(found, ids))


@cli.command()
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@click.option("--full", is_flag=True,
              help="Write every payload (arguments, results, messages, responses, errors) "
              "whole under its event, instead of an excerpt cut to the line.")
@wrap_errors
def show(run_id: str, store_url: str | None, as_json: bool, full: bool) -> None:
    """Show one run: its summary and every step in order (RUN may be an id prefix).

    Each event is one line with its payloads cut to fit; --full writes them whole below it.
    """
    from agentlab.analysis import timeline_rows
    from agentlab.analysis._timeline import human_duration
    from agentlab.cli._render import summary_block, timeline
    from agentlab.model import count_events

    with open_cli_store(store_url, create=False) as store:
        summary = store.run(run_id)
        events = store.events(summary.run_id)
        approvals = store.approvals(run_id=summary.run_id)
    if as_json:
        echo_json({"run": summary, "events": events})
        return
    waits = {r.seq: r.duration_ms or 0.0 for r in timeline_rows(events, approvals=approvals)
             if r.kind == "approval_wait"}
    total = f"{human_duration(sum(waits.values()))} for {len(waits)} approval(s)"
    click.echo(summary_block(summary, count_events(events), waited=total if waits else None))
    click.echo()
    click.echo(timeline(events, waits={seq: human_duration(ms) for seq, ms in waits.items()},
                        full=full))


@cli.command()
@click.argument("run_id", metavar="[RUN]", required=False)
@store_option
@json_option
@wrap_errors
def verify(run_id: str | None, store_url: str | None, as_json: bool) -> None:
    """Check hash chains, sequence numbers, summaries and blobs; exit 1 if any is broken."""
    with open_cli_store(store_url, create=False) as store:
        reports = store.verify(run_id)
    broken = [r for r in reports if not r.ok]
    if as_json:
        echo_json(reports)
    else:
        for r in reports:
            if r.ok:
                click.echo(f"ok      {r.run_id}  {r.events:,} events, chain intact")
            else:
                click.echo(f"BROKEN  {r.run_id}  at seq {r.first_bad_seq}: {r.reason}")
        click.echo(f"{len(reports) - len(broken)} of {len(reports)} runs intact")
    if broken:
        fail(f"{len(broken)} run(s) failed verification, first {broken[0].run_id} "
             f"at seq {broken[0].first_bad_seq}: {broken[0].reason}")


@cli.command()
@click.argument("run_ids", metavar="RUN [RUN_B]", nargs=-1, required=True)
@store_option
@json_option
@click.option("--from", "from_seq", type=click.IntRange(min=0), default=None,
              help="One run: the state as of this seq (default: before the run, 0).")
@click.option("--to", "to_seq", type=click.IntRange(min=0), default=None,
              help="One run: the state as of this seq (default: the final state).")
@wrap_errors
def diff(run_ids: tuple[str, ...], store_url: str | None, as_json: bool,
         from_seq: int | None, to_seq: int | None) -> None:
    """Show what changed in the run state: between two points of RUN, or between the final
    states of RUN and RUN_B (JSON-pointer paths with old and new values)."""
    from agentlab.analysis import state_diff

    if len(run_ids) > 2:
        fail(f"diff takes one run or two, not {len(run_ids)}")
    with open_cli_store(store_url, create=False) as store:
        first = store.resolve(run_ids[0])
        if len(run_ids) == 2:
            if from_seq is not None or to_seq is not None:
                fail("--from/--to apply to one run; two runs are compared at their final states")
            changes = state_diff(store, first, from_seq=None, other_run=store.resolve(run_ids[1]))
        else:
            try:
                changes = state_diff(store, first, from_seq=0 if from_seq is None else from_seq,
                                     to_seq=to_seq)
            except ValueError as exc:  # a reversed or out-of-range --from/--to
                fail(str(exc).replace("from_seq=", "--from ").replace("to_seq=", "--to "))
    if as_json:
        echo_json([{"op": c.op, "path": c.path, "old": c.old, "new": c.new} for c in changes])
        return
    if not changes:
        click.echo("no differences")
    for c in changes:
        if c.op == "add":
            click.echo(f"+ {c.path}: {_short(c.new)}")
        elif c.op == "remove":
            click.echo(f"- {c.path}: {_short(c.old)}")
        else:
            click.echo(f"~ {c.path}: {_short(c.old)} -> {_short(c.new)}")


def _short(value: object, width: int = 70) -> str:
    import orjson

    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command("export")
@click.argument("run_ids", metavar="[RUN...]", nargs=-1)
@store_option
@click.option("-o", "--output", type=click.Path(writable=True, path_type=Path),
              help="Write to this file instead of standard output (with --format parquet: "
              "the folder to write the files into).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "otlp", "parquet"]),
              default="jsonl", show_default=True,
              help="jsonl: the portable form of the runs named, verifiable without the "
              "database. otlp: the runs named as OpenTelemetry spans (OTLP JSON, GenAI "
              "conventions plus agentlab.* attributes), one document a line. parquet: runs, "
              "steps, checkpoints and approvals as tables for analysis (all runs unless "
              "some are named; see docs/metrics.md).")
@wrap_errors
def export_cmd(run_ids: tuple[str, ...], store_url: str | None, output: Path | None,
               fmt: str) -> None:
    """Export runs in the portable JSONL form (verifiable without the database), as
    OpenTelemetry spans (OTLP JSON), or as Parquet tables for analysis at scale."""
    if fmt == "parquet":
        _export_parquet(run_ids, store_url, output)
        return
    if not run_ids:
        fail("name the runs to export (RUN...); `agentlab runs` lists them")
    if output is not None and output.is_dir():
        fail(f"{output} is a folder: the {fmt.upper()} export is one file; give a file name")
    with open_cli_store(store_url, create=False) as store:
        ids = list(run_ids)
        if fmt == "otlp":
            from agentlab.integrations import export_otlp

            ids = [store.resolve(r) for r in run_ids]

            def write(fh: BinaryIO) -> int:
                return export_otlp(store, ids, fh)
        else:
            def write(fh: BinaryIO) -> int:
                return store.export_runs(ids, fh)
        if output is None:
            write(sys.stdout.buffer)
            return
        # Write beside the target and rename, so a reader never sees a half file; on any
        # failure (unknown run, database error, full disk, Ctrl-C) remove the partial file.
        tmp = output.with_name(output.name + ".partial")
        try:
            with tmp.open("wb") as fh:
                written = write(fh)
            tmp.replace(output)
        except BaseException:
            with contextlib.suppress(OSError):  # report the export's error, not this one
                tmp.unlink(missing_ok=True)
            raise
    what = "spans" if fmt == "otlp" else "lines"
    click.echo(f"exported {len(run_ids)} run(s), {written} {what}, to {output}", err=True)


def _export_parquet(run_ids: tuple[str, ...], store_url: str | None,
                    output: Path | None) -> None:
    from agentlab.query import export_parquet

    if output is None:
        fail("a Parquet export is a folder of files: give it with -o FOLDER")
    with open_cli_store(store_url, create=False) as store:
        ids = [store.resolve(r) for r in run_ids] or None
        rows = export_parquet(store, output, ids,
                              progress=lambda t, n: click.echo(f"  {t}: {n:,} rows", err=True))
    click.echo(f"exported {rows['runs']:,} run(s) as Parquet to {output}/ (runs, steps, "
               "checkpoints, approvals)", err=True)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file instead of standard output.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the portable JSONL form."""
    import orjson

    from agentlab.model import portable_json_schema

    data = orjson.dumps(portable_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if output is None:
        click.echo(data.decode())
    else:
        output.write_bytes(data + b"\n")


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """agentlab's own warnings as one line on stderr, as its errors are (no source line)."""
    if issubclass(category, NewStoreWarning):
        text = str(message).removeprefix("agentlab: ")
        click.echo(f"agentlab: warning: {text}", err=True)
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


def main() -> None:
    """Console entry point."""
    warnings.showwarning = _one_line_warning
    cli(prog_name="agentlab")


