"""Grants: issue, revoke, check a call against them, and lint them.

>>> issue_grant(store, "jira-writer", principal="triage-bot", owner="support-team",
...             workflow="support-triage", scopes=["jira:write:SUP-*"],
...             expires_in=timedelta(days=30), secret="env:JIRA_TOKEN")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from agentlab.errors import GrantError, SecretError
from agentlab.identity._keys import fingerprint
from agentlab.identity._scopes import is_broad, scope_matches, validate_scope
from agentlab.identity._secrets import SecretSource, describe_source, resolve_secret
from agentlab.model import Denial, Grant
from agentlab.store import RunStore

__all__ = [
    "GrantFinding",
    "ToolUse",
    "choose_grant",
    "issue_grant",
    "lint_grants",
    "revoke_grant",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def issue_grant(
    store: RunStore,
    name: str,
    *,
    principal: str,
    owner: str,
    workflow: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
    secret: SecretSource | None = None,
    issued_by: str | None = None,
    now: datetime | None = None,
) -> Grant:
    """Store a new grant. ``secret`` is a reference or callable, never the secret itself;
    when it resolves now, its fingerprint is kept so later calls can be checked against it."""
    if not _NAME.match(name):
        raise GrantError(
            f"grant name {name!r} is not usable: 1-200 letters, digits and ._:@- "
            "(starting with a letter or digit)"
        )
    if not principal or not owner or not workflow:
        raise GrantError("a grant needs a principal (the agent), an owner and a workflow")
    scope_list = tuple(validate_scope(s) for s in scopes)
    if not scope_list:
        raise GrantError(f"grant {name!r} has no scopes; give at least one, e.g. 'crm:read'")
    issued = _now(now)
    if expires_at is not None and expires_in is not None:
        raise GrantError("give expires_at or expires_in, not both")
    if expires_in is not None:
        expires_at = issued + expires_in
    if expires_at is not None and expires_at <= issued:
        raise GrantError(f"grant {name!r} would expire at {expires_at}, before it is issued")
    fp = None
    if secret is not None:
        try:
            fp = fingerprint(resolve_secret(secret))
        except SecretError:
            fp = None  # the secret may exist only where the agent runs; checked at call time
    grant = Grant(
        name=name, principal=principal, owner=owner, workflow=workflow, scopes=scope_list,
        issued_at=issued, issued_by=issued_by, expires_at=expires_at,
        secret_ref=describe_source(secret), fingerprint=fp,
    )
    store.add_grant(grant)
    return grant


def revoke_grant(store: RunStore, name: str, *, by: str | None = None,
                 reason: str | None = None, now: datetime | None = None) -> Grant:
    """Revoke a grant: every later call through it is refused, in every process."""
    found = store.grant(name)
    if found is None:
        raise GrantError(f"no grant named {name!r}; list them with `agentlab grants`")
    if found.revoked_at is None:
        at = _now(now)
        store.revoke_grant(name, at_us=int(at.timestamp() * 1_000_000), by=by, reason=reason)
    revoked = store.grant(name)
    assert revoked is not None
    return revoked


def _denial_for(grant: Grant, scope: str, principal: str, workflow: str,
                now: datetime) -> Denial | None:
    status = grant.status(now)
    if status == "revoked":
        return Denial(code="revoked", grant=grant.name,
                      reason=f"grant {grant.name} was revoked at {grant.revoked_at:%Y-%m-%d %H:%M:%S}"
                      f"{' by ' + grant.revoked_by if grant.revoked_by else ''}")
    if status == "expired":
        return Denial(code="expired", grant=grant.name,
                      reason=f"grant {grant.name} expired at {grant.expires_at:%Y-%m-%d %H:%M:%S}")
    if not fnmatchcase(principal, grant.principal):
        return Denial(code="principal", grant=grant.name,
                      reason=f"grant {grant.name} is for agent {grant.principal!r}, not {principal!r}")
    if not fnmatchcase(workflow, grant.workflow):
        return Denial(code="workflow", grant=grant.name,
                      reason=f"grant {grant.name} is for workflow {grant.workflow!r}, "
                      f"not {workflow!r}")
    if not any(scope_matches(p, scope) for p in grant.scopes):
        return Denial(code="scope", grant=grant.name,
                      reason=f"grant {grant.name} does not allow {scope} "
                      f"(it allows {', '.join(grant.scopes)})")
    return None


_SPECIFICITY = {"revoked": 0, "expired": 1, "principal": 2, "workflow": 3, "scope": 4}


def choose_grant(grants: Sequence[Grant], scope: str, *, principal: str, workflow: str,
                 now: datetime | None = None) -> tuple[Grant | None, Denial | None]:
    """The first of ``grants`` that allows this call, or the most telling reason none does.

    A grant whose scopes match but which is revoked, expired or bound elsewhere explains a
    refusal better than one that never covered the scope.
    """
    at = _now(now)
    denials: list[tuple[int, Denial]] = []
    for g in grants:
        denial = _denial_for(g, scope, principal, workflow, at)
        if denial is None:
            return g, None
        covers = any(scope_matches(p, scope) for p in g.scopes)
        denials.append((_SPECIFICITY[denial.code] if covers else 10, denial))
    if not denials:
        return None, Denial(code="no_grant",
                            reason=f"the run holds no grant; the call needs scope {scope}")
    denials.sort(key=lambda d: d[0])
    return None, denials[0][1]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool bound to a grant: from a tool's declaration or from recorded calls."""

    tool: str
    grant: str
    side_effect: bool
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class GrantFinding:
    """One thing the grant lint flags."""

    grant: str
    code: Literal["broad-scope-on-side-effect", "shared-grant", "no-expiry"]
    message: str


def lint_grants(grants: Iterable[Grant], uses: Iterable[ToolUse] = ()) -> list[GrantFinding]:
    """Flag grants that give an agent more than it should hold.

    A wildcard or admin-like scope on a grant that a side-effecting tool uses; a grant whose
    principal is a pattern or which several agents used; an active grant with no expiry.
    """
    by_grant: dict[str, list[ToolUse]] = {}
    for use in uses:
        by_grant.setdefault(use.grant, []).append(use)
    out: list[GrantFinding] = []
    for g in grants:
        if g.revoked_at is not None:
            continue
        used = by_grant.get(g.name, [])
        broad = [s for s in g.scopes if is_broad(s)]
        acting = sorted({u.tool for u in used if u.side_effect})
        if broad and acting:
            out.append(GrantFinding(
                g.name, "broad-scope-on-side-effect",
                f"{g.name} has broad scope {', '.join(broad)} and side-effecting tools use it "
                f"({', '.join(acting)}); give those tools a grant with narrow scopes",
            ))
        agents = sorted({u.agent for u in used if u.agent})
        if any(c in g.principal for c in "*?[") or len(agents) > 1:
            who = ", ".join(agents) if len(agents) > 1 else f"pattern {g.principal!r}"
            out.append(GrantFinding(
                g.name, "shared-grant",
                f"{g.name} is shared by several agents ({who}); issue one grant per agent so "
                "each call names who made it",
            ))
        if g.expires_at is None:
            out.append(GrantFinding(
                g.name, "no-expiry", f"{g.name} never expires; set expires_in when issuing it",
            ))
    return out
