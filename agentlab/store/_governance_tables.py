"""The store's tables of what people decide about runs: grants, approval requests and
their decisions, investigations. A mixin of :class:`~agentlab.store.SqlStore`, which gives
it the database (``_db``) and its dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from agentlab.errors import ApprovalNotFoundError, StoreError
from agentlab.model import ApprovalRequest, ApproverChange, Grant, Investigation
from agentlab.store._engine import SqlEngine
from agentlab.store._governance import (
    approver_change_from_row,
    consume_approval_in,
    decide_approval_in,
    grant_from_row,
    grant_row,
    insert_approval_in,
    select_approvals,
    select_approver_changes,
)
from agentlab.store._investigations import conclude_in, open_in, select_investigations
from agentlab.store._read import resolve_run_id
from agentlab.store._schema import approver_changes, grants

__all__ = ["GovernanceTables"]


class GovernanceTables:
    """Grants, approvals and investigations, as store methods."""

    _db: SqlEngine
    dialect: str

    # -- grants and approvals -----------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        def write(conn: Connection) -> None:
            if conn.execute(select(grants.c.name).where(grants.c.name == grant.name)).first():
                raise StoreError(
                    f"a grant named {grant.name!r} already exists; revoke it and issue one "
                    "under a new name (grants are never edited, so what a run used stays known)"
                )
            conn.execute(grants.insert().values(**grant_row(grant)))

        self._db.write(write, what="grant")

    def grant(self, name: str) -> Grant | None:
        with self._db.read() as conn:
            row = conn.execute(select(grants).where(grants.c.name == name)).first()
        return grant_from_row(row) if row is not None else None

    def grants(self) -> list[Grant]:
        with self._db.read() as conn:
            rows = list(conn.execute(select(grants).order_by(grants.c.name)))
        return [grant_from_row(r) for r in rows]

    def revoked_grants(self, names: Sequence[str]) -> set[str]:
        if not names:
            return set()
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = (f"SELECT name FROM {grants.name} WHERE revoked_us IS NOT NULL AND name IN "
               f"({', '.join([mark] * len(names))})")
        return {row[0] for row in self._db.quick_read(sql, tuple(names))}

    def revoke_grant(self, name: str, *, at_us: int, by: str | None,
                     reason: str | None) -> bool:
        def write(conn: Connection) -> bool:
            res = conn.execute(
                grants.update()
                .where(grants.c.name == name, grants.c.revoked_us.is_(None))
                .values(revoked_us=at_us, revoked_by=by, revoke_reason=reason)
            )
            return bool(res.rowcount == 1)

        return self._db.write(write, what="revocation")

    def add_approval(self, row: dict[str, Any]) -> ApprovalRequest:
        try:
            return self._db.write(lambda conn: insert_approval_in(conn, row),
                                  what="approval request")
        except DBIntegrityError:
            # Another process asked for the same call at the same moment: theirs stands.
            return self._db.write(lambda conn: insert_approval_in(conn, row),
                                  what="approval request")

    def approval(self, request_id: str) -> ApprovalRequest:
        if not request_id:
            raise ApprovalNotFoundError(request_id)
        found = self.approvals(prefix=request_id)
        exact = [a for a in found if a.id == request_id]
        if exact:
            return exact[0]
        if len(found) == 1:
            return found[0]
        raise ApprovalNotFoundError(request_id, ambiguous=len(found) > 1)

    def approvals(self, *, status: str | None = None, run_id: str | None = None,
                  prefix: str | None = None) -> list[ApprovalRequest]:
        with self._db.read() as conn:
            return select_approvals(conn, status=status, run_id=run_id, prefix=prefix)

    def decide_approval(self, request_id: str, values: dict[str, Any]) -> bool:
        return self._db.write(lambda conn: decide_approval_in(conn, request_id, values),
                              what="approval decision")

    def consume_approval(self, request_id: str, *, by: str, at_us: int) -> bool:
        return self._db.write(lambda conn: consume_approval_in(conn, request_id, by, at_us),
                              what="approval consume")

    # -- who may approve (an append-only history) ----------------------------------------

    def add_approver_change(self, row: dict[str, Any]) -> ApproverChange:
        def write(conn: Connection) -> ApproverChange:
            res = conn.execute(approver_changes.insert().values(**row))
            seq = res.inserted_primary_key[0] if res.inserted_primary_key else None
            stored = conn.execute(
                select(approver_changes).where(approver_changes.c.seq == seq)).one()
            return approver_change_from_row(stored)

        return self._db.write(write, what="approver change")

    def approver_changes(self, *, approver: str | None = None,
                         group: str | None = None) -> list[ApproverChange]:
        with self._db.read() as conn:
            return select_approver_changes(conn, approver=approver, group=group)

    # -- investigations -----------------------------------------------------------------

    def open_investigation(self, run_id: str, *, by: str, at_us: int) -> Investigation:
        def write(conn: Connection) -> Investigation:
            return open_in(conn, resolve_run_id(conn, run_id), by, at_us)

        return self._db.write(write, what="investigation")

    def conclude_investigation(self, run_id: str, *, by: str, at_us: int,
                               culprit_seq: int | None, note: str | None) -> Investigation:
        def write(conn: Connection) -> Investigation:
            return conclude_in(conn, resolve_run_id(conn, run_id), by=by, at_us=at_us,
                               culprit_seq=culprit_seq, note=note)

        return self._db.write(write, what="investigation")

    def investigations(self, run_id: str | None = None) -> list[Investigation]:
        with self._db.read() as conn:
            rid = resolve_run_id(conn, run_id) if run_id is not None else None
            return select_investigations(conn, rid)
