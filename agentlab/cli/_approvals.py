"""Approval commands: list, approve (one, or all pending), reject and edit. Thin front ends
over :class:`~agentlab.approval.ApprovalManager`; every decision made here is recorded with
channel ``cli``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click

from agentlab.approval import ApprovalManager
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    short_json,
    store_option,
    utc_now,
    when,
    wrap_errors,
)
from agentlab.cli._render import text_table
from agentlab.errors import ApprovalError, RunNotFoundError
from agentlab.identity import resolve_secret
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore

__all__: list[str] = []  # commands register themselves on ``cli``

CHANNEL = "cli"

key_from_option = click.option(
    "--key-from", "key_from", metavar="REF",
    help="Where your approver key is: env:VAR or file:PATH (never the key itself). Needed "
    "when the store holds a key for --as NAME (`agentlab approver add NAME --issue-key`): "
    "the decision is signed with it, and the agent checks the signature before the call "
    "runs.")


def _key(key_from: str | None) -> str | None:
    return resolve_secret(key_from) if key_from is not None else None


# -- approvals --------------------------------------------------------------------------------

def _run_id(store: SqlStore, run: str | None) -> str | None:
    """A run id given in full or as a prefix (a request may also name a run not stored)."""
    if run is None:
        return None
    try:
        return store.resolve(run)
    except RunNotFoundError:
        return run


def _state(req: ApprovalRequest, now: datetime, abandoned: frozenset[str] = frozenset()) -> str:
    if req.status == "pending":
        if req.expires_at <= now:
            return "expired (undecided)"
        return "pending, orphaned (run abandoned)" if req.run_id in abandoned else "pending"
    if req.decided_by:
        return f"{req.status} by {req.decided_by} via {req.channel}"
    return req.status


@cli.command("approvals")
@store_option
@json_option
@click.option("--all", "show_all", is_flag=True,
              help="Every request, decided or not (default: only pending ones).")
@click.option("--run", "run", metavar="RUN", help="Only requests of this run (id or prefix).")
@wrap_errors
def approvals_cmd(store_url: str | None, as_json: bool, show_all: bool, run: str | None) -> None:
    """List approval requests waiting for a human (every request with --all).

    Each row shows the request id (answer with `agentlab approve ID --as NAME`, `reject` or
    `edit`; a unique prefix is enough), its run, tool, arguments, grant, the policy rule that
    asked, and when it was requested and expires.
    """
    with open_cli_store(store_url, create=False) as store:
        found = store.approvals(status=None if show_all else "pending",
                                run_id=_run_id(store, run))
        ids = {**store.short_ids((r.id for r in found), of="approvals"),
               **store.short_ids(r.run_id for r in found)} if found and not as_json else {}
        orphaned = frozenset(i for i in {r.run_id for r in found if r.status == "pending"}
                             if not as_json and _abandoned(store, i))
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no " + ("approval requests" if show_all else "pending approval requests")
                   + (f" for run {run}" if run else ""))
        return
    now = utc_now()
    click.echo(text_table(
        ("ID", "RUN", "TOOL", "ARGUMENTS", "GRANT", "RULE", "REQUESTED", "EXPIRES", "STATUS"),
        ((ids.get(r.id, r.id), ids.get(r.run_id, r.run_id), r.tool,
          short_json(r.arguments, 40), r.grant or "-", r.rule or "-", when(r.requested_at), when(r.expires_at), _state(r, now, orphaned))
         for r in found),
    ))
    if orphaned:
        shown = ", ".join(sorted(ids.get(i, i) for i in orphaned))
        click.echo(f"orphaned: the process of run(s) {shown} stopped renewing its lease; nothing makes an orphaned call until "
                   "`agentlab resume RUN` carries the run on (it finds your decision)")


def _abandoned(store: SqlStore, run_id: str) -> bool:
    try:
        return store.run(run_id, exact=True).abandoned
    except RunNotFoundError:  # a request whose run was not imported with it
        return False


def _check_id(request_id: str | None) -> str:
    # An empty prefix would match every request, and pick the only one if there is one.
    if request_id is None or not request_id.strip():
        fail("give the request ID (or a unique prefix of it); list them with "
              "`agentlab approvals`")
    return request_id.strip()


def _decided_line(req: ApprovalRequest) -> str:
    text = f"{req.status} {req.id} ({req.tool}, run {req.run_id[:12]}) by {req.decided_by} " \
           f"via {req.channel}"
    return text + (f": {req.reason}" if req.reason else "")


def _argument_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"- {key}: {short_json(before[key], 60)}")
        elif key not in before:
            lines.append(f"+ {key}: {short_json(after[key], 60)}")
        elif before[key] != after[key]:
            lines.append(f"~ {key}: {short_json(before[key], 40)} -> {short_json(after[key], 40)}")
    return lines


def _approve_all(store: SqlStore, by: str, run: str | None, reason: str | None,
                 as_json: bool, key: str | None) -> None:
    manager = ApprovalManager(store)
    pending = manager.pending(run_id=_run_id(store, run))
    # Said in the reason, which the decision MAC covers: the record never reads as if each
    # request had been looked at on its own.
    note = "bulk approval (--all-pending)" + (f": {reason}" if reason else "")
    decided: list[ApprovalRequest] = []
    refused: list[tuple[str, str]] = []
    for req in pending:
        try:
            decided.append(manager.approve(req.id, by=by, channel=CHANNEL, reason=note,
                                           key=key))
        except ApprovalError as exc:  # expired or decided meanwhile: report it, go on
            refused.append((req.id, str(exc)))
    if as_json:
        echo_json({"approved": decided,
                   "not_approved": [{"id": i, "reason": why} for i, why in refused]})
    else:
        if not pending:
            click.echo("no pending approval requests" + (f" for run {run}" if run else ""))
        for r in decided:
            click.echo(_decided_line(r))
        for rid, why in refused:
            click.echo(f"not approved {rid}: {why}")
    if refused:
        fail(f"{len(refused)} of {len(pending)} request(s) could not be approved; first: "
              f"{refused[0][1]}")


@cli.command("approve")
@click.argument("request_id", metavar="ID", required=False)
@store_option
@json_option
@click.option("--as", "by", required=True, metavar="NAME",
              help="Who approves (recorded with the decision and covered by its MAC).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@click.option("--all-pending", is_flag=True,
              help="Approve every pending request (only --run's, if given) instead of one "
              "ID, after reviewing them with `agentlab approvals`. Each is recorded as your "
              "decision, with a reason saying it was a bulk approval.")
@click.option("--run", metavar="RUN", help="With --all-pending: only this run's requests.")
@key_from_option
@wrap_errors
def approve_cmd(request_id: str | None, store_url: str | None, as_json: bool, by: str,
                reason: str | None, all_pending: bool, run: str | None,
                key_from: str | None) -> None:
    """Approve the pending tool call ID: the waiting agent runs it exactly as shown, once.

    ID may be a unique prefix. The agent may wait in another process; it wakes within its
    poll interval. For calls that should not wait for a person at all, write a policy rule
    that allows them rather than approving in bulk from a script: then the record does not
    say a person decided.
    """
    if all_pending:
        if request_id is not None:
            fail("give an ID or --all-pending, not both")
        with open_cli_store(store_url, create=False) as store:
            _approve_all(store, by, run, reason, as_json, _key(key_from))
        return
    if run is not None:
        fail("--run only narrows --all-pending; to approve one request give its ID")
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        req = ApprovalManager(store).approve(rid, by=by, channel=CHANNEL, reason=reason,
                                             key=_key(key_from))
        abandoned = _abandoned(store, req.run_id)
    if as_json:
        echo_json(req)
    else:
        click.echo(_decided_line(req))
        if abandoned:
            click.echo(f"note: run {req.run_id} is abandoned (its process stopped); the "
                       f"call runs when `agentlab resume {req.run_id}` carries the run on")


@cli.command("reject")
@click.argument("request_id", metavar="ID")
@store_option
@json_option
@click.option("--as", "by", required=True, metavar="NAME",
              help="Who rejects (recorded with the decision and covered by its MAC).")
@click.option("--reason", metavar="TEXT",
              help="Why the call must not run (required; the agent's run records it).")
@key_from_option
@wrap_errors
def reject_cmd(request_id: str, store_url: str | None, as_json: bool, by: str,
               reason: str | None, key_from: str | None) -> None:
    """Reject the pending tool call ID: it does not run, and the run records why.

    ID may be a unique prefix; --reason is required.
    """
    if reason is None or not reason.strip():
        fail("a rejection needs a reason: add --reason TEXT (the run records it)")
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        req = ApprovalManager(store).reject(rid, by=by, channel=CHANNEL, reason=reason,
                                            key=_key(key_from))
    if as_json:
        echo_json(req)
    else:
        click.echo(_decided_line(req))


def _parse_arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
              "give an object, e.g. --args '{\"priority\": \"high\"}'")
    if not isinstance(value, dict):
        fail(f"--args must be a JSON object (the tool's arguments by name), not "
              f"{type(value).__name__} {short_json(value, 30)}")
    return value


@cli.command("edit")
@click.argument("request_id", metavar="ID")
@store_option
@json_option
@click.option("--args", "args_json", required=True, metavar="JSON",
              help="The arguments to change, as one JSON object; those left out keep the "
              "request's values (the output lists them).")
@click.option("--as", "by", required=True, metavar="NAME",
              help="Who edits (recorded with the decision and covered by its MAC).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@key_from_option
@wrap_errors
def edit_cmd(request_id: str, store_url: str | None, as_json: bool, args_json: str, by: str,
             reason: str | None, key_from: str | None) -> None:
    """Approve the pending tool call ID with changed arguments; prints what changed.

    Give only the arguments to change: the others keep the values the agent asked for (an
    edit that named only some would otherwise reach the tool without the rest). The agent
    checks the merged arguments against the tool's signature before running it once with
    them. ID may be a unique prefix.

    \b
    Example:
      agentlab edit 0190a1b2c3d4 --args '{"priority": "high"}' --as ana
    """
    given = _parse_arguments(args_json)
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        manager = ApprovalManager(store)
        asked = dict(store.approval(rid).arguments)
        kept = sorted(k for k in asked if k not in given)
        req = manager.edit(rid, {**asked, **given}, by=by, channel=CHANNEL, reason=reason,
                           key=_key(key_from))
    changes = _argument_diff(req.arguments, req.edited_arguments or {})
    if as_json:
        echo_json({"request": req, "changes": changes, "kept": kept})
        return
    click.echo(_decided_line(req))
    for line in changes or ["(no argument changed)"]:
        click.echo(f"  {line}")
    if kept:
        click.echo(f"  kept as asked: {', '.join(kept)}")
