"""Records of governance: grants (who may act, with which scopes) and approval requests.

A grant never holds its secret: only where to find it (``secret_ref``) and a keyed
fingerprint of it. An approval request holds the exact arguments a tool would run with
(after redaction) and, once decided, who decided, how and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.model._events import ApprovalAction, Phase

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "ApproverChange",
    "Grant",
    "GrantStatus",
    "Investigation",
]

GrantStatus = Literal["active", "expired", "revoked"]
ApprovalStatus = Literal["pending", "approved", "rejected", "edited", "expired"]


class Grant(BaseModel):
    """A named credential an agent acts through, for an owner, in one workflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    principal: str = Field(description="The agent that may use the grant.")
    owner: str = Field(description="The human or team the agent acts for.")
    workflow: str = Field(description="Workflow name or glob the grant is valid in.")
    scopes: tuple[str, ...] = Field(description="Scope patterns, e.g. 'jira:write:SUP-*'.")
    issued_at: datetime
    issued_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    secret_ref: str | None = Field(
        None, description="Where the secret is resolved at call time ('env:NAME', "
        "'file:PATH' or 'callable'); never the secret itself.")
    fingerprint: str | None = Field(
        None, description="HMAC-SHA256 of the secret at issue time, keyed outside the store.")

    def status(self, now: datetime) -> GrantStatus:
        """Active, expired or revoked at ``now``. Revocation takes effect at once, whatever
        the clock says (an injected or skewed clock must not revive a revoked grant)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class ApprovalRequest(BaseModel):
    """A durable request for a human decision on one tool call, and the decision if any.

    ``binding`` is a keyed hash of (run, call, tool, canonical arguments, grant, expiry);
    the decision is honoured only for that exact call, and only once (``consumed_at``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    run_id: str
    call_key: str = Field(description="The call's idempotency key: stable across a resume.")
    tool: str
    arguments: dict[str, Any] = Field(description="As they would run (secrets redacted).")
    grant: str | None = None
    scope: str | None = None
    rule: str | None = Field(None, description="The policy rule that asked for approval.")
    approvers: list[str] | None = Field(
        None, description="Who may decide, as the rule named them (None: anyone but the "
        "agent that asked).")
    phase: Phase | None = None
    requested_at: datetime
    expires_at: datetime
    binding: str
    request_mac: str = Field(
        description="The approval layer's MAC over the request; a row without a valid one "
        "(written into the database by hand) is never honoured.")
    status: ApprovalStatus = "pending"
    action: ApprovalAction | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    channel: str | None = None
    reason: str | None = None
    edited_arguments: dict[str, Any] | None = None
    decision_mac: str | None = None
    signature: str | None = Field(
        None, description="The decider's Ed25519 signature over the decision (hex), when "
        "the decider holds an approver key; the gate verifies it against the key stored "
        "for them before the call runs.")
    consumed_at: datetime | None = None
    consumed_by: str | None = None

    @property
    def decided(self) -> bool:
        return self.action is not None


class ApproverChange(BaseModel):
    """One entry of the append-only history of who may approve: a person added (to a group,
    with a new key) or revoked (from a group, or altogether). The current state of each
    approver is read from these entries in order; none is ever edited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(description="The entry's place in the history (ascending).")
    approver: str
    action: Literal["add", "revoke"]
    group: str | None = Field(
        None, description="The group joined or left; None: the approver as a whole.")
    public_key: str | None = Field(
        None, description="A new approver key's public half (hex); the private half was "
        "shown once at issue and is not stored.")
    at: datetime
    by: str | None = None
    reason: str | None = None
    mac: str = Field(description="agentlab's MAC over the entry; an entry without a valid "
                     "one (written into the database by hand) makes its approver refused.")


class Investigation(BaseModel):
    """Someone explaining a bad run: opened when they start, concluded with the culprit.

    The time between the two is the run's time to explain; its mean over concluded
    investigations is MTTE, the number agentlab exists to drive down.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    run_id: str
    opened_at: datetime
    opened_by: str
    concluded_at: datetime | None = None
    concluded_by: str | None = None
    culprit_seq: int | None = Field(None, description="The step found to have caused it.")
    note: str | None = None

    @property
    def seconds_to_explain(self) -> float | None:
        if self.concluded_at is None:
            return None
        return (self.concluded_at - self.opened_at).total_seconds()
