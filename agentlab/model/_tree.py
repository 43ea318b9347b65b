"""Content-addressed value trees: how states and large payloads share structure.

A value is split into nodes; each node is stored once, under the SHA-256 of its canonical
bytes, and refers to its children by hash. Values whose canonical form is at most
``INLINE_MAX`` bytes stay inline in their parent. Node shapes (``t`` is the tag):

* ``{"t":"v","v":value}``                      a leaf kept whole (a long string, say)
* ``{"t":"m","i":{k:value},"r":{k:hash}}``     a mapping of at most ``FANOUT`` keys
* ``{"t":"h","d":depth,"b":{nibble:hash}}``    a larger mapping, split by key hash (a HAMT)
* ``{"t":"l","i":[...],"r":[index,...]}``      a list of at most ``FANOUT`` items; ``i``
                                               holds the hash at each index listed in ``r``
* ``{"t":"c","n":length,"c":[hash,...]}``      a longer list, in ``FANOUT``-item chunks

The split depends only on content, so equal values always have equal root hashes: a state
that changes one key rewrites one leaf and the few nodes on its path, and a diff can skip
every subtree whose hash did not change.

An encoder made with ``ordered=True`` (large event payloads: a tool's result, a model's
response) keeps the mapping's own key order as well: its nodes are written in the stored
form and an ``m`` or top ``h`` node whose split would lose the order carries ``"o"``, the
keys in order. State trees are never ordered, so a state's hash does not depend on the order
its keys were set in.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from agentlab.model._canonical import dumps, dumps_ordered, loads

__all__ = ["FANOUT", "INLINE_MAX", "Ref", "RefMap", "TreeEncoder", "TreeReader", "Visit", "node_children", "walk"]

INLINE_MAX = 256
FANOUT = 32
_MAX_DEPTH = 15


Ref = tuple[str | None, Any]
"""An encoded child: ``(hash, None)`` for a node, ``(None, value)`` for a value inline."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: str) -> bytes:
    # Cached: a run state's keys are re-bucketed at every checkpoint.
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _nibble(key: str, depth: int) -> str:
    byte = _key_hash(key)[depth // 2]
    return "0123456789abcdef"[(byte >> 4) if depth % 2 == 0 else (byte & 15)]


class TreeEncoder:
    """Encodes portable values into nodes, collecting the node blobs it produced."""

    __slots__ = ("blobs", "ordered")

    def __init__(self, *, ordered: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.ordered = ordered

    def _put(self, node: Any) -> str:
        data = dumps_ordered(node) if self.ordered else dumps(node)
        h = _digest(data)
        self.blobs[h] = data
        return h

    def encode(self, value: Any, data: bytes | None = None) -> tuple[str | None, Any]:
        """``(hash, None)`` when the value became a node, else ``(None, value)`` inline."""
        if data is None:
            data = dumps(value)
        if len(data) <= INLINE_MAX:
            return None, value
        return self.node(value, data), None

    def encode_bytes(self, data: bytes) -> Ref:
        """:meth:`encode` of the value whose canonical bytes are ``data``, parsed from them
        (only a mapping or list, to be split): the result depends on the bytes alone, not
        on any object the caller may still change."""
        if len(data) <= INLINE_MAX:
            return None, loads(data)
        return self.node(loads(data) if data[:1] in (b"{", b"[") else None, data), None

    def node(self, value: Any, data: bytes | None = None) -> str:
        """Store ``value`` as a node whatever its size and return the node's hash."""
        if isinstance(value, dict):
            if len(value) <= FANOUT:
                return self._map(value.items())
            return self._hamt(list(value.items()), 0, list(value) if self.ordered else None)
        if isinstance(value, list):
            if len(value) <= FANOUT:
                return self._list(value)
            chunks = [self._list(value[i : i + FANOUT]) for i in range(0, len(value), FANOUT)]
            return self._put({"t": "c", "n": len(value), "c": chunks})
        if data is None:
            data = dumps(value)
        leaf = b'{"t":"v","v":' + data + b"}"
        h = _digest(leaf)
        self.blobs[h] = leaf
        return h

    def _map(self, items: Iterable[tuple[str, Any]]) -> str:
        inline: dict[str, Any] = {}
        refs: dict[str, str] = {}
        keys: list[str] = []
        for k, v in items:
            keys.append(k)
            h, val = self.encode(v)
            if h is None:
                inline[k] = val
            else:
                refs[k] = h
        node: dict[str, Any] = {"t": "m", "i": inline, "r": refs}
        if self.ordered and refs and keys != [*inline, *refs]:
            node["o"] = keys
        return self._put(node)

    def map_from_refs(self, entries: Mapping[str, Ref]) -> str:
        """A mapping node from children already encoded (the recorder caches them)."""
        return self._map_refs(list(entries.items()), 0)

    def _map_refs(self, entries: list[tuple[str, Ref]], depth: int,
                  order: list[str] | None = None) -> str:
        if len(entries) <= FANOUT or depth >= _MAX_DEPTH:
            return self._leaf(entries, order)
        buckets: dict[str, list[tuple[str, Ref]]] = {}
        for entry in entries:
            buckets.setdefault(_nibble(entry[0], depth), []).append(entry)
        return self._split({n: self._map_refs(b, depth + 1) for n, b in buckets.items()},
                           depth, order)

    def _leaf(self, entries: Iterable[tuple[str, Ref]], order: list[str] | None = None) -> str:
        """An ``m`` node of encoded children."""
        inline: dict[str, Any] = {}
        refs: dict[str, str] = {}
        for k, (h, v) in entries:
            if h is None:
                inline[k] = v
            else:
                refs[k] = h
        node: dict[str, Any] = {"t": "m", "i": inline, "r": refs}
        if order is not None and refs and order != [*inline, *refs]:
            node["o"] = order
        return self._put(node)

    def _split(self, children: Mapping[str, str], depth: int,
               order: list[str] | None = None) -> str:
        """An ``h`` node over the buckets' nodes, by nibble."""
        top: dict[str, Any] = {"t": "h", "d": depth, "b": {n: children[n] for n in
                                                        sorted(children)}}
        if order is not None:
            top["o"] = order
        return self._put(top)

    def _hamt(self, items: list[tuple[str, Any]], depth: int,
              order: list[str] | None = None) -> str:
        return self._map_refs([(k, self.encode(v)) for k, v in items], depth, order)

    def _list(self, items: list[Any]) -> str:
        out: list[Any] = []
        refs: list[int] = []
        for i, v in enumerate(items):
            h, val = self.encode(v)
            if h is None:
                out.append(val)
            else:
                out.append(h)
                refs.append(i)
        return self._put({"t": "l", "i": out, "r": refs})


class RefMap:
    """A mapping of encoded children whose map node is kept up to date as keys change.

    It gives the same root as :meth:`TreeEncoder.map_from_refs` over the same entries (the
    nodes are the same: only the work differs). Each bucket of the key-hash split remembers
    its node's hash until a key under it changes, so setting one key of a 200-key state
    rewrites the leaf bucket and the path above it rather than every node of the map.
    """

    __slots__ = ("_top",)

    def __init__(self, entries: Mapping[str, Ref] | None = None) -> None:
        self._top = _Bucket(0)
        for key, ref in (entries or {}).items():
            self.set(key, ref)

    def __len__(self) -> int:
        return len(self._top.entries)

    def set(self, key: str, ref: Ref) -> None:
        b: _Bucket | None = self._top
        while b is not None:
            held = b.entries.get(key, _MISSING)
            if held is not _MISSING and held == ref and b.node is not None:
                return  # unchanged below as well
            b.entries[key] = ref
            b.node = None
            if b.children is None:
                if len(b.entries) > FANOUT and b.depth < _MAX_DEPTH:
                    b.split()
                return
            b = b.children.setdefault(_nibble(key, b.depth), _Bucket(b.depth + 1))

    def delete(self, key: str) -> None:
        b: _Bucket | None = self._top
        while b is not None and key in b.entries:
            del b.entries[key]
            b.node = None
            if b.children is None:
                return
            if len(b.entries) <= FANOUT:
                b.children = None  # small enough to be one mapping node again
                return
            nib = _nibble(key, b.depth)
            child = b.children[nib]
            if len(child.entries) == 1:
                del b.children[nib]
                return
            b = child

    def root(self, enc: TreeEncoder) -> str:
        """The map node's hash; nodes that had to be rewritten are put in ``enc``."""
        return self._top.hash(enc)


_MISSING = object()


class _Bucket:
    __slots__ = ("children", "depth", "entries", "node")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.entries: dict[str, Ref] = {}
        self.children: dict[str, _Bucket] | None = None
        self.node: str | None = None

    def split(self) -> None:
        self.children = {}
        for key, ref in self.entries.items():
            child = self.children.setdefault(_nibble(key, self.depth), _Bucket(self.depth + 1))
            child.entries[key] = ref
        for child in self.children.values():
            if len(child.entries) > FANOUT and child.depth < _MAX_DEPTH:
                child.split()

    def hash(self, enc: TreeEncoder) -> str:
        if self.node is None:
            self.node = enc._leaf(self.entries.items()) if self.children is None else \
                enc._split({n: c.hash(enc) for n, c in self.children.items()}, self.depth)
        return self.node


def node_children(node: Mapping[str, Any]) -> list[str]:
    """Hashes a decoded node refers to."""
    t = node["t"]
    if t == "m":
        return list(node["r"].values())
    if t == "h":
        return list(node["b"].values())
    if t == "l":
        return [node["i"][i] for i in node["r"]]
    if t == "c":
        return list(node["c"])
    return []


Fetch = Callable[[list[str]], Mapping[str, bytes]]
"""Returns the canonical bytes of each requested hash that exists."""


@dataclass(frozen=True, slots=True)
class Visit:
    """One node reached by :func:`walk`: its bytes (None if missing), the decoded node (None
    if missing or not a valid node) and the root it was first reached from."""

    hash: str
    data: bytes | None
    node: dict[str, Any] | None
    root: str


def walk(roots: Iterable[str], fetch: Fetch, skip: Container[str] = ()) -> Iterator[Visit]:
    """Every node reachable from ``roots``, once each, level by level (one fetch per level).

    Nodes in ``skip`` are neither fetched nor descended into. The caller decides what a
    missing or invalid node means (an error on read, a finding in verification).
    """
    root_of = {r: r for r in roots if r not in skip}
    wanted = list(root_of)
    while wanted:
        got = fetch(wanted)
        nxt: list[str] = []
        for h in wanted:
            data = got.get(h)
            node: dict[str, Any] | None = None
            children: list[str] = []
            if data is not None:
                try:
                    node = loads(data)
                    children = node_children(node)
                except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                    node, children = None, []
            yield Visit(h, data, node, root_of[h])
            for c in children:
                if c not in root_of and c not in skip:
                    root_of[c] = root_of[h]
                    nxt.append(c)
        wanted = nxt


def _broken(visit: Visit) -> None:
    from agentlab.errors import IntegrityError

    what = "missing from the store" if visit.data is None else "not a valid tree node"
    raise IntegrityError(
        f"blob {visit.hash} is referenced but {what}; run `agentlab verify` to find the "
        "affected runs"
    )


class TreeReader:
    """Decodes trees from a blob source, fetching one tree level per round trip."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._nodes: dict[str, dict[str, Any]] = {}

    def prefetch(self, hashes: Iterable[str]) -> None:
        """Load the given nodes and everything below them, level by level."""
        for visit in walk(hashes, self._fetch, skip=self._nodes):
            if visit.node is None:
                _broken(visit)
            else:
                self._nodes[visit.hash] = visit.node

    def node(self, h: str) -> dict[str, Any]:
        """One decoded node, fetched alone if not loaded yet (nothing below it)."""
        if h not in self._nodes:
            data = self._fetch([h]).get(h)
            if data is None:
                _broken(Visit(h, None, None, h))
            self._nodes[h] = loads(data)  # type: ignore[arg-type]
        return self._nodes[h]

    def value(self, h: str) -> Any:
        """The value stored under root ``h``."""
        if h not in self._nodes:
            self.prefetch([h])
        node = self._nodes[h]
        t = node["t"]
        if t == "v":
            return node["v"]
        if t == "m":
            out = dict(node["i"])
            for k, ch in node["r"].items():
                out[k] = self.value(ch)
            return {k: out[k] for k in node["o"]} if "o" in node else out
        if t == "h":
            merged: dict[str, Any] = {}
            for ch in node["b"].values():
                merged.update(self.value(ch))
            return {k: merged[k] for k in node["o"]} if "o" in node else merged
        if t == "l":
            items = list(node["i"])
            for i in node["r"]:
                items[i] = self.value(items[i])
            return items
        if t == "c":
            flat: list[Any] = []
            for ch in node["c"]:
                flat.extend(self.value(ch))
            return flat
        raise ValueError(f"unknown tree node tag {t!r} in blob {h}")
