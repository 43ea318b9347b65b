"""What every command shares: the store option, JSON output, and one-line errors."""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import orjson

from agentlab.errors import AgentlabError, NewStoreWarning

if TYPE_CHECKING:  # the store (and SQLAlchemy) load when a command opens one
    from agentlab.store import SqlStore

__all__ = [
    "echo_json",
    "echo_report",
    "fail",
    "json_option",
    "open_cli_store",
    "progress_bar",
    "store_location",
    "store_option",
    "wrap_errors",
]

F = TypeVar("F", bound=Callable[..., Any])

# No click default and no click envvar: open_store() resolves a missing --store through
# agentlab.config (AGENTLAB_STORE, then [tool.agentlab] store, then the nearest agentlab.db
# here or above, then ./agentlab.db), so the
# CLI and the library pick the same store by one mechanism.
store_option = click.option(
    "--store",
    "store_url",
    default=None,
    show_default="env AGENTLAB_STORE, else [tool.agentlab] store in pyproject.toml, "
    "else the nearest agentlab.db in this folder or above, else ./agentlab.db",
    metavar="URL",
    help="Store to use: a SQLite file path or sqlite:///PATH, or postgresql://USER@HOST/DB.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (pydantic models and datetimes included)."""
    data = orjson.dumps(
        value,
        default=lambda v: v.model_dump(mode="json") if hasattr(v, "model_dump") else str(v),
        option=orjson.OPT_INDENT_2,
    )
    click.echo(data.decode())


def echo_report(report: Any, as_json: bool) -> None:
    """Print a result object: its ``to_dict()`` as JSON, or its ``to_text()``."""
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.to_text())


@contextmanager
def progress_bar(label: str, quiet: bool, *, at_least: int = 50
                 ) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for long work (shown from ``at_least`` steps, never with
    --json); the callback takes (done, total)."""
    bar: Any = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if quiet or total < at_least:
            return
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield tick
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)



def fail(message: str, code: int = 1) -> NoReturn:
    """Stop with a one-line reason on stderr and a non-zero exit."""
    click.echo(f"agentlab: error: {message}", err=True)
    sys.exit(code)


def _first_line(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return fallback


def _dbapi_error(exc: Exception) -> bool:
    """Whether ``exc`` is SQLAlchemy's wrapper of a driver error (only possible once a
    command has loaded SQLAlchemy, by opening a store)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)


def _driver_error(exc: Exception) -> bool:
    """Whether ``exc`` is a database error: SQLAlchemy's wrapper or a raw driver error (the
    store runs some statements on the driver cursor directly)."""
    if _dbapi_error(exc) or isinstance(exc, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")  # only loaded when a PostgreSQL store was opened
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _database_message(exc: Exception) -> str:
    orig = exc.orig if _dbapi_error(exc) and exc.orig is not None else exc  # type: ignore[attr-defined]
    return (f"database error ({type(orig).__name__}): "
            f"{_first_line(str(orig), 'no details from the driver')}")


def wrap_errors(fn: F) -> F:
    """Turn agentlab, file and database errors into a one-line reason and exit status 1.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentlabError as exc:
            fail(_first_line(str(exc), type(exc).__name__))
        except BrokenPipeError:
            # The reader went away (`agentlab show RUN | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except Exception as exc:
            if not _driver_error(exc):
                raise
            fail(_database_message(exc))
        return None

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_cli_store(url: str | None, *, create: bool,
                   announce: bool = True) -> Iterator[SqlStore]:
    """Open the store for one command; ``url=None`` resolves it through agentlab.config.

    Read-only commands pass ``create=False`` so a mistyped ``--store`` is an error, not a new
    empty database. ``announce=False`` keeps quiet about creating a new store (a command
    whose purpose is to build one).
    """
    from agentlab.store import open_store

    with warnings.catch_warnings():
        if not announce:
            warnings.simplefilter("ignore", NewStoreWarning)
        store = open_store(url, create=create)
    try:
        yield store
    finally:
        store.close()


def store_location(store: SqlStore) -> str:
    """Where ``store`` lives, as a user would type it: a file path, or a URL without password."""
    from sqlalchemy.engine import make_url

    url = make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``12h`` or ``30d`` as a positive timedelta; else a one-line error
    naming ``option``."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        fail(f"{option} {text!r} is not a duration; write a whole number and a unit: "
             "90s, 30m, 12h or 30d")
    amount = int(m.group(1))
    if amount == 0:
        fail(f"{option} {text!r} is zero; give a positive duration")
    try:
        return timedelta(**{_UNITS[m.group(2)]: amount})
    except OverflowError:
        fail(f"{option} {text!r} is too long; give at most a few years, e.g. 365d")


def when(dt: datetime | None, never: str = "never") -> str:
    return never if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def short_json(value: Any, width: int) -> str:
    """Compact JSON of a value, cut to ``width`` characters."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def utc_now() -> datetime:
    return datetime.now(UTC)
