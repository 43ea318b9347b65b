"""The run's explicit state: a mapping whose every change is checkpointed.

Assigning, deleting or updating keys records a checkpoint at once. Reads through the
accessors are remembered on the innermost step (lineage: which steps read which keys), and
a key that was read may have been mutated in place, so it is re-encoded at the next
checkpoint; keys neither read nor written reuse their cached tree reference, which keeps a
checkpoint of a large state proportional to what changed.

"At once" means the checkpoint's content is fixed when the key is set: the caller
serialises each changed value once (its canonical bytes are what is stored, and a snapshot
the caller's later mutations cannot reach) and takes the event's id, parent and time. In a
live run the rest (the redaction scan, the tree nodes and their hashes, the root, the
event body) is made on the writer thread when it takes the checkpoint off its queue, in
order; :attr:`RunState.root` and :meth:`RunState.checkpoint` make any that are still
queued first, on the caller. Replays and forks, which compare each root with the record's
as it is made, and checkpoints whose event could reach the payload limit, are made on the
caller as before. Either way the stored bytes are the same.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from agentlab.errors import RecordingError
from agentlab.identity import Redactor, default_redactor
from agentlab.model import RefMap, TreeEncoder, canonical, loads
from agentlab.record._context import frame_var
from agentlab.record._core import NO_STATS, RunCore, checkpoint_body
from agentlab.store import PendingEvent

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
        self._root: str | None = None
        # Checkpoints queued with their trees still to make, and the lock under which the
        # tree (refs, kept map, known nodes, root) is changed: by the writer or the caller.
        self._jobs: deque[_Deferred] = deque()
        self._lock = threading.Lock()
        # Held by a change from taking its content to queueing its checkpoint, so that
        # changes from several threads reach the tree and the writer's queue in one order.
        self._order = threading.RLock()

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
        run = self._run
        run._require_active()
        for key in values:
            if not isinstance(key, str):
                raise TypeError(f"run state keys must be strings, not {type(key).__name__}: {key!r}")
        encoded = {key: canonical(value) for key, value in values.items()}
        with self._order:
            self._data.update(values)
            for key in deletes:
                del self._data[key]
                self._touched.discard(key)
            writes = list(values)
            items = self._fix(writes, encoded)
            if run.mode.live and _small(items, writes, deletes, run._max_payload):
                self._defer(items, writes, deletes)
            else:
                self._settle()
                self._now(items, writes, deletes, force=True)

    def checkpoint(self, *, force: bool = True) -> str | None:
        """Record a checkpoint now and return its root; with ``force=False`` only if the
        state changed."""
        if not force and not self._touched:
            return None
        with self._order:
            self._settle()
            return self._now(self._fix([], {}), [], (), force)

    @property
    def root(self) -> str | None:
        """The root of the state's last checkpoint (its tree made now if the writer thread
        has not made it yet)."""
        self._settle()
        return self._root

    def _fix(self, writes: list[str], encoded: Mapping[str, tuple[bytes, list[str]]]
             ) -> dict[str, tuple[bytes, list[str]]]:
        """The canonical bytes of every key the checkpoint must look at (those written, and
        those read since the last one, which may have been changed in place): what is
        recorded is fixed here, whatever the caller does with its objects afterwards."""
        items: dict[str, tuple[bytes, list[str]]] = {}
        for key in set(writes) | self._touched:
            if key in self._data:
                items[key] = encoded.get(key) or canonical(self._data[key])
        self._touched.clear()
        return items

    def _defer(self, items: dict[str, tuple[bytes, list[str]]], writes: list[str],
               deletes: tuple[str, ...]) -> None:
        """Queue the checkpoint with its content and event fields fixed; its tree, root and
        body are made by the writer thread (:meth:`_Deferred.resolve`), in order."""
        run = self._run
        writer = run.writer
        if writer._stopped or writer._forked:
            writer._usable()  # raises: nothing is queued, and the tree does not take it
        frame = frame_var.get()
        job = _Deferred(self, items, writes, deletes, run._new_id(), run._parent_id(),
                        run._clock() // 1000, frame is not None and frame.inside_tool)
        self._jobs.append(job)
        writer.enqueue(job)  # queued even if its back-pressure flush raises

    def _settle(self, upto: _Deferred | None = None) -> None:
        """Make the queued checkpoints' trees, oldest first (all of them, or up to
        ``upto``). Runs on the writer thread, or on the caller when it needs the tree."""
        with self._lock:
            jobs = self._jobs
            while jobs and (upto is None or (upto.event is None and upto.error is None)):
                job = jobs.popleft()
                try:
                    root, written, blobs, normalized, redacted = self._encode(
                        job.items, job.writes, job.deletes)
                    job.event = self._run._assemble(
                        "checkpoint",
                        checkpoint_body(root, written, sorted(job.deletes), normalized, redacted),
                        job.event_id, job.parent_id, job.ts_us, job.in_tool, NO_STATS, blobs)
                except BaseException as exc:
                    self._map = RefMap(self._refs)
                    if not isinstance(exc, Exception):  # interrupted, not wrong: made again
                        jobs.appendleft(job)             # by whoever asks next
                        raise
                    job.error = exc  # the writer drops it and fails the run
                    continue
                self._root = root
                self._known.update(blobs)

    def _now(self, items: Mapping[str, tuple[bytes, list[str]]], writes: list[str],
             deletes: tuple[str, ...], force: bool) -> str | None:
        """Record a checkpoint on the caller's thread (replays and forks compare its root
        with the record's as it is made)."""
        with self._lock:
            root, written, blobs, normalized, redacted = self._encode(items, writes, deletes)
        if root == self._root and not force:
            return None
        try:
            self._run._emit_checkpoint(root, written, sorted(deletes), blobs, normalized,
                                       redacted)
        except BaseException:
            # Not recorded: the nodes made for it are not in the store, so the kept map
            # must not take them as written; the next checkpoint makes them again.
            self._map = RefMap(self._refs)
            raise
        self._root = root
        self._known.update(blobs)
        if not self._run.mode.live:
            edits = self._run.mode.state_edits()
            if edits:
                self._apply(edits)
        return root

    def _encode(self, items: Mapping[str, tuple[bytes, list[str]]], writes: list[str],
                deletes: Iterable[str]
                ) -> tuple[str, list[str], dict[str, bytes], list[str], list[str]]:
        """Put the changed keys (as fixed by :meth:`_fix`) into the kept tree, secrets
        scrubbed; the root, the keys written under their recorded names, the new nodes,
        and the normalized and redacted paths."""
        enc = TreeEncoder()
        for key in deletes:
            self._drop_ref(key)
        changed_keys: list[str] = []
        normalized: list[str] = []
        redacted: list[str] = []
        redactor = default_redactor()
        for key, (data, fixed) in items.items():
            normalized.extend(f"/{key}{p}" for p in fixed)
            if redactor.might_contain(data):
                # The agent keeps its value; the record gets it without secrets.
                scrubbed, paths = redactor.scrub(loads(data))
                if paths:
                    data = canonical(scrubbed)[0]
                    redacted.extend(f"/{_escape(key)}{p}" for p in paths)
            ref = enc.encode_bytes(data)
            if self._refs.get(key) != ref:
                changed_keys.append(key)
            self._put_ref(key, ref)
        root = self._root_of(enc)
        new_blobs = {h: b for h, b in enc.blobs.items() if h not in self._known}
        written = sorted({self._renamed.get(k, k) for k in (*writes, *changed_keys)})
        return root, written, new_blobs, normalized, sorted(redacted)

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

    def _root_of(self, enc: TreeEncoder) -> str:
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
        with self._order:
            self._settle()
            enc = TreeEncoder()
            for key in deletes:
                self._data.pop(key, None)
                self._drop_ref(key)
            for key, value in values.items():
                self._data[key] = value
                self._put_ref(key, enc.encode_bytes(canonical(value)[0]))
            root = self._root_of(enc) if self._refs else None
            self._known.update(enc.blobs)
            self._root = root

    def _write_served(self, values: Mapping[str, Any], deletes: Iterable[str],
                      recorded: bool) -> None:
        """Apply what a tool served from the record wrote to the state when it ran: taken
        on silently when the record already holds it, else recorded as a checkpoint."""
        if recorded:
            self._absorb(values, deletes)
        else:
            self._set(dict(values), tuple(k for k in deletes if k in self._data))


