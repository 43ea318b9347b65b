"""``agentlab import``: runs from other systems' files (and agentlab's own) into the store.

Each PATH is a file or a folder; its format is told from the content unless ``--format``
names it. Each file is imported all or nothing (the importers check every run before any is
written). With several PATHs (a shell glob), each is imported in turn: one that cannot be
read is reported and the rest still go in, and the command then exits 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    progress_bar,
    store_option,
    wrap_errors,
)
from agentlab.errors import AgentlabError, ImportFormatError

if TYPE_CHECKING:
    from agentlab.store import SqlStore

__all__ = ["import_cmd"]

FORMAT_NAMES = ("agentlab", "tau-bench", "swe-agent", "who-and-when", "otlp")
_FOLDER_FORMATS = ("who-and-when", "swe-agent")
_LABEL_KEYS = ("run_id", "step", "agent", "reason")


class _Plan(NamedTuple):
    path: Path
    fmt: str | None  # None: nothing to import (an empty file)


@cli.command("import")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@store_option
@json_option
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default=None,
              help="agentlab's portable JSONL file; a tau-bench results file (JSON array); "
              "a SWE-agent trajectory (.traj) or a folder of them; Who&When group-chat "
              "failures: one run file (.json or .json.gz) or a folder of them; or "
              "OpenTelemetry spans as OTLP JSON (one trace a run). Told from the content "
              "when left out.")
@click.option("--domain", default=None,
              help="tau-bench only: the domain the runs come from (airline, retail...); "
              "read from the file's tool names when left out.")
@click.option("--model", default=None,
              help="tau-bench and swe-agent: the agent's model, where the file does not say "
              "it (a .traj's replay_config does; tau-bench's file names do: "
              "MODEL-DOMAIN.json, STRATEGY-MODEL-...json).")
@click.option("--labels-out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              metavar="FILE",
              help="who-and-when only: also write the human culprit labels (run_id, step, "
              "agent, reason), one JSON object a line, for `agentlab eval-attribution`.")
@wrap_errors
def import_cmd(paths: tuple[Path, ...], store_url: str | None, as_json: bool,
               fmt: str | None, domain: str | None, model: str | None,
               labels_out: Path | None) -> None:
    """Import runs from files or folders: agentlab's portable JSONL, tau-bench, SWE-agent,
    Who&When or OTLP (told from the content); each file all or nothing.

    Re-importing a run already stored is a no-op. A folder holds SWE-agent .traj files or
    Who&When .json files (its subfolders too). Several PATHs are imported in turn: one that
    fails is reported, the others still go in, and the command exits 1.
    """
    if labels_out is not None and len(paths) > 1:
        fail("--labels-out writes the labels of one Who&When PATH (a file or a folder); "
             f"got {len(paths)} PATHs")
    failed: list[tuple[Path, str]] = []
    plans: list[_Plan] = []
    for path in paths:
        try:
            plans.append(_plan(path, fmt, labels_out, as_json))
        except AgentlabError as exc:
            if len(paths) == 1:
                raise
            failed.append(_report(path, exc))
    imported: list[str] = []
    skipped: list[str] = []
    if any(p.fmt is not None for p in plans):
        with open_cli_store(store_url, create=True) as store:
            known = _stored_ids(store)  # once: each import adds what it stored
            for plan in plans:
                if plan.fmt is None:
                    continue
                try:
                    new, old = _import_path(plan, store, known, domain=domain, model=model,
                                            labels_out=labels_out, as_json=as_json)
                except (AgentlabError, OSError) as exc:
                    if len(paths) == 1:
                        raise
                    failed.append(_report(plan.path, exc))
                    continue
                imported += new  # new once: ``known`` takes them
                skipped += old
                if not as_json:
                    _echo_runs(plan.path, new, old)
    new_ids = set(imported)  # a run in two PATHs: imported by one, skipped by the other
    skipped = [i for i in dict.fromkeys(skipped) if i not in new_ids]
    if as_json:
        echo_json({"imported": imported, "skipped": skipped,
                   "failed": [{"path": str(p), "error": e} for p, e in failed]})
    elif len(paths) > 1:
        click.echo(f"{len(imported)} run(s) imported, {len(skipped)} already stored, from "
                   f"{len(paths) - len(failed)} of {len(paths)} PATHs", err=True)
    if failed:
        fail(f"{len(failed)} of {len(paths)} PATHs could not be imported: "
             + ", ".join(str(p) for p, _ in failed))


def _plan(path: Path, fmt: str | None, labels_out: Path | None, as_json: bool) -> _Plan:
    """What to read ``path`` as: its format, or None for an empty file; a typed error when
    the format cannot be told or does not fit the path."""
    # An empty file (or only whitespace, plain or gzip: a few bytes) imports nothing,
    # whatever its format; anything larger is left to the importer to read once.
    if path.is_file() and path.stat().st_size <= 64:
        from agentlab.integrations._files import read_source

        if not read_source(path).strip():
            if not as_json:
                click.echo(f"0 runs: {path} is empty, nothing to import")
            return _Plan(path, None)
    if fmt is None:
        from agentlab.integrations import detect_format

        fmt = detect_format(path)
        if not as_json:
            click.echo(f"reading {path} as --format {fmt}", err=True)
    if labels_out is not None and fmt != "who-and-when":
        fail(f"--labels-out writes Who&When labels; it needs --format who-and-when, "
             f"not --format {fmt}")
    if fmt not in _FOLDER_FORMATS and path.is_dir():
        raise ImportFormatError(
            f"{path} is a folder; --format {fmt} reads one file (only --format "
            "who-and-when and --format swe-agent read a folder)", file=str(path))
    return _Plan(path, fmt)


def _report(path: Path, exc: Exception) -> tuple[Path, str]:
    """Say on stderr why ``path`` was not imported; the (path, reason) pair."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    click.echo(f"agentlab: error: {reason}", err=True)
    return path, reason


