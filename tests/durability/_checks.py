"""Whole-store integrity queries shared by the durability suites.

They read the tables directly through ``store._db.engine`` rather than through the store's
own API, so a bug in the read path cannot hide a bug in the write path.
"""

from __future__ import annotations

from sqlalchemy import func, select

from agentlab.store import SqlStore
from agentlab.store._schema import events, runs

__all__ = ["duplicate_seqs", "seq_problems"]


def duplicate_seqs(store: SqlStore) -> list[tuple[str, int, int]]:
    """(run_id, seq, copies) for every (run_id, seq) stored more than once."""
    n = func.count().label("n")
    q = (
        select(events.c.run_id, events.c.seq, n)
        .group_by(events.c.run_id, events.c.seq)
        .having(func.count() > 1)
    )
    with store._db.engine.connect() as conn:
        return [(str(r[0]), int(r[1]), int(r[2])) for r in conn.execute(q)]


def seq_problems(store: SqlStore) -> list[str]:
    """Every way the stored sequence numbers break invariant 1 of agentlab/store/_base.py.

    Checks, over all runs: no duplicate (run_id, seq); seq is exactly 1..last_seq for each
    run (count, min and max agree with the summary row's last_seq); no events without a
    summary row and no summary row without events.
    """
    problems = [f"duplicate (run_id, seq) = ({r}, {s}) stored {c} times"
                for r, s, c in duplicate_seqs(store)]
    q = select(events.c.run_id, func.count(), func.min(events.c.seq),
               func.max(events.c.seq)).group_by(events.c.run_id)
    with store._db.engine.connect() as conn:
        per_run = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(q)}
        last = {str(r[0]): int(r[1])
                for r in conn.execute(select(runs.c.run_id, runs.c.last_seq))}
    for run_id, (count, lo, hi) in sorted(per_run.items()):
        if run_id not in last:
            problems.append(f"run {run_id}: {count} events but no summary row")
            continue
        want = last[run_id]
        if (count, lo, hi) != (want, 1, want):
            problems.append(
                f"run {run_id}: summary last_seq={want} but events have count={count}, "
                f"min seq={lo}, max seq={hi} (expected {want}, 1, {want})"
            )
    problems.extend(f"run {run_id}: summary row (last_seq={n}) but no events"
                    for run_id, n in sorted(last.items()) if run_id not in per_run)
    return problems
