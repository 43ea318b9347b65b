"""What the demo agent may do: its grants, their (fake) secrets, and the approval policy.

Three grants, one per credential, each as narrow as the tools need: ``crm-reader`` (the
CRM's API: accounts and plan entitlements), ``jira-writer`` (new issues in SUP and ENG only)
and ``reply-drafter`` (the helpdesk: read the ticket, set its priority, save the reply
draft). Their secrets are ``env:`` references; the demo puts throwaway tokens in its own
environment when they are missing, so the redaction of real-looking secrets can be seen.

The policy asks a human before a Jira issue is created, before a ticket's priority is
lowered and before a rollback closes an issue; the run's phase adds its floor (no side
effects while reading, a human's approval for every side effect while drafting).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agentlab.approval import Policy, Rule
from agentlab.demo._names import AGENT, TEAM, WORKFLOW
from agentlab.demo.systems import PRIORITY_RANK, ApiTokens
from agentlab.errors import StoreError
from agentlab.identity import issue_grant
from agentlab.model import Grant
from agentlab.store import RunStore

__all__ = [
    "GRANTS",
    "GRANT_LIFETIME",
    "TOKEN_ENV",
    "GrantSpec",
    "demo_policy",
    "demo_tokens",
    "ensure_grants",
    "lowers_priority",
]

TOKEN_ENV: dict[str, str] = {
    "crm": "AGENTLAB_DEMO_CRM_TOKEN",
    "jira": "AGENTLAB_DEMO_JIRA_TOKEN",
    "helpdesk": "AGENTLAB_DEMO_HELPDESK_TOKEN",
}
"""The environment variable holding each sample system's token."""

GRANT_LIFETIME = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """A grant the demo issues: its name, scopes and the system whose token it carries."""

    name: str
    scopes: tuple[str, ...]
    system: str

    @property
    def secret_ref(self) -> str:
        return f"env:{TOKEN_ENV[self.system]}"


GRANTS = (
    GrantSpec("crm-reader", ("crm:read", "entitlements:read"), "crm"),
    GrantSpec("jira-writer", ("jira:write:SUP-*", "jira:write:ENG-*"), "jira"),
    GrantSpec("reply-drafter", ("helpdesk:read", "helpdesk:priority", "helpdesk:draft"),
              "helpdesk"),
)


def demo_tokens() -> ApiTokens:
    """The sample systems' tokens, from the environment; a random demo-only token is put
    there for each one that is missing (so a grant's ``env:`` reference resolves)."""
    for system, env in TOKEN_ENV.items():
        os.environ.setdefault(env, f"demo-{system}-{secrets.token_hex(16)}")
    return ApiTokens(crm=os.environ[TOKEN_ENV["crm"]], jira=os.environ[TOKEN_ENV["jira"]],
                     helpdesk=os.environ[TOKEN_ENV["helpdesk"]])


def ensure_grants(store: RunStore) -> list[Grant]:
    """The demo's grants as stored, issuing those the store does not hold yet.

    A grant already there is used as it is, even revoked or expired: the demo's calls
    through it are then refused and recorded, which is what revocation is for.
    """
    demo_tokens()
    out = []
    for spec in GRANTS:
        found = store.grant(spec.name)
        if found is None:
            try:
                found = issue_grant(
                    store, spec.name, principal=AGENT, owner=TEAM, workflow=WORKFLOW,
                    scopes=spec.scopes, expires_in=GRANT_LIFETIME, secret=spec.secret_ref,
                    issued_by="agentlab demo",
                )
            except StoreError:  # issued meanwhile by another demo on the same store
                found = store.grant(spec.name)
                if found is None:
                    raise
        out.append(found)
    return out


def lowers_priority(arguments: Mapping[str, Any]) -> bool:
    """Whether a ``set_priority`` call moves the ticket to a lower priority than it has."""
    return bool(PRIORITY_RANK[arguments["priority"]] < PRIORITY_RANK[arguments["current"]])


def demo_policy() -> Policy:
    """Ask the support lead before a Jira issue is filed or a priority lowered, and before
    a rollback closes an issue the agent filed."""
    return Policy([
        Rule("jira-issue-needs-lead", "approve", tool="create_issue",
             reason="a support lead confirms every issue filed in Jira"),
        Rule("priority-drop-needs-lead", "approve", tool="set_priority", when=lowers_priority,
             reason="lowering a customer's priority needs a support lead"),
        Rule("closing-an-issue-needs-lead", "approve", tool="undo:create_issue",
             reason="an issue engineering may already work on is closed by a support lead"),
    ])
