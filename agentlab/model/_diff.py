"""Differences between two values, and between two content-addressed value trees.

The tree diff walks both trees from their roots and never descends into a pair of subtrees
whose hashes are equal, so comparing two large states that differ in a few leaves reads and
compares only the nodes on the paths to those leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from agentlab.model._tree import FANOUT, TreeReader

__all__ = ["Change", "diff_trees", "diff_values"]

Ref = tuple[str | None, Any]
"""A child as stored: ``(hash, None)`` for a node, ``(None, value)`` for an inline value."""


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: ``op`` at ``path`` (a JSON pointer), with the old and new values."""

    op: Literal["add", "remove", "change"]
    path: str
    old: Any = None
    new: Any = None


def _child(path: str, key: str | int) -> str:
    k = str(key)
    return f"{path}/{k.replace('~', '~0').replace('/', '~1')}"


def _first_key(change_path: str, parent: str) -> str:
    """The key of ``parent``'s mapping that ``change_path`` lies under (unescaped)."""
    segment = change_path[len(parent) + 1 :].split("/", 1)[0]
    return segment.replace("~1", "/").replace("~0", "~")


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and 1.0 differ in canonical form, True and 1 differ in kind.
    return type(a) is type(b) and a == b


def diff_values(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every difference between two JSON values, objects by key and arrays by index."""
    return list(_diff_values(old, new, path))


def _diff_values(old: Any, new: Any, path: str) -> Iterator[Change]:
    # Containers are walked, not compared whole: Python's == takes False for 0 and 1 for
    # 1.0 inside them, which JSON (and the state trees' hashes) tell apart.
    if old is new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            p = _child(path, key)
            if key not in new:
                yield Change("remove", p, old=old[key])
            elif key not in old:
                yield Change("add", p, new=new[key])
            else:
                yield from _diff_values(old[key], new[key], p)
        return
    if isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        for i in range(common):
            yield from _diff_values(old[i], new[i], _child(path, i))
        for i in range(common, len(old)):
            yield Change("remove", _child(path, i), old=old[i])
        for i in range(common, len(new)):
            yield Change("add", _child(path, i), new=new[i])
        return
    if not _same(old, new):
        yield Change("change", path, old=old, new=new)


def diff_trees(reader: TreeReader, old_root: str, new_root: str, path: str = "") -> list[Change]:
    """Every difference between the values under two tree roots (see the module docstring).

    The result equals ``diff_values(reader.value(old_root), reader.value(new_root))``.
    """
    return list(_TreeDiff(reader).nodes(old_root, new_root, path))


class _TreeDiff:
    def __init__(self, reader: TreeReader) -> None:
        self.r = reader

    def refs(self, a: Ref, b: Ref, path: str) -> Iterator[Change]:
        (ha, va), (hb, vb) = a, b
        if ha is not None and hb is not None:
            yield from self.nodes(ha, hb, path)
        elif ha is None and hb is None:
            yield from _diff_values(va, vb, path)
        else:
            yield from _diff_values(self.value(a), self.value(b), path)

    def value(self, ref: Ref) -> Any:
        return self.r.value(ref[0]) if ref[0] is not None else ref[1]

    def nodes(self, ha: str, hb: str, path: str) -> Iterator[Change]:
        if ha == hb:
            return
        na, nb = self.r.node(ha), self.r.node(hb)
        ta, tb = na["t"], nb["t"]
        if ta in "mh" and tb in "mh":
            yield from self.maps(na, nb, path)
        elif ta in "lc" and tb in "lc":
            yield from self.lists(na, nb, path)
        else:
            yield from _diff_values(self.r.value(ha), self.r.value(hb), path)

    # -- mappings ---------------------------------------------------------------------------

    def entries(self, node: dict[str, Any]) -> dict[str, Ref]:
        if node["t"] == "m":
            out: dict[str, Ref] = {k: (None, v) for k, v in node["i"].items()}
            out.update((k, (h, None)) for k, h in node["r"].items())
            return out
        merged: dict[str, Ref] = {}
        for h in node["b"].values():
            merged.update(self.entries(self.r.node(h)))
        return merged

    def buckets(self, na: dict[str, Any], nb: dict[str, Any], path: str) -> Iterator[Change]:
        ba, bb = na["b"], nb["b"]
        for nibble in sorted(ba.keys() | bb.keys()):
            a, b = ba.get(nibble), bb.get(nibble)
            if a == b:
                continue
            if a is not None and b is not None:
                yield from self.nodes(a, b, path)
                continue
            side = self.entries(self.r.node(a if a is not None else b))
            for key in sorted(side):
                value = self.value(side[key])
                if a is None:
                    yield Change("add", _child(path, key), new=value)
                else:
                    yield Change("remove", _child(path, key), old=value)

    def maps(self, na: dict[str, Any], nb: dict[str, Any], path: str) -> Iterator[Change]:
        if na["t"] == "h" and nb["t"] == "h" and na["d"] == nb["d"]:
            # Buckets group keys by hash; report in key order, as diff_values does.
            yield from sorted(self.buckets(na, nb, path), key=lambda c: _first_key(c.path, path))
            return
        ea, eb = self.entries(na), self.entries(nb)
        for key in sorted(ea.keys() | eb.keys()):
            p = _child(path, key)
            if key not in eb:
                yield Change("remove", p, old=self.value(ea[key]))
            elif key not in ea:
                yield Change("add", p, new=self.value(eb[key]))
            elif ea[key][0] is None or ea[key] != eb[key]:
                yield from self.refs(ea[key], eb[key], p)

    # -- lists ------------------------------------------------------------------------------

    def items(self, node: dict[str, Any]) -> list[Ref]:
        if node["t"] == "l":
            refs = set(node["r"])
            return [(v, None) if i in refs else (None, v) for i, v in enumerate(node["i"])]
        out: list[Ref] = []
        for h in node["c"]:
            out.extend(self.items(self.r.node(h)))
        return out

    def lists(self, na: dict[str, Any], nb: dict[str, Any], path: str) -> Iterator[Change]:
        if na["t"] == "c" and nb["t"] == "c":
            # Chunks hold FANOUT items each: equal leading chunks hold equal items at equal
            # indices, so skip them without reading them.
            ca, cb = na["c"], nb["c"]
            same = 0
            while same < min(len(ca), len(cb)) and ca[same] == cb[same]:
                same += 1
            offset = same * FANOUT
            ia, ib = self.items_from(ca[same:]), self.items_from(cb[same:])
        else:
            offset, ia, ib = 0, self.items(na), self.items(nb)
        common = min(len(ia), len(ib))
        for i in range(common):
            if ia[i][0] is None or ia[i] != ib[i]:
                yield from self.refs(ia[i], ib[i], _child(path, offset + i))
        for i in range(common, len(ia)):
            yield Change("remove", _child(path, offset + i), old=self.value(ia[i]))
        for i in range(common, len(ib)):
            yield Change("add", _child(path, offset + i), new=self.value(ib[i]))

    def items_from(self, chunks: list[str]) -> list[Ref]:
        out: list[Ref] = []
        for h in chunks:
            out.extend(self.items(self.r.node(h)))
        return out
