"""The CLI reference (docs/cli-reference.md), generated from each command's ``--help``.

The help texts are the single source: this renders them as markdown, one section per command,
so the reference cannot drift from the code (a test compares the committed file with a fresh
rendering). Regenerate with::

    python -m agentlab.cli._reference > docs/cli-reference.md
"""

from __future__ import annotations

from collections.abc import Iterator

import click

__all__ = ["REGENERATE", "iter_commands", "render_reference"]

REGENERATE = "python -m agentlab.cli._reference > docs/cli-reference.md"
"""The command that rewrites the committed reference."""

_WIDTH = 100  # a fixed width, so the rendering does not depend on the terminal


def iter_commands(root: click.Command, name: str = "agentlab",
                  parent: click.Context | None = None
                  ) -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every command under ``root`` (``root`` first), depth first in name order, with its
    full name (``agentlab grants``) and a context to render its help in. Hidden commands
    are left out, as ``--help`` leaves them out."""
    settings = {**root.context_settings, "terminal_width": _WIDTH, "max_content_width": _WIDTH}
    ctx = root.context_class(root, info_name=name, parent=parent, **settings)
    yield ctx.command_path, root, ctx
    if isinstance(root, click.Group):
        for sub in sorted(root.list_commands(ctx)):
            cmd = root.get_command(ctx, sub)
            if cmd is not None and not cmd.hidden:
                yield from iter_commands(cmd, sub, ctx)


def render_reference(root: click.Command | None = None) -> str:
    """The markdown reference of ``root`` (default: the ``agentlab`` command)."""
    if root is None:
        from agentlab.cli import cli

        root = cli
    found = list(iter_commands(root))
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated from the commands' --help; do not edit. Regenerate with:",
        f"     {REGENERATE} -->",
        "",
        "The output of `--help` for every command, generated from the code. The narrative "
        "guide, with what each command is for and how they fit together, is "
        "[cli.md](cli.md).",
        "",
    ]
    lines += [f"- [`{path}`](#{_anchor(path)})" for path, _, _ in found[1:]]
    for path, cmd, ctx in found:
        lines += ["", f"## {path}", "", "```text", cmd.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, spaces to dashes."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


if __name__ == "__main__":
    click.echo(render_reference(), nl=False)