class _Deferred:
    """A checkpoint queued on the writer with its content fixed (each key's canonical bytes)
    and its event's id, parent and time taken at assignment; its tree, root and body are
    made when the writer takes it, or sooner if the caller needs the root."""

    __slots__ = ("deletes", "error", "event", "event_id", "in_tool", "items", "parent_id",
                 "run_id", "state", "ts_us", "writes")

    def __init__(self, state: RunState, items: dict[str, tuple[bytes, list[str]]],
                 writes: list[str], deletes: tuple[str, ...], event_id: str,
                 parent_id: str | None, ts_us: int, in_tool: bool) -> None:
        self.state = state
        self.run_id = state._run.run_id
        self.items = items
        self.writes = writes
        self.deletes = deletes
        self.event_id = event_id
        self.parent_id = parent_id
        self.ts_us = ts_us
        self.in_tool = in_tool
        self.event: PendingEvent | None = None
        self.error: BaseException | None = None

    def resolve(self) -> PendingEvent:
        if self.event is None and self.error is None:
            self.state._settle(self)
        if self.error is not None:
            raise self.error
        if self.event is None:  # not among the state's queued checkpoints: a fault of ours
            raise RecordingError(f"run {self.run_id}: a queued checkpoint was never made")
        return self.event


def _small(items: Mapping[str, tuple[bytes, list[str]]], writes: list[str],
           deletes: tuple[str, ...], limit: int) -> bool:
    """Whether the checkpoint's event body is surely within the payload limit (its keys and
    normalized paths, with room for escapes and scrubbed names), so that a checkpoint over
    the limit is refused on the caller, as before. Only the redacted paths, known once the
    value is scanned, are left out: a value holding secrets under that many paths fails its
    run at the next flush instead, with the reason."""
    size = (sum(map(len, items)) + sum(map(len, writes)) + sum(map(len, deletes))
            + sum(len(path) for _, fixed in items.values() for path in fixed))
    return 16 * size + 4096 <= limit


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
