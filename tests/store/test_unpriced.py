"""Model calls recorded without a cost (migration 0010_unpriced_calls): the summary counts
them, so a run whose calls carry no price shows an unknown cost, not $0; on SQLite and
PostgreSQL, for new runs and for stores made before the column."""

from __future__ import annotations

from sqlalchemy import delete

from agentlab.analysis import metrics_summary
from agentlab.model import cost_text
from agentlab.query import runs_df
from agentlab.store import SqlStore, open_store
from agentlab.store._schema import migrations
from agentlab.store._schema import runs as runs_table

from .helpers import T0_US, RunBuilder

REPLAYED = -1.0
"""A call served from the record on a replay: no cost, and none owed."""


def _run(store: SqlStore, costs: list[float | None], *, t0_us: int = T0_US,
         metadata_note: str | None = None) -> str:
    """A succeeded run with one model call per cost (None: no cost recorded)."""
    b = RunBuilder(t0_us=t0_us)
    calls = []
    for cost in costs:
        fields: dict[str, object] = {"model": "m-1", "input_tokens": 3, "output_tokens": 2}
        if cost == REPLAYED:
            fields["replayed"] = {"from_run": "r-0", "seq": 2}
        elif cost is not None:
            fields["cost_usd"] = cost
        elif metadata_note is not None:  # a cost named elsewhere in the body, not the call's
            fields["metadata"] = {"cost_usd": 9.0, "note": metadata_note}
        calls.append(b.event("llm_call", fields))
    store.append([b.started(), *calls, b.ended("succeeded", success=True)])
    return b.run_id


def test_the_summary_counts_calls_without_a_cost(store: SqlStore) -> None:
    priced = _run(store, [0.25, 0.0])  # a free call is priced: it cost nothing
    mixed = _run(store, [0.5, None, None], t0_us=T0_US + 1000)
    unknown = _run(store, [None, None], t0_us=T0_US + 2000)
    replayed = _run(store, [REPLAYED], t0_us=T0_US + 3000)
    got = {r: (store.run(r).cost_usd, store.run(r).unpriced_count, store.run(r).shown_cost)
           for r in (priced, mixed, unknown, replayed)}
    assert got == {priced: (0.25, 0, "$0.2500"), mixed: (0.5, 2, "$0.5000+"),
                   unknown: (0.0, 2, "-"), replayed: (0.0, 0, "$0.0000")}
    assert all(rep.ok for rep in store.verify())

    [row] = metrics_summary(store, by=())
    assert row.unpriced_calls == 4
    assert row.cost_total == 0.75 and row.cost_per_success == 0.75 / 4  # a lower bound
    frame = runs_df(store, engine="polars")
    assert dict(zip(frame["run_id"], frame["unpriced_count"], strict=True)) == {
        priced: 0, mixed: 2, unknown: 2, replayed: 0}


def test_a_group_with_no_priced_call_has_no_cost_per_success(store: SqlStore) -> None:
    _run(store, [None])
    [row] = metrics_summary(store, by=())
    assert row.unpriced_calls == 1 and row.cost_total == 0.0
    assert row.cost_per_success is None  # unknown, where it said $0 before


def test_cost_text() -> None:
    assert cost_text(1.5, 0) == "$1.5000" and cost_text(0.0, 0) == "$0.0000"
    assert cost_text(0.0, 3) == "-" and cost_text(0.01, 1) == "$0.0100+"


def test_a_store_made_before_the_column_counts_its_calls(
        store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    store = open_store(url, schema=schema)
    try:
        priced = _run(store, [0.25])
        mixed = _run(store, [0.5, None], t0_us=T0_US + 1000,
                     metadata_note="a nested key must not pass for the call's cost")
        unknown = _run(store, [None, None, None], t0_us=T0_US + 2000)
        replayed = _run(store, [REPLAYED, None], t0_us=T0_US + 3000)
        with store.atomic() as conn:  # the store as 0001-0009 left it
            conn.exec_driver_sql(f"ALTER TABLE {runs_table.name} DROP COLUMN unpriced_count")
            conn.execute(delete(migrations).where(migrations.c.name == "0010_unpriced_calls"))
    finally:
        store.close()
    store = open_store(url, schema=schema)
    try:
        assert {r: store.run(r).unpriced_count
                for r in (priced, mixed, unknown, replayed)} == {
            priced: 0, mixed: 1, unknown: 3, replayed: 1}
        assert all(rep.ok for rep in store.verify())  # the counts agree with the events
    finally:
        store.close()


def test_the_cli_says_unknown_not_zero(store: SqlStore, store_cli_url: str) -> None:
    from click.testing import CliRunner

    from agentlab.cli import cli

    priced = _run(store, [0.25])
    mixed = _run(store, [0.5, None], t0_us=T0_US + 1000)
    unknown = _run(store, [None, None], t0_us=T0_US + 2000)

    listing = CliRunner().invoke(cli, ["runs", "--store", store_cli_url])
    assert listing.exit_code == 0, listing.output
    cost = {line.split()[0]: line.split()[-3] for line in listing.output.splitlines()[1:]}
    short = store.short_ids([priced, mixed, unknown])
    assert (cost[short[priced]], cost[short[mixed]], cost[short[unknown]]) == (
        "$0.2500", "$0.5000+", "-")

    shown = CliRunner().invoke(cli, ["show", unknown, "--store", store_cli_url])
    assert "cost     - (2 of 2 model calls recorded no cost)" in shown.output

    table = CliRunner().invoke(cli, ["metrics", "--by", "", "--store", store_cli_url])
    assert table.exit_code == 0, table.output
    row = table.output.splitlines()[1].split()
    assert row[5] == f"${0.75 / 3:,.4f}+"  # $/SUCCESS: the priced calls' cost, a lower bound
    assert "3 model calls recorded no cost" in table.output
