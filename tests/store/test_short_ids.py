"""Printed ids name one run each: listings print the shortest prefix (at least 8 characters)
that is unique in the store, and any unique prefix opens its run. UUIDv7 ids made within
one millisecond share their first 12 characters, so a fixed 12-character cut is ambiguous."""

from __future__ import annotations

from collections import Counter

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.cli import cli
from agentlab.errors import AmbiguousIdError
from agentlab.model import new_id
from agentlab.store import RunFilter, SqlStore
from agentlab.store._read import unique_prefixes
from agentlab.store._schema import runs as runs_table

from .helpers import RunBuilder


def test_every_printed_id_of_a_thousand_quick_runs_opens_its_own_run(
        store: SqlStore, store_url: tuple[str, str | None]) -> None:
    # Ids made in a tight loop, as by processes starting runs at once: many share their
    # millisecond, so their first 12 characters.
    fresh = [new_id() for _ in range(1000)]
    store.append([RunBuilder(rid).started(task_id=f"t{i}") for i, rid in enumerate(fresh)])
    with al.record_run("quick", agent="bot", store=store):  # and one the recorder started
        pass
    ids = [r.run_id for r in store.runs(RunFilter(limit=2000))]
    assert len(ids) == 1001
    twelve = Counter(i[:12] for i in ids)
    assert max(twelve.values()) > 1, "the loop should have made ids sharing 12 characters"

    url, schema = store_url
    cli_url = url if schema is None else f"{url}?options=-csearch_path%3D{schema}"
    out = CliRunner().invoke(cli, ["runs", "--store", cli_url, "--limit", "2000"])
    assert out.exit_code == 0, out.output
    printed = [line.split()[0] for line in out.output.splitlines()[1:]]
    assert len(printed) == 1001
    assert all(len(p) >= 8 for p in printed) and max(map(len, printed)) > 12
    by_prefix = {p: store.run(p).run_id for p in printed}  # each opens one run ...
    assert sorted(by_prefix.values()) == sorted(ids)  # ... and all of them, once each
    # An ambiguous prefix says so and lists the runs it could mean.
    shared = next(k for k, n in twelve.items() if n > 1)
    with pytest.raises(AmbiguousIdError, match="names more than one run") as caught:
        store.run(shared)
    assert sum(i in str(caught.value) for i in ids if i.startswith(shared)) >= 2
    assert len(caught.value.candidates) >= 2
    assert all(c.startswith(shared) for c in caught.value.candidates)
    shown = CliRunner().invoke(cli, ["show", printed[0], "--store", cli_url])
    assert shown.exit_code == 0 and by_prefix[printed[0]] in shown.output


def test_prefixes_of_ids_that_are_not_hex_are_checked_by_count(store: SqlStore) -> None:
    # Imported ids may hold punctuation, which a database collation may sort apart from
    # the ids sharing its prefix: those prefixes are counted, not read off neighbours.
    made = []
    for rid in ("who-and-when:aa-1", "who-and-when:aa-2", "who-and-when:b", "other"):
        b = RunBuilder(rid)
        store.append([b.started()])
        made.append(rid)
    with store._db.read() as conn:
        got = unique_prefixes(conn, runs_table.c.run_id, made)
    assert got == {"who-and-when:aa-1": "who-and-when:aa-1",
                   "who-and-when:aa-2": "who-and-when:aa-2",
                   "who-and-when:b": "who-and-when:b", "other": "other"}
    assert {p: store.run(p).run_id for p in got.values()} == {p: p for p in made}
