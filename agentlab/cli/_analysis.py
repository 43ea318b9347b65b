"""Investigation commands: explain a run, open an investigation, conclude it."""

from __future__ import annotations

from datetime import timedelta

import click

from agentlab.analysis import conclude, explain, investigate
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    echo_report,
    fail,
    json_option,
    open_cli_store,
    parse_duration,
    progress_bar,
    store_option,
    wrap_errors,
)

__all__: list[str] = []

def _freshness(specs: tuple[str, ...]) -> dict[str, timedelta]:
    out: dict[str, timedelta] = {}
    for spec in specs:
        tool, sep, bound = spec.partition("=")
        if not tool or not sep:
            fail(f"--freshness {spec!r}: write TOOL=DURATION, e.g. lookup_account=1h "
                 "(TOOL may be a glob)")
        out[tool] = parse_duration(bound, f"--freshness {tool}=")
    return out


@cli.command("explain")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@click.option("--against", "siblings", multiple=True, metavar="RUN",
              help="Compare with this successful run (repeatable; default: the latest "
                   "successful runs of the same task).")
@click.option("--freshness", multiple=True, metavar="TOOL=DURATION",
              help="The oldest a tool's result may be, e.g. lookup_account=1h (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many culprit candidates to list.")
@click.option("--counterfactual", is_flag=True,
              help="Fork the failed run at each call with what a successful sibling saw "
                   "there; a substitution that flips the outcome is the strongest evidence.")
@click.option("--max-forks", type=click.IntRange(min=1), default=20, show_default=True,
              help="With --counterfactual: at most this many forks.")
@click.option("--max-seconds", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="With --counterfactual: stop forking after this long.")
@click.option("--agent", "agent_ref", metavar="MODULE:FUNCTION",
              help="With --counterfactual: the code to fork (default: the entry point the run "
                   "recorded).")
@wrap_errors
def explain_cmd(run_id: str, store_url: str | None, as_json: bool, siblings: tuple[str, ...],
                freshness: tuple[str, ...], limit: int, counterfactual: bool, max_forks: int,
                max_seconds: float, agent_ref: str | None) -> None:
    """Explain a run: ranked culprit steps with evidence, the credential of each call, the
    state carried between steps, and whether it can be replayed (RUN may be a prefix)."""
    budget = None
    if counterfactual:
        from agentlab.recovery import Budget

        budget = Budget(forks=max_forks, seconds=max_seconds)
    with open_cli_store(store_url, create=False) as store, \
            progress_bar("counterfactual forks", as_json, at_least=1) as tick:
        ex = explain(store, run_id, siblings=[store.resolve(s) for s in siblings] or None,
                     freshness=_freshness(freshness), limit=limit,
                     counterfactual=counterfactual, agent=agent_ref, budget=budget,
                     progress=tick)
        echo_report(ex, as_json)


@cli.command("investigate")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@click.option("--as", "by", metavar="NAME", help="Who investigates (default: $AGENTLAB_USER "
              "or your login name).")
@wrap_errors
def investigate_cmd(run_id: str, store_url: str | None, as_json: bool, by: str | None) -> None:
    """Open an investigation of a run (the time-to-explain clock starts) and explain it."""
    with open_cli_store(store_url, create=False) as store:
        opened = investigate(store, run_id, by=by)
        ex = explain(store, opened.run_id)
        if as_json:
            echo_json({"investigation": opened.model_dump(mode="json"),
                       "explanation": ex.to_dict()})
            return
        click.echo(f"investigation {opened.id[:12]} of run {opened.run_id[:12]} opened by "
                   f"{opened.opened_by} at {opened.opened_at:%Y-%m-%d %H:%M:%S} UTC\n")
        click.echo(ex.to_text())
        top = ex.culprit
        hint = f" --culprit {top.seq}" if top else " --culprit SEQ"
        click.echo(f"\nwhen explained: agentlab conclude {opened.run_id}{hint} "
                   "--note '...'")


@cli.command("conclude")
@click.argument("run_id", metavar="RUN")
@store_option
@json_option
@click.option("--culprit", "culprit_seq", type=click.IntRange(min=1), metavar="SEQ",
              help="The step that caused the bad run (its seq).")
@click.option("--note", help="What happened, in a sentence.")
@click.option("--as", "by", metavar="NAME", help="Who concludes (default: $AGENTLAB_USER "
              "or your login name).")
@wrap_errors
def conclude_cmd(run_id: str, store_url: str | None, as_json: bool, culprit_seq: int | None,
                 note: str | None, by: str | None) -> None:
    """Conclude the run's investigation with its culprit step and a note (records the time
    to explain, from which MTTE is measured)."""
    if culprit_seq is None and not note:
        fail("say what was found: --culprit SEQ and/or --note TEXT")
    with open_cli_store(store_url, create=False) as store:
        done = conclude(store, run_id, culprit_seq=culprit_seq, note=note, by=by)
        if as_json:
            echo_json(done.model_dump(mode="json"))
            return
        took = done.seconds_to_explain or 0.0
        click.echo(f"run {done.run_id[:12]} explained by {done.concluded_by} in {took:.0f} s"
                   + (f": culprit seq {done.culprit_seq}" if done.culprit_seq else "")
                   + (f" — {done.note}" if done.note else ""))
