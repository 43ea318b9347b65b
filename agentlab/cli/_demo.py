"""``agentlab demo``: build the sample store, verify it and explain its bad run.

The scenario's runs are imported from ``sample_traces/`` (or recorded by running the agent),
the one run that must wait for a human is recorded live, and the seed story is printed with
the bad run's explanation and how to open the workbench.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    store_location,
    store_option,
    wrap_errors,
)
from agentlab.store import SqlStore

__all__: list[str] = []  # the command registers itself on ``cli``


@cli.command()
@store_option
@json_option
@click.option("--auto-approve", is_flag=True,
              help="Nothing waits for a human (what `make demo` passes): the run waiting for "
              "approval is left pending in the store, to answer later with `agentlab approve` "
              "and finish with `agentlab resume`.")
@click.option("--approval-timeout", type=click.IntRange(min=1), default=10, show_default=True,
              metavar="MINUTES",
              help="Without --auto-approve: how long each approval request of the waiting run "
              "waits for a decision before its call is refused.")
@click.option("--live", is_flag=True,
              help="Record the sample scenario now by running the agent (the scripted leads "
              "answer its approvals) instead of importing sample_traces/.")
@click.option("--regenerate-sample", is_flag=True,
              help="For maintainers: record the scenario and rewrite "
              "sample_traces/support-triage-scenario.jsonl.gz (after changing the agent or the "
              "scenario), then stop.")
@wrap_errors
def demo(store_url: str | None, as_json: bool, auto_approve: bool, approval_timeout: int,
         live: bool, regenerate_sample: bool) -> None:
    """Build the sample store: two weeks of the sample support-triage agent, then explain
    its bad run.

    About 400 governed runs of two agent versions (1.0.0, and 1.1.0, which reads the CRM
    again when a cached account record is old), three teams and their leads, 14 days:
    retries, tool errors, approvals, edits and rejections. Imported from sample_traces/
    in a few seconds (--live records them by running the agent). Among them the seed
    story: a good run, the bad run (a stale account cache: wrong entitlement in the reply,
    wrong Jira issue, too low a priority), the fixed version's run of the same ticket, a
    run whose priority drop the lead rejected and one whose Jira issue she edited. Then one
    run is recorded live until it needs the support lead's approval (T-1006).

    With --auto-approve it is left waiting in the store. Without it, its requests are
    printed and the demo waits for a decision from another terminal (`agentlab approve ID
    --as NAME`, or reject / edit) or a notebook, up to --approval-timeout minutes; an
    undecided call is refused. The store's hash chains are verified, and the bad run's
    explanation printed.
    """
    if regenerate_sample:
        _regenerate_sample(as_json)
        return
    from datetime import timedelta

    from agentlab.analysis import explain
    from agentlab.demo import (
        build_sample_store,
        record_waiting_run_here,
        sample_path,
        sample_story,
        waiting_approver,
    )

    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    # a new store is what this command makes: no warning about one
    with open_cli_store(store_url, create=True, announce=False) as store:
        where = store_location(store)
        again = "" if store_url is None else f" --store {shlex.quote(where)}"
        source = sample_path()
        if not live and not source.exists():
            say(f"{source} is not here (agentlab installed without its sample_traces/): "
                "recording the scenario live instead")
            live = True
        say(f"building the sample store in {where}")
        story = build_sample_store(store, live=live, out=say, waiting=auto_approve)
        if not auto_approve and story.waiting_run_id is None:
            wait = timedelta(minutes=approval_timeout)
            record_waiting_run_here(store, approver=waiting_approver(
                say, answer_hint=again, wait=wait), approval_timeout=wait, out=say)
            story = sample_story(store)
        reports = store.verify()
        broken = [r for r in reports if not r.ok]
        explanation = explain(store, story.bad_run_id)
        if as_json:
            runs = [store.run(run_id) for run_id in story.run_ids.values()]
            echo_json({**{f"{part}_run_id": run_id for part, run_id in story.run_ids.items()},
                       "waiting_request_id": story.waiting_request_id,
                       "runs": runs, "stored": len(reports),
                       "broken": [r.run_id for r in broken],
                       "approvals": store.approvals(status="pending"),
                       "explanation": explanation})
        else:
            _print_story(store, story, again)
            click.echo(f"\n{len(reports) - len(broken)} of {len(reports)} runs intact "
                       "(hash chains, sequence numbers, summaries, blobs)")
            click.echo(f"\n== Why the bad run failed: agentlab explain "
                       f"{story.bad_run_id[:12]}{again} ==")
            click.echo(explanation.to_text())
            me = _this_command()
            click.echo(f"\nstored in {where}; check the hash chains with `{me} verify{again}`; "
                       f"compare versions with `{me} metrics --by agent_version{again}`")
            click.echo(f"open the workbench: {me} lab{again} (JupyterLab in notebooks/ with "
                       "this store)")
    if broken:
        fail(f"{len(broken)} run(s) failed verification; see `agentlab verify{again}`")


def _this_command() -> str:
    """How to call this command again from here: ``agentlab`` when the shell finds this
    one, else its path (``.venv/bin/agentlab`` after ``make demo``)."""
    found = shutil.which("agentlab")
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if (here is None or here.name != "agentlab" or not here.exists()
            or (found and Path(found).resolve() == here)):
        return "agentlab"
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


_STORY_LINES = {
    "good": "T-1001, fresh account data: escalated to ENG, urgent; succeeded",
    "bad": "T-1001, stale cache (1.0.0): wrong issue, priority and reply; the on-call approved",
    "fixed": "T-1001, same stale cache, version 1.1.0 reads the CRM again: succeeded",
    "rejected": "T-1004: the lead rejected the agent's priority drop",
    "edited": "T-1005, stale cache: the lead edited the Jira issue; the reply still failed",
    "waiting": "T-1006 (1.1.0): waiting for the support lead's approval",
}


def _print_story(store: SqlStore, story: Any, again: str) -> None:
    from agentlab.analysis import metrics_summary

    runs = store.runs()
    days = sorted({r.started_at.date() for r in runs if r.run_id != story.waiting_run_id})
    now = " (and the waiting run, recorded now)" if story.waiting_run_id else ""
    click.echo(f"\nThe sample store: {len(runs)} runs, {len({r.agent_version for r in runs})} "
               f"agent versions, {len({r.team for r in runs})} teams, {len(days)} days "
               f"from {days[0]} to {days[-1]}{now}")
    for row in metrics_summary(store, by=("agent_version",)):
        click.echo(f"  version {row.group['agent_version']}: {row.runs} runs, "
                   f"{_pct(row.completion_rate)} succeeded, {_pct(row.override_rate)} of "
                   f"human decisions overrode it, {_pct(row.retry_rate)} with retries")
    click.echo("\nThe seed story:")
    short = store.short_ids(story.run_ids.values())
    for part, run_id in story.run_ids.items():
        line = _STORY_LINES[part]
        status = store.run(run_id).status
        if part == "waiting" and status != "running":
            line = f"T-1006 (1.1.0): recorded with your decisions; {status}"
        click.echo(f"  {part:<9} {short[run_id]:<12}  {line}")
    if story.waiting_request_id is not None:
        click.echo(f"  answer it: agentlab approve {story.waiting_request_id} --as NAME"
                   f"{again}, then agentlab resume {story.waiting_run_id}{again}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _regenerate_sample(as_json: bool) -> None:
    from agentlab.demo import sample_path, write_sample

    target = sample_path()
    if not target.parent.is_dir():
        fail(f"{target.parent} is not here: regenerate the sample from a checkout of agentlab")
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    write_sample(target, out=say)
    if as_json:
        echo_json({"written": str(target), "bytes": target.stat().st_size})
    else:
        click.echo(f"wrote {target} ({target.stat().st_size:,} bytes)")
