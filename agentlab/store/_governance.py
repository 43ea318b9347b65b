"""Grant and approval rows: plain reads and conditional writes, no policy.

The store does not know the key that authenticates approvals; it keeps the MACs the
approval layer computed and makes the two state changes that must be atomic: a decision is
written only over a pending request, and a decided request is consumed only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update

from agentlab.model import ApprovalRequest, ApproverChange, Grant, dumps, loads
from agentlab.store._read import us_to_dt
from agentlab.store._schema import approvals, approver_changes

__all__ = [
    "approval_from_row",
    "approver_change_from_row",
    "consume_approval_in",
    "decide_approval_in",
    "grant_from_row",
    "grant_row",
    "insert_approval_in",
    "select_approvals",
    "select_approver_changes",
]


def _us(dt: Any) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1_000_000)


def grant_row(g: Grant) -> dict[str, Any]:
    return {
        "name": g.name, "principal": g.principal, "owner": g.owner, "workflow": g.workflow,
        "scopes": dumps(list(g.scopes)).decode(), "issued_us": _us(g.issued_at),
        "issued_by": g.issued_by, "expires_us": _us(g.expires_at),
        "revoked_us": _us(g.revoked_at), "revoked_by": g.revoked_by,
        "revoke_reason": g.revoke_reason, "secret_ref": g.secret_ref,
        "fingerprint": g.fingerprint,
    }


def grant_from_row(row: Row[Any]) -> Grant:
    m = row._mapping
    return Grant(
        name=m["name"], principal=m["principal"], owner=m["owner"], workflow=m["workflow"],
        scopes=tuple(loads(m["scopes"])), issued_at=us_to_dt(m["issued_us"]),
        issued_by=m["issued_by"],
        expires_at=us_to_dt(m["expires_us"]) if m["expires_us"] is not None else None,
        revoked_at=us_to_dt(m["revoked_us"]) if m["revoked_us"] is not None else None,
        revoked_by=m["revoked_by"], revoke_reason=m["revoke_reason"],
        secret_ref=m["secret_ref"], fingerprint=m["fingerprint"],
    )


def approval_from_row(row: Row[Any]) -> ApprovalRequest:
    m = row._mapping

    def dt(col: str) -> Any:
        return us_to_dt(m[col]) if m[col] is not None else None

    return ApprovalRequest(
        id=m["request_id"], run_id=m["run_id"], call_key=m["call_key"], tool=m["tool"],
        arguments=loads(m["arguments"]), grant=m["grant_name"], scope=m["scope"],
        rule=m["rule"], approvers=loads(m["approvers"]) if m["approvers"] else None,
        phase=m["phase"], requested_at=dt("requested_us"),
        expires_at=dt("expires_us"), binding=m["binding"], request_mac=m["request_mac"],
        status=m["status"], action=m["action"], decided_by=m["decided_by"],
        decided_at=dt("decided_us"), channel=m["channel"], reason=m["reason"],
        edited_arguments=loads(m["edited_arguments"]) if m["edited_arguments"] else None,
        decision_mac=m["decision_mac"], signature=m["signature"], consumed_at=dt("consumed_us"),
        consumed_by=m["consumed_by"],
    )


def insert_approval_in(conn: Connection, row: Mapping[str, Any]) -> ApprovalRequest:
    """Insert a pending request, or return the one already stored for the same call (a
    resumed run asks again for the call it was waiting on)."""
    existing = conn.execute(
        select(approvals).where(and_(approvals.c.run_id == row["run_id"],
                                     approvals.c.call_key == row["call_key"]))
    ).first()
    if existing is not None:
        return approval_from_row(existing)
    conn.execute(insert(approvals).values(**row, status="pending"))
    stored = conn.execute(
        select(approvals).where(approvals.c.request_id == row["request_id"])
    ).one()
    return approval_from_row(stored)


def decide_approval_in(conn: Connection, request_id: str, values: Mapping[str, Any]) -> bool:
    """Write a decision over a still-pending request; False if it was no longer pending."""
    res = conn.execute(
        update(approvals)
        .where(and_(approvals.c.request_id == request_id, approvals.c.status == "pending"))
        .values(**values)
    )
    return res.rowcount == 1


def consume_approval_in(conn: Connection, request_id: str, by: str, at_us: int) -> bool:
    """Mark an approved (or edited) request executed; True for exactly one caller."""
    res = conn.execute(
        update(approvals)
        .where(and_(approvals.c.request_id == request_id,
                    approvals.c.consumed_us.is_(None),
                    approvals.c.status.in_(("approved", "edited"))))
        .values(consumed_us=at_us, consumed_by=by)
    )
    return res.rowcount == 1


def select_approvals(conn: Connection, *, status: str | None = None,
                     run_id: str | None = None, prefix: str | None = None
                     ) -> list[ApprovalRequest]:
    q = select(approvals)
    if status is not None:
        q = q.where(approvals.c.status == status)
    if run_id is not None:
        q = q.where(approvals.c.run_id == run_id)
    if prefix is not None:
        q = q.where(approvals.c.request_id.startswith(prefix, autoescape=True))
    q = q.order_by(approvals.c.requested_us, approvals.c.request_id)
    return [approval_from_row(r) for r in conn.execute(q)]


def approver_change_from_row(row: Row[Any]) -> ApproverChange:
    m = row._mapping
    return ApproverChange(
        seq=m["seq"], approver=m["approver"], action=m["action"], group=m["group_name"],
        public_key=m["public_key"], at=us_to_dt(m["at_us"]), by=m["by"], reason=m["reason"],
        mac=m["mac"],
    )


def select_approver_changes(conn: Connection, *, approver: str | None = None,
                            group: str | None = None) -> list[ApproverChange]:
    """History entries in order, all of them or those of one approver or one group."""
    q = select(approver_changes)
    if approver is not None:
        q = q.where(approver_changes.c.approver == approver)
    if group is not None:
        q = q.where(approver_changes.c.group_name == group)
    q = q.order_by(approver_changes.c.seq)
    return [approver_change_from_row(r) for r in conn.execute(q)]
