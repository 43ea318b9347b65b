"""State diffs of recorded runs: between two checkpoints of a run, or the same point of two."""

from __future__ import annotations

from agentlab.model import Change, CheckpointInfo, diff_trees, diff_values
from agentlab.store import RunStore

__all__ = ["checkpoint_at", "state_diff"]


def checkpoint_at(store: RunStore, run_id: str, seq: int | None) -> CheckpointInfo | None:
    """The run's last checkpoint at or before ``seq`` (``None``: its last checkpoint)."""
    found = [c for c in store.checkpoints(run_id) if seq is None or c.seq <= seq]
    return found[-1] if found else None


def state_diff(
    store: RunStore,
    run_id: str,
    *,
    from_seq: int | None = 0,
    to_seq: int | None = None,
    other_run: str | None = None,
) -> list[Change]:
    """What changed in the run state from ``from_seq`` to ``to_seq``.

    Each side is the state as of the last checkpoint at or before that sequence number;
    ``from_seq=0`` means the empty state before the run, ``to_seq=None`` the final state.
    With ``other_run``, the ``to`` side is read from that run instead: the same point of two
    runs (``from_seq=None`` and ``to_seq=None`` compare their final states).

    >>> state_diff(store, bad_run, from_seq=7, to_seq=12)       # doctest: +SKIP
    [Change(op='change', path='/account/plan', old='enterprise', new='standard')]
    """
    if other_run is None:
        _check_range(store, run_id, from_seq, to_seq)
    a = checkpoint_at(store, run_id, from_seq) if from_seq != 0 else None
    b = checkpoint_at(store, other_run or run_id, to_seq)
    reader = store.tree_reader()
    if a is not None and b is not None:
        return diff_trees(reader, a.root, b.root)
    return diff_values(reader.value(a.root) if a else {}, reader.value(b.root) if b else {})


def _check_range(store: RunStore, run_id: str, from_seq: int | None,
                 to_seq: int | None) -> None:
    """Refuse a range that is reversed or outside the run: it would compare states the
    caller did not mean and answer as if it had."""
    last = store.run(run_id).last_seq
    for name, seq in (("from_seq", from_seq), ("to_seq", to_seq)):
        if seq is not None and not 0 <= seq <= last:
            raise ValueError(f"{name}={seq} is outside run {run_id}, whose events are "
                             f"numbered 1 to {last} (0: before the run)")
    if from_seq is not None and to_seq is not None and from_seq > to_seq:
        raise ValueError(f"from_seq={from_seq} is after to_seq={to_seq}; give the earlier "
                         "point first")
