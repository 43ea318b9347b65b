"""Investigation rows: opened when someone starts explaining a run, concluded with a culprit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, and_, select

from agentlab.model import Investigation, new_id
from agentlab.store._read import us_to_dt
from agentlab.store._schema import investigations

__all__ = ["conclude_in", "investigation_from_row", "open_in", "select_investigations"]


def investigation_from_row(row: Row[Any]) -> Investigation:
    m = row._mapping
    return Investigation(
        id=m["investigation_id"], run_id=m["run_id"], opened_at=us_to_dt(m["opened_us"]),
        opened_by=m["opened_by"],
        concluded_at=us_to_dt(m["concluded_us"]) if m["concluded_us"] is not None else None,
        concluded_by=m["concluded_by"], culprit_seq=m["culprit_seq"], note=m["note"],
    )


def _open_row(conn: Connection, run_id: str) -> Row[Any] | None:
    return conn.execute(
        select(investigations)
        .where(and_(investigations.c.run_id == run_id, investigations.c.concluded_us.is_(None)))
        .order_by(investigations.c.opened_us.desc())
    ).first()


def open_in(conn: Connection, run_id: str, by: str, at_us: int) -> Investigation:
    """The run's open investigation, or a new one opened now."""
    found = _open_row(conn, run_id)
    if found is not None:
        return investigation_from_row(found)
    iid = new_id()
    conn.execute(investigations.insert().values(
        investigation_id=iid, run_id=run_id, opened_us=at_us, opened_by=by))
    return investigation_from_row(conn.execute(
        select(investigations).where(investigations.c.investigation_id == iid)).one())


def conclude_in(conn: Connection, run_id: str, *, by: str, at_us: int,
                culprit_seq: int | None, note: str | None) -> Investigation:
    """Conclude the run's open investigation (opening one first if there is none: the
    conclusion then took no measurable time, which is recorded as such)."""
    current = open_in(conn, run_id, by, at_us)
    conn.execute(investigations.update()
                 .where(investigations.c.investigation_id == current.id)
                 .values(concluded_us=at_us, concluded_by=by, culprit_seq=culprit_seq,
                         note=note))
    return investigation_from_row(conn.execute(
        select(investigations).where(investigations.c.investigation_id == current.id)).one())


def select_investigations(conn: Connection, run_id: str | None = None) -> list[Investigation]:
    q = select(investigations)
    if run_id is not None:
        q = q.where(investigations.c.run_id == run_id)
    q = q.order_by(investigations.c.opened_us, investigations.c.investigation_id)
    return [investigation_from_row(r) for r in conn.execute(q)]
