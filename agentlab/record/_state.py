"""The run's explicit state: a mapping whose every change is checkpointed.

Assigning, deleting or updating keys records a checkpoint at once. Reads through the
accessors are remembered on the innermost step (lineage: which steps read which keys), and
a key that was read may have been mutated in place, so it is re-encoded at the next
checkpoint; keys neither read nor written reuse their cached tree reference, which keeps a
checkpoint of a large state proportional to what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from agentlab.identity import Redactor, default_redactor
from agentlab.model import RefMap, TreeEncoder, canonical, loads
from agentlab.record._context import frame_var
from agentlab.record._core import RunCore

__all__ = ["RunState"]


class RunState(MutableMapping[str, Any]):
    """A ``dict``-like run state; see the module docstring for what gets recorded."""

    def __init__(self, run: RunCore) -> None:
        self._run = run
        self._data: dict[str, Any] = {}
        self._refs: dict[str, tuple[str | None, Any]] = {}
        self._map = RefMap()  # the same entries, with the map's nodes kept between checkpoints
        self._touched: set[str] = set()
        self._known: set[str] = set()
        self._renamed: dict[str, str] = {}
        self._names_version = -1
        self._seen_keys: set[str] = set()
        self.root: str | None = None

    # -- reads ----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        frame = frame_var.get()
        if frame is not None:
            frame.read(key)
        self._touched.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return f"RunState({self._data!r})"

    def snapshot(self) -> dict[str, Any]:
        """A plain copy of the current state (not recorded as a read)."""
        return dict(self._data)

    # -- writes ---------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self._set({key: value}, ())

    def __delitem__(self, key: str) -> None:
        if key not in self._data:
            raise KeyError(key)
        self._set({}, (key,))

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set several keys with a single checkpoint."""
        self._set(dict(*args, **kwargs), ())

    def _set(self, values: Mapping[str, Any], deletes: tuple[str, ...]) -> None:
        # Everything that can refuse the change happens before the state is touched.
        self._run._require_active()
        for key in values:
            if not isinstance(key, str):
                raise TypeError(f"run state keys must be strings, not {type(key).__name__}: {key!r}")
        encoded = {key: canonical(value) for key, value in values.items()}
        self._data.update(values)
        for key in deletes:
            del self._data[key]
            self._drop_ref(key)
            self._touched.discard(key)
        self.checkpoint(writes=list(values), deletes=list(deletes), encoded=encoded)

    def checkpoint(self, *, writes: list[str] | None = None, deletes: list[str] | None = None,
                   force: bool = True,
                   encoded: Mapping[str, tuple[bytes, list[str]]] | None = None) -> str | None:
        """Record a checkpoint now; with ``force=False`` only if the state changed."""
        if not force and not writes and not self._touched:
            return None
        enc = TreeEncoder()
        dirty = set(writes or ()) | self._touched
        changed_keys: list[str] = []
        normalized: list[str] = []
        redacted: list[str] = []
        redactor = default_redactor()
        for key in dirty:
            if key not in self._data:
                continue
            data, fixed = (encoded or {}).get(key) or canonical(self._data[key])
            value = loads(data) if fixed else self._data[key]
            normalized.extend(f"/{key}{p}" for p in fixed)
            if redactor.might_contain(data):
                # The agent keeps its value; the record gets it without secrets.
                scrubbed, paths = redactor.scrub(loads(data))
                if paths:
                    value = scrubbed
                    data = canonical(scrubbed)[0]
                    redacted.extend(f"/{_escape(key)}{p}" for p in paths)
            ref = enc.encode(value, data)
            if ref[0] is None:  # keep a private copy: the caller may mutate its object later
                ref = (None, loads(data))
            if self._refs.get(key) != ref:
                changed_keys.append(key)
            self._put_ref(key, ref)
        self._touched.clear()
        root = self._root(enc)
        if root == self.root and not force:
            return None
        new_blobs = {h: b for h, b in enc.blobs.items() if h not in self._known}
        written = sorted({self._renamed.get(k, k) for k in (*(writes or ()), *changed_keys)})
        try:
            self._run._emit_checkpoint(root, written, sorted(deletes or ()), new_blobs,
                                       normalized, sorted(redacted))
        except BaseException:
            # Not recorded: the nodes made for it are not in the store, so the kept map
            # must not take them as written; the next checkpoint makes them again.
            self._map = RefMap(self._refs)
            raise
        self.root = root
        self._known.update(new_blobs)
        if not self._run.mode.live:
            edits = self._run.mode.state_edits()
            if edits:
                self._apply(edits)
        return root

    def _apply(self, edits: Mapping[str, Any]) -> None:
        """Set values at paths (``"account/plan"``: key ``account``, then ``plan``; ``~1``
        and ``~0`` escape ``/`` and ``~``), as one checkpoint: a fork's state edit."""
        values: dict[str, Any] = {}
        for path, value in edits.items():
            top, *rest = [_unescape(p) for p in path.strip("/").split("/")]
            if not rest:
                values[top] = value
                continue
            base = values.get(top, loads(canonical(self._data[top])[0]) if top in self._data
                              else {})
            node = base
            for part in rest[:-1]:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if isinstance(node, list):
                node[int(rest[-1])] = value
            else:
                node[rest[-1]] = value
            values[top] = base
        self._set(values, ())

    def _put_ref(self, key: str, ref: tuple[str | None, Any]) -> None:
        if key not in self._seen_keys:
            self._names_version = -1  # a new key: look at its name for secrets
        self._refs[key] = ref
        self._map.set(key, ref)

    def _drop_ref(self, key: str) -> None:
        if self._refs.pop(key, None) is not None:
            self._map.delete(key)

    def _root(self, enc: TreeEncoder) -> str:
        """The state's root: the kept map, rewritten only on the changed keys' paths; built
        whole when a key's recorded name differs (a secret scrubbed out of it)."""
        refs = self._recorded_refs()
        return self._map.root(enc) if refs is self._refs else enc.map_from_refs(refs)

    def _recorded_refs(self) -> Mapping[str, tuple[str | None, Any]]:
        """The refs under the key names the record may hold: a key with a secret in it is
        recorded scrubbed (``#2``, ``#3``... should two keys scrub alike)."""
        redactor = default_redactor()
        if redactor.version != self._names_version:
            self._rename(redactor)
        if not self._renamed:
            return self._refs
        return {self._renamed.get(k, k): ref for k, ref in self._refs.items()}

    def _rename(self, redactor: Redactor) -> None:
        self._names_version = redactor.version
        self._seen_keys = set(self._refs)
        self._renamed = {}
        keys = list(self._refs)
        if not keys or not redactor.might_contain(canonical(keys)[0]):
            return
        taken: set[str] = set()
        for key in keys:
            name = redactor.scrub_text(key)
            if name != key:
                base, n = name, 1
                while name in taken or name in self._refs:
                    n += 1
                    name = f"{base}#{n}"
                self._renamed[key] = name
            taken.add(name)

    def _absorb(self, values: Mapping[str, Any], deletes: Iterable[str]) -> None:
        """Take on state the record already holds (what a served tool wrote, while a resumed
        run catches up) without recording a change."""
        enc = TreeEncoder()
        for key in deletes:
            self._data.pop(key, None)
            self._drop_ref(key)
        for key, value in values.items():
            self._data[key] = value
            data, _ = canonical(value)
            ref = enc.encode(value, data)
            self._put_ref(key, (None, loads(data)) if ref[0] is None else ref)
        root = self._root(enc) if self._refs else None
        self._known.update(enc.blobs)
        self.root = root

    def _write_served(self, values: Mapping[str, Any], deletes: Iterable[str],
                      recorded: bool) -> None:
        """Apply what a tool served from the record wrote to the state when it ran: taken
        on silently when the record already holds it, else recorded as a checkpoint."""
        if recorded:
            self._absorb(values, deletes)
        else:
            self._set(dict(values), tuple(k for k in deletes if k in self._data))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
