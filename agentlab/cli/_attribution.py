"""``agentlab eval-attribution``: how often ``explain``'s ranked culprits name the step and
the agent a human labelled as the cause of a failed run, next to trivial baselines.

A thin front end over :func:`agentlab.analysis.score_attribution`; the labels come from a
JSON-lines file such as ``agentlab import --format who-and-when --labels-out`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from agentlab.analysis import Label, read_labels, score_attribution
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_report,
    fail,
    json_option,
    open_cli_store,
    progress_bar,
    store_option,
    wrap_errors,
)
from agentlab.errors import RunNotFoundError
from agentlab.store import RunStore

__all__ = ["LabelledRunNotFoundError"]  # the command registers itself on ``cli``

_LEGEND = (
    "step top-1 = the first culprit is the labelled step; step top-3 = it is among the first\n"
    "three; agent top-1 = the first culprit's agent is the labelled agent; each a share of the\n"
    "labelled runs. A baseline is a trivial guess on the same runs (one step, so no top-3);\n"
    "--json has each run's result.")


class LabelledRunNotFoundError(RunNotFoundError):
    """A labels file names runs that are not in the store (they were never imported)."""

    def __init__(self, labels: Path, missing: Sequence[str]) -> None:
        super().__init__(missing[0])
        self.labels = labels
        self.missing = list(missing)

    def __str__(self) -> str:
        more = f" and {len(self.missing) - 1} more" if len(self.missing) > 1 else ""
        return (f"{self.labels} labels run {self.run_id!r}{more}, not in this store; import "
                "the runs first (e.g. `agentlab import PATH --format who-and-when "
                "--labels-out LABELS` with the same --store)")


def _check_runs(store: RunStore, labels: Sequence[Label], path: Path) -> None:
    """Stop before any work when a label's run is not stored: scoring would fail part way."""
    missing: list[str] = []
    for lb in labels:
        try:
            store.run(lb.run_id)
        except RunNotFoundError:
            missing.append(lb.run_id)
    if missing:
        raise LabelledRunNotFoundError(path, list(dict.fromkeys(missing)))


@cli.command("eval-attribution")
@click.argument("labels_path", metavar="LABELS",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@store_option
@json_option
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Score only the first N labels of the file (default: all).")
@wrap_errors
def eval_attribution_cmd(labels_path: Path, store_url: str | None, as_json: bool,
                         limit: int | None) -> None:
    """Score explain's culprit ranking against labelled failed runs.

    LABELS is a JSON-lines file, one {"run_id", "step", "agent"} object per failed run: the
    step that caused the failure (its source position such as "history[3]", or a seq) and
    the agent that took it, as `agentlab import --format who-and-when --labels-out` writes
    them. The runs must be in the store already: import them first.

    Each labelled run is explained with the defaults, and its ranked culprits are compared
    with the label by exact match. The figures are shares of the labelled runs:

    \b
      step top-1   the first culprit is the labelled step
      step top-3   the labelled step is among the first three culprits
      agent top-1  the first culprit's agent is the labelled agent

    Next to the ranking, trivial baselines scored on the same runs, which the ranking must
    beat to be worth reading (one guess each, so no top-3):

    \b
      always index 1               the run's second step
      first state-changing call    the decision behind the first side-effecting call
                                   (else the first tool call, else the first step)
      last assistant message       the final answer (else the last step)
      agent of the first message   whoever took the first step (read its agent figure)

    The first line gives the number of runs and the time spent in explain. --json prints
    the same figures as fractions plus each run's top three culprits and whether it hit.
    """
    labels = read_labels(labels_path)
    if limit is not None:
        labels = labels[:limit]
    if not labels:
        fail(f"{labels_path} holds no labels; write one JSON object a line with run_id, "
             "step and agent")
    with open_cli_store(store_url, create=False) as store:
        _check_runs(store, labels, labels_path)
        with progress_bar("explaining labelled runs", as_json) as tick:
            report = score_attribution(store, labels, progress=tick)
    echo_report(report, as_json)
    if not as_json:
        click.echo(f"\n{_LEGEND}")
