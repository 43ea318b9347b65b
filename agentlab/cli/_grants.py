"""Grant commands: issue, list, lint, check and revoke. Thin front ends over
:mod:`agentlab.identity` (the approval commands are in :mod:`agentlab.cli._approvals`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from agentlab.cli import cli
from agentlab.cli._common import (
    echo_json,
    fail,
    json_option,
    open_cli_store,
    parse_duration,
    store_option,
    utc_now,
    when,
    wrap_errors,
)
from agentlab.cli._render import text_table
from agentlab.identity import (
    ToolUse,
    fingerprint,
    issue_grant,
    key_path,
    lint_grants,
    resolve_secret,
    revoke_grant,
)
from agentlab.model import Grant
from agentlab.store import SqlStore

__all__: list[str] = []  # commands register themselves on ``cli``

CHANNEL = "cli"
_CALL_KINDS = ["tool_call", "tool_intent"]


# -- helpers ----------------------------------------------------------------------------------

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
    now = utc_now()
    if as_json:
        echo_json([_grant_json(g, now) for g in found])
        return
    if not found:
        click.echo("no grants in this store (issue one with `agentlab grant NAME ...`)")
        return
    click.echo(text_table(
        ("NAME", "PRINCIPAL", "OWNER", "WORKFLOW", "SCOPES", "STATUS", "EXPIRES", "SECRET"),
        ((g.name, g.principal, g.owner, g.workflow, ",".join(g.scopes), g.status(now),
          when(g.expires_at), g.secret_ref or "-") for g in found),
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
        click.echo(text_table(("GRANT", "FINDING", "WHAT TO DO"),
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
    click.echo(text_table(("CREDENTIAL", "CALLS", "IS"), (
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
        echo_json(_grant_json(g, utc_now()))
        return
    click.echo(f"issued {g.name}: {g.principal} for {g.owner} in {g.workflow}, scopes "
               f"{', '.join(g.scopes)}, expires {when(g.expires_at)}")
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
        echo_json(_grant_json(g, utc_now()))
        return
    again = before is not None and before.revoked_at is not None
    click.echo(f"{'already revoked' if again else 'revoked'} {g.name} at {when(g.revoked_at)}"
               + (f" by {g.revoked_by}" if g.revoked_by else "")
               + (f": {g.revoke_reason}" if g.revoke_reason else ""))
