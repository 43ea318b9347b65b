"""Approver commands: add, list and revoke who may decide approval requests. Thin front ends
over :mod:`agentlab.approval` (its ``add_approver``, ``revoke_approver`` and history).
"""

from __future__ import annotations

from typing import Any

import click

from agentlab.approval import (
    ApproverState,
    add_approver,
    approver_history,
    approver_states,
    revoke_approver,
)
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    json_option,
    open_cli_store,
    store_option,
    when,
    wrap_errors,
)
from agentlab.cli._render import text_table
from agentlab.model import ApproverChange

__all__: list[str] = []  # commands register themselves on ``cli``


def _state_json(s: ApproverState) -> dict[str, Any]:
    return {"name": s.name, "status": s.status, "groups": list(s.groups),
            "public_key": s.public_key, "since": s.since.isoformat() if s.since else None,
            "revoked_at": s.revoked_at.isoformat() if s.revoked_at else None,
            "revoked_by": s.revoked_by, "revoke_reason": s.revoke_reason}


def _change_text(c: ApproverChange) -> str:
    if c.action == "add":
        parts = [f"added to {c.group}" if c.group else "added"]
        if c.public_key:
            parts.append(f"new key {c.public_key[:16]}")
        return ", ".join(parts)
    return f"removed from {c.group}" if c.group else "revoked"


@cli.group("approver")
def approver_group() -> None:
    """Who may decide approval requests: approvers, their groups and their keys.

    A policy rule's approvers= may name people and groups; a group's members are the
    approvers added to it here. An approver given a key must sign each decision with it
    (`agentlab approve ID --as NAME --key-from env:VAR`), and the agent checks the signature
    before the call runs. Every change is kept, with who made it and when.
    """


@approver_group.command("add")
@click.argument("name")
@store_option
@json_option
@click.option("--group", metavar="GROUP",
              help="Add NAME to this approver group (a rule's approvers= may name it).")
@click.option("--issue-key", is_flag=True,
              help="Issue NAME a new approver key (replacing any key they held). It is "
              "printed once and never stored: the store keeps only its public half, which "
              "checks signatures but cannot make one. Give it to NAME to keep in a secret "
              "file or variable.")
@click.option("--by", metavar="NAME", help="Who makes the change (recorded).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@wrap_errors
def approver_add_cmd(name: str, store_url: str | None, as_json: bool, group: str | None,
                     issue_key: bool, by: str | None, reason: str | None) -> None:
    """Add NAME as an approver: to a group, with a key, or both.

    Adding a revoked approver again takes them back (their old key stays void).

    \b
    Example:
      agentlab approver add ana --group support-leads --issue-key --by lee
    """
    with open_cli_store(store_url, create=True) as store:
        added = add_approver(store, name, group=group, issue_key=issue_key, by=by,
                             reason=reason)
    c = added.change
    if as_json:
        echo_json({"change": c, "key": added.key})
        return
    click.echo(f"{c.approver}: {_change_text(c)} at {when(c.at)}"
               + (f" by {c.by}" if c.by else ""))
    if added.key is not None:
        click.echo(f"key (shown once, not stored; give it to {c.approver}):")
        click.echo(added.key)
        click.echo(f"{c.approver} decides with: agentlab approve ID --as {c.approver} "
                   "--key-from file:PATH (or env:VAR)")


@approver_group.command("list")
@store_option
@json_option
@click.option("--history", is_flag=True,
              help="The history of changes instead: every addition, key and revocation, "
              "oldest first, with who made it and when.")
@click.option("--group", metavar="GROUP", help="Only this group's members (or its history).")
@wrap_errors
def approver_list_cmd(store_url: str | None, as_json: bool, history: bool,
                      group: str | None) -> None:
    """List approvers: their groups, whether they hold a key, and their standing.

    A KEY column shows the start of the key's public half; '-' means the approver has no key
    and decisions in their name are not signed.
    """
    with open_cli_store(store_url, create=False) as store:
        if history:
            changes = approver_history(store, group=group)
            states: list[ApproverState] = []
        else:
            changes = []
            states = [s for s in approver_states(store) if group is None or group in s.groups]
    if history:
        if as_json:
            echo_json(changes)
        elif not changes:
            click.echo("no approver changes recorded" + (f" for group {group}" if group else ""))
        else:
            click.echo(text_table(("SEQ", "WHEN", "APPROVER", "CHANGE", "BY", "REASON"), (
                (str(c.seq), when(c.at), c.approver, _change_text(c), c.by or "-",
                 c.reason or "-") for c in changes)))
        return
    if as_json:
        echo_json([_state_json(s) for s in states])
    elif not states:
        click.echo("no approvers" + (f" in group {group}" if group else "")
                   + " (add one with `agentlab approver add NAME --group GROUP`)")
    else:
        click.echo(text_table(("NAME", "STATUS", "GROUPS", "KEY", "SINCE"), (
            (s.name, s.status, ",".join(s.groups) or "-",
             s.public_key[:16] if s.public_key else "-",
             when(s.since) if s.active and s.since else
             (f"revoked {when(s.revoked_at)}" if s.revoked_at else "-"))
            for s in states)))


@approver_group.command("revoke")
@click.argument("name")
@store_option
@json_option
@click.option("--group", metavar="GROUP",
              help="Only take NAME out of this group; without it NAME is revoked altogether: "
              "out of every group, key void, every later decision refused.")
@click.option("--by", metavar="NAME", help="Who revokes (recorded).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@wrap_errors
def approver_revoke_cmd(name: str, store_url: str | None, as_json: bool, group: str | None,
                        by: str | None, reason: str | None) -> None:
    """Revoke approver NAME, or take them out of one group.

    Takes effect in every process at once: a decision NAME made that has not run yet is
    refused by the agent before the call runs.
    """
    with open_cli_store(store_url, create=False) as store:
        c = revoke_approver(store, name, group=group, by=by, reason=reason)
    if as_json:
        echo_json(c)
        return
    click.echo(f"{c.approver}: {_change_text(c)} at {when(c.at)}"
               + (f" by {c.by}" if c.by else "") + (f": {c.reason}" if c.reason else ""))