def _echo_runs(path: Path, imported: list[str], skipped: list[str]) -> None:
    for rid in imported:
        click.echo(f"imported  {rid}")
    for rid in skipped:
        click.echo(f"skipped   {rid} (already stored, identical)")
    if not imported and not skipped:
        click.echo(f"0 runs: {path} holds no run to import")


def _import_path(plan: _Plan, store: SqlStore, known: set[str], *, domain: str | None,
                 model: str | None, labels_out: Path | None, as_json: bool
                 ) -> tuple[list[str], list[str]]:
    """Import one PATH in its format: (imported, skipped) run ids, told apart by ``known``
    (the ids stored before it), which takes the new ones."""
    path, fmt = plan
    with progress_bar(f"importing {fmt} runs from {path.name}", as_json) as tick:
        if fmt == "agentlab":
            result = store.import_runs(path)
            known.update(result.imported)
            return result.imported, result.skipped
        from agentlab.integrations import import_otlp, import_swe_agent, import_tau_bench

        ids = (_import_who_and_when(path, store, labels_out, tick) if fmt == "who-and-when"
               else import_tau_bench(path, store, domain=domain, model=model, progress=tick)
               if fmt == "tau-bench" else
               import_swe_agent(path, store, model=model, progress=tick)
               if fmt == "swe-agent" else import_otlp(path, store))
    ids = list(dict.fromkeys(ids))  # equal files are one run
    new = [i for i in ids if i not in known]
    known.update(new)
    return new, [i for i in ids if i not in new]


def _stored_ids(store: SqlStore) -> set[str]:
    """The ids of the runs stored (one column read, no summaries built)."""
    from agentlab.store import run_columns

    return set(run_columns(store, columns=("run_id",))["run_id"])


def _import_who_and_when(path: Path, store: SqlStore, labels_out: Path | None,
                         progress: Callable[[int, int], None]) -> list[str]:
    """Import the Who&When runs at ``path``: their ids. With ``labels_out``,
    their labels are written first to ``FILE.partial`` (so an unwritable target fails before
    anything is imported) and renamed to ``FILE`` once the runs are stored; on any failure
    the partial file is removed and an existing ``FILE`` left as it was."""
    import orjson

    from agentlab.integrations import import_who_and_when, who_and_when_labels

    tmp = None if labels_out is None else labels_out.with_name(labels_out.name + ".partial")
    try:
        written: set[str] = set()
        if tmp is not None:
            with tmp.open("wb") as fh:
                for label in who_and_when_labels(path):
                    if label["run_id"] not in written:  # equal files are one run
                        written.add(label["run_id"])
                        fh.write(orjson.dumps({k: label.get(k) for k in _LABEL_KEYS}) + b"\n")
        ids = import_who_and_when(path, store, progress=progress)
        if tmp is not None and labels_out is not None:
            tmp.replace(labels_out)
            click.echo(f"wrote {len(written)} label(s) to {labels_out}", err=True)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):  # report the first error, not this one
                tmp.unlink(missing_ok=True)
        raise
    return ids
