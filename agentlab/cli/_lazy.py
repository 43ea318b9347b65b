"""A command group that imports a command's module only when that command is used.

``agentlab --help`` lists every command with its one-line help, and ``agentlab explain``
needs the analysis package but not the notebook lab or the demo: loading every module (and
with them SQLAlchemy, pydantic, the analysis) costs most of a second before anything
happens. The group knows each lazy command's module and one-line help from a table; the
module is imported (registering its commands on the group) on first use. A test checks the
table against the commands themselves, so the listed help cannot drift from the real one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """A :class:`click.Group` whose commands in ``lazy`` (name -> (module, short help)) are
    imported when first looked up."""

    def __init__(self, *args: object, lazy: Mapping[str, tuple[str, str]] | None = None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.load(cmd_name)
        return self.commands.get(cmd_name)

    def load(self, cmd_name: str) -> None:
        """Import the module that defines ``cmd_name`` (it registers itself on the group)."""
        module = self.lazy[cmd_name][0]
        importlib.import_module(module)
        if cmd_name not in self.commands:
            raise RuntimeError(f"{module} was expected to define the command {cmd_name!r}")

    def load_all(self) -> None:
        for name in self.lazy:
            if name not in self.commands:
                self.load(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, with the table's help for commands not loaded."""
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is not None:
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                # shortened as click shortens a loaded command's help
                stand_in = click.Command(name, help=self.lazy[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

