"""Governance commands: grants (issue, list, lint, check, revoke) and approvals (list,
approve, reject, edit). Thin front ends over :mod:`agentlab.identity` and
:class:`~agentlab.approval.ApprovalManager`; every decision made here is recorded with
channel ``cli``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from agentlab.approval import ApprovalManager
from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    parse_duration,
    store_option,
    wrap_errors,
)
from agentlab.errors import ApprovalError, RunNotFoundError
from agentlab.identity import (
    ToolUse,
    fingerprint,
    issue_grant,
    key_path,
    lint_grants,
    resolve_secret,
    revoke_grant,
)
from agentlab.model import ApprovalRequest, Grant
from agentlab.store import SqlStore

__all__: list[str] = []  # commands register themselves on ``cli``

CHANNEL = "cli"
_CALL_KINDS = ["tool_call", "tool_intent"]


# -- helpers ----------------------------------------------------------------------------------

def _when(dt: datetime | None, never: str = "never") -> str:
    return never if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _short(value: Any, width: int) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    all_rows = [tuple(head), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in all_rows)


def _now() -> datetime:
    return datetime.now(UTC)


def _key_source() -> str:
    return "AGENTLAB_KEY" if os.environ.get("AGENTLAB_KEY") is not None else str(key_path())


def _calls_by_grant(store: SqlStore) -> dict[str, dict[tuple[str, str], Any]]:
    """Every recorded call made through a grant, once per call (a side-effecting call's
    intent and result share a ``call_id``), as ``{grant: {(run, call): (event, agent)}}``."""
    out: dict[str, dict[tuple[str, str], Any]] = {}
    for run in store.runs():
        for ev in store.events(run.run_id, kinds=_CALL_KINDS):
            grant = getattr(ev, "grant", None)
            if not grant:
                continue
            call = getattr(ev, "call_id", None) or ev.id
            calls = out.setdefault(grant, {})
            # The result (written after the intent) wins: it says how the call ended.
            calls[(run.run_id, call)] = (ev, run.agent_name)
    return out


def _grant_json(g: Grant, now: datetime) -> dict[str, Any]:
    return {**g.model_dump(mode="json"), "status": g.status(now)}


# -- grants -----------------------------------------------------------------------------------

@cli.command("grants")
@store_option
@json_option
@click.option("--lint", is_flag=True,
              help="Flag grants that give more than they should (broad scopes on side-effecting "
              "tools, grants shared by several agents, no expiry), judged from the calls "
              "recorded in the store; exit 1 if anything is flagged.")
@click.option("--check", "check_name", metavar="NAME",
              help="Resolve grant NAME's secret reference here, compare its fingerprint with "
              "the one stored at issue, and count the recorded calls made with each "
              "credential fingerprint. The secret is never printed.")
@wrap_errors
def grants_cmd(store_url: str | None, as_json: bool, lint: bool, check_name: str | None) -> None:
    """List grants: who may act, for whom, in which workflow, with which scopes.

    Shows each grant's status (active, expired or revoked), expiry and secret reference
    (env:NAME or file:PATH; never the secret). With --lint, flag risky grants; with --check
    NAME, say which credential made each recorded call through NAME.
    """
    if lint and check_name is not None:
        fail("--lint and --check answer different questions; give one of them")
    with open_cli_store(store_url, create=False) as store:
        if lint:
            _lint(store, as_json)
        elif check_name is not None:
            _check(store, check_name, as_json)
        else:
            _list(store.grants(), as_json)


def _list(found: Sequence[Grant], as_json: bool) -> None:
    now = _now()
    if as_json:
        echo_json([_grant_json(g, now) for g in found])
        return
    if not found:
        click.echo("no grants in this store (issue one with `agentlab grant NAME ...`)")
        return
    click.echo(_table(
        ("NAME", "PRINCIPAL", "OWNER", "WORKFLOW", "SCOPES", "STATUS", "EXPIRES", "SECRET"),
        ((g.name, g.principal, g.owner, g.workflow, ",".join(g.scopes), g.status(now),
          _when(g.expires_at), g.secret_ref or "-") for g in found),
    ))


def _lint(store: SqlStore, as_json: bool) -> None:
    uses = {
        ToolUse(tool=ev.tool, grant=grant, side_effect=bool(getattr(ev, "side_effect", False)
                                                            or ev.kind == "tool_intent"),
                agent=agent)
        for grant, calls in _calls_by_grant(store).items()
        for ev, agent in calls.values()
    }
    findings = lint_grants(store.grants(), sorted(uses, key=repr))
    if as_json:
        echo_json({"findings": [{"grant": f.grant, "code": f.code, "message": f.message}
                                for f in findings]})
    elif findings:
        click.echo(_table(("GRANT", "FINDING", "WHAT TO DO"),
                          ((f.grant, f.code, f.message) for f in findings)))
    else:
        click.echo(f"no findings ({len(store.grants())} grants, {len(uses)} tool/grant uses "
                   "recorded)")
    if findings:
        fail(f"{len(findings)} grant finding(s); first: {findings[0].message}")


def _check(store: SqlStore, name: str, as_json: bool) -> None:
    grant = store.grant(name)
    if grant is None:
        fail(f"no grant named {name!r}; list them with `agentlab grants`")
    if grant.secret_ref is None:
        fail(f"grant {name} has no secret reference; there is no credential to check")
    if grant.secret_ref == "callable":
        fail(f"grant {name}'s secret comes from a callable in the agent's process; it cannot "
             "be resolved here (only env:NAME and file:PATH references can)")
    current = fingerprint(resolve_secret(grant.secret_ref))
    matches = None if grant.fingerprint is None else current == grant.fingerprint
    counts: dict[str | None, int] = {}
    for ev, _agent in _calls_by_grant(store).get(name, {}).values():
        counts[ev.credential] = counts.get(ev.credential, 0) + 1
    rows: list[dict[str, Any]] = [
        {"credential": fp, "calls": n, "current": fp is not None and fp == current,
         "issued": fp is not None and fp == grant.fingerprint}
        for fp, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))
    ]
    if as_json:
        echo_json({"grant": name, "secret_ref": grant.secret_ref, "key": _key_source(),
                   "fingerprint": current, "issued_fingerprint": grant.fingerprint,
                   "matches": matches, "calls": rows})
        return
    click.echo(f"grant    {name}   secret {grant.secret_ref}   key {_key_source()}")
    click.echo(f"now      {current[:16]}  (the secret as {grant.secret_ref} resolves here)")
    click.echo(f"issued   {(grant.fingerprint or '-')[:16]}")
    if matches is None:
        click.echo("match    unknown: the secret did not resolve when the grant was issued")
    else:
        click.echo("match    yes" if matches else
                   "match    NO: the secret changed since issue (rotated?), or this key is not "
                   "the one it was issued under")
    if not rows:
        click.echo("no recorded calls through this grant")
        return
    click.echo()
    click.echo(_table(("CREDENTIAL", "CALLS", "IS"), (
        ((r["credential"] or "-")[:16], str(r["calls"]), _which(r)) for r in rows)))


def _which(row: Mapping[str, Any]) -> str:
    """What a recorded credential fingerprint is: the secret now, the one issued, or other."""
    if row["credential"] is None:
        return "no secret"
    names = [w for w in ("current", "issued") if row[w]]
    return " and ".join(names) if names else "other"


@cli.command("grant")
@click.argument("name")
@store_option
@json_option
@click.option("--principal", required=True, metavar="AGENT",
              help="The agent that may act through the grant (its agent name).")
@click.option("--owner", required=True, help="The human or team the agent acts for.")
@click.option("--workflow", required=True, metavar="WF",
              help="The workflow (name or glob) the grant is valid in.")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="S",
              help="A scope pattern such as crm:read or jira:write:SUP-*; repeat for several.")
@click.option("--expires-in", metavar="DURATION",
              help="Lifetime: a whole number of days, hours or minutes (30d, 12h, 90m). "
              "Without it the grant never expires (which `agentlab grants --lint` flags).")
@click.option("--secret", metavar="REF",
              help="Where the credential is read at call time: env:VAR or file:PATH (never "
              "the secret itself). If it resolves now, its fingerprint is stored.")
@click.option("--by", "issued_by", metavar="NAME", help="Who issues the grant (recorded).")
@wrap_errors
def grant_cmd(name: str, store_url: str | None, as_json: bool, principal: str, owner: str,
              workflow: str, scopes: tuple[str, ...], expires_in: str | None,
              secret: str | None, issued_by: str | None) -> None:
    """Issue a grant: agent AGENT may act for OWNER in workflow WF with the given scopes.

    Grants are never edited: to change one, revoke it and issue another under a new name.

    \b
    Example:
      agentlab grant jira-writer --principal triage-bot --owner support-team \\
        --workflow support-triage --scope 'jira:write:SUP-*' --expires-in 30d \\
        --secret env:JIRA_TOKEN --by ana
    """
    lifetime = parse_duration(expires_in, "--expires-in") if expires_in is not None else None
    with open_cli_store(store_url, create=True) as store:
        g = issue_grant(store, name, principal=principal, owner=owner, workflow=workflow,
                        scopes=scopes, expires_in=lifetime, secret=secret, issued_by=issued_by)
    if as_json:
        echo_json(_grant_json(g, _now()))
        return
    click.echo(f"issued {g.name}: {g.principal} for {g.owner} in {g.workflow}, scopes "
               f"{', '.join(g.scopes)}, expires {_when(g.expires_at)}")
    if g.secret_ref is not None:
        click.echo(f"secret {g.secret_ref}: " + (
            f"fingerprint {g.fingerprint[:16]} stored" if g.fingerprint else
            "does not resolve here; it is resolved (and checked) where the agent runs"))


@cli.command("revoke")
@click.argument("name")
@store_option
@json_option
@click.option("--by", metavar="NAME", help="Who revokes the grant (recorded).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@wrap_errors
def revoke_cmd(name: str, store_url: str | None, as_json: bool, by: str | None,
               reason: str | None) -> None:
    """Revoke grant NAME: every later call through it is refused, in every process.

    Revoking an already revoked grant changes nothing and says when it was revoked.
    """
    with open_cli_store(store_url, create=False) as store:
        before = store.grant(name)
        g = revoke_grant(store, name, by=by, reason=reason)
    if as_json:
        echo_json(_grant_json(g, _now()))
        return
    again = before is not None and before.revoked_at is not None
    click.echo(f"{'already revoked' if again else 'revoked'} {g.name} at {_when(g.revoked_at)}"
               + (f" by {g.revoked_by}" if g.revoked_by else "")
               + (f": {g.revoke_reason}" if g.revoke_reason else ""))


# -- approvals --------------------------------------------------------------------------------

def _run_id(store: SqlStore, run: str | None) -> str | None:
    """A run id given in full or as a prefix (a request may also name a run not stored)."""
    if run is None:
        return None
    try:
        return store.resolve(run)
    except RunNotFoundError:
        return run


def _state(req: ApprovalRequest, now: datetime) -> str:
    if req.status == "pending":
        return "expired (undecided)" if req.expires_at <= now else "pending"
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
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no " + ("approval requests" if show_all else "pending approval requests")
                   + (f" for run {run}" if run else ""))
        return
    now = _now()
    click.echo(_table(
        ("ID", "RUN", "TOOL", "ARGUMENTS", "GRANT", "RULE", "REQUESTED", "EXPIRES", "STATUS"),
        ((r.id[:12], r.run_id[:12], r.tool, _short(r.arguments, 40), r.grant or "-",
          r.rule or "-", _when(r.requested_at), _when(r.expires_at), _state(r, now))
         for r in found),
    ))


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
            lines.append(f"- {key}: {_short(before[key], 60)}")
        elif key not in before:
            lines.append(f"+ {key}: {_short(after[key], 60)}")
        elif before[key] != after[key]:
            lines.append(f"~ {key}: {_short(before[key], 40)} -> {_short(after[key], 40)}")
    return lines


def _approve_all(store: SqlStore, by: str, run: str | None, reason: str | None,
                 as_json: bool) -> None:
    manager = ApprovalManager(store)
    pending = manager.pending(run_id=_run_id(store, run))
    # Said in the reason, which the decision MAC covers: the record never reads as if each
    # request had been looked at on its own.
    note = "bulk approval (--all-pending)" + (f": {reason}" if reason else "")
    decided: list[ApprovalRequest] = []
    refused: list[tuple[str, str]] = []
    for req in pending:
        try:
            decided.append(manager.approve(req.id, by=by, channel=CHANNEL, reason=note))
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
@wrap_errors
def approve_cmd(request_id: str | None, store_url: str | None, as_json: bool, by: str,
                reason: str | None, all_pending: bool, run: str | None) -> None:
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
            _approve_all(store, by, run, reason, as_json)
        return
    if run is not None:
        fail("--run only narrows --all-pending; to approve one request give its ID")
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        req = ApprovalManager(store).approve(rid, by=by, channel=CHANNEL, reason=reason)
    if as_json:
        echo_json(req)
    else:
        click.echo(_decided_line(req))


@cli.command("reject")
@click.argument("request_id", metavar="ID")
@store_option
@json_option
@click.option("--as", "by", required=True, metavar="NAME",
              help="Who rejects (recorded with the decision and covered by its MAC).")
@click.option("--reason", metavar="TEXT",
              help="Why the call must not run (required; the agent's run records it).")
@wrap_errors
def reject_cmd(request_id: str, store_url: str | None, as_json: bool, by: str,
               reason: str | None) -> None:
    """Reject the pending tool call ID: it does not run, and the run records why.

    ID may be a unique prefix; --reason is required.
    """
    if reason is None or not reason.strip():
        fail("a rejection needs a reason: add --reason TEXT (the run records it)")
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        req = ApprovalManager(store).reject(rid, by=by, channel=CHANNEL, reason=reason)
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
              f"{type(value).__name__} {_short(value, 30)}")
    return value


@cli.command("edit")
@click.argument("request_id", metavar="ID")
@store_option
@json_option
@click.option("--args", "args_json", required=True, metavar="JSON",
              help="The arguments the tool should run with, as one JSON object (all of them, "
              "not only the changed ones).")
@click.option("--as", "by", required=True, metavar="NAME",
              help="Who edits (recorded with the decision and covered by its MAC).")
@click.option("--reason", metavar="TEXT", help="Why (recorded).")
@wrap_errors
def edit_cmd(request_id: str, store_url: str | None, as_json: bool, args_json: str, by: str,
             reason: str | None) -> None:
    """Approve the pending tool call ID with changed arguments; prints what changed.

    The agent checks the new arguments against the tool's signature before running it once
    with them. ID may be a unique prefix.

    \b
    Example:
      agentlab edit 0190a1b2c3d4 --args '{"project": "SUP", "priority": "high"}' --as ana
    """
    arguments = _parse_arguments(args_json)
    rid = _check_id(request_id)
    with open_cli_store(store_url, create=False) as store:
        req = ApprovalManager(store).edit(rid, arguments, by=by, channel=CHANNEL,
                                          reason=reason)
    changes = _argument_diff(req.arguments, req.edited_arguments or {})
    if as_json:
        echo_json({"request": req, "changes": changes})
        return
    click.echo(_decided_line(req))
    for line in changes or ["(no argument changed)"]:
        click.echo(f"  {line}")
