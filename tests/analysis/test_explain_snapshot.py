"""A snapshot of explain's structured output for a small deterministic pair of runs.

Regenerate after an intended change with ``AGENTLAB_UPDATE_SNAPSHOTS=1 pytest this_file``
and review the diff like code.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import agentlab as al
from agentlab.analysis import explain

SNAPSHOT = Path(__file__).parent / "snapshots" / "explain_small.json"


def _record(store: al.SqlStore, run_id: str, plan: str, ok: bool, t0: int) -> None:
    ticks = itertools.count(t0, 1_000_000)
    ids = (f"{run_id}-{i:04d}" for i in itertools.count())

    @al.tool
    def lookup(account: str) -> dict[str, Any]:
        return {"plan": plan, "as_of": "2026-01-02T00:00:00Z" if ok else "2026-01-01T00:00:00Z"}

    @al.tool
    def entitlement(plan: str) -> str:
        return "premier" if plan == "enterprise" else "standard"

    with al.record_run("triage", agent="bot", task_id="T-1", store=store, run_id=run_id,
                       clock=lambda: next(ticks), id_factory=lambda: next(ids)) as run:
        with al.step("account"):
            run.state["account"] = lookup("ACME")
        with al.step("entitlement"):
            run.state["tier"] = entitlement(run.state["account"]["plan"])
        run.outcome(success=ok)


def test_explain_output_is_stable(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "snap.db")
    _record(store, "good-run", "enterprise", True, 1_700_000_000_000_000_000)
    _record(store, "bad-run", "standard", False, 1_700_000_100_000_000_000)
    got = explain(store, "bad-run").to_dict()
    store.close()
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    if os.environ.get("AGENTLAB_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "explain output changed; see the module docstring"
    assert got["culprits"][0]["name"] == "lookup"


def _check_snapshot(name: str, got: dict[str, Any]) -> None:
    path = SNAPSHOT.with_name(name)
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    if os.environ.get("AGENTLAB_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert text == path.read_text(), f"explain output changed ({name}); see the module docstring"


def test_explain_of_an_imported_tau_bench_run_is_stable(tmp_path: Path,
                                                       airline_subset: Path) -> None:
    """A failing trial explained on its own (no sibling): the expectation evidence."""
    from agentlab.integrations import import_tau_bench

    store = al.open_store(tmp_path / "tau.db")
    import_tau_bench(airline_subset, store, model="gpt-4o")
    bad = next(r for r in sorted(store.runs(), key=lambda r: r.run_id) if r.success is False
               and explain(store, r.run_id, siblings=[]).culprits[0].evidence[0].kind
               == "wrong-arguments")
    got = explain(store, bad.run_id, siblings=[]).to_dict()
    store.close()
    _check_snapshot("explain_tau_bench.json", got)
    top = got["culprits"][0]
    assert top["evidence"][0]["kind"] == "wrong-arguments" and top["source"].startswith("traj[")


def test_explain_of_an_imported_who_and_when_run_is_stable(tmp_path: Path,
                                                          third_party: Path) -> None:
    """A multi-agent group chat: the culprit names its agent and its place in the file."""
    from agentlab.integrations import import_who_and_when

    store = al.open_store(tmp_path / "ww.db")
    [run_id] = import_who_and_when(
        third_party / "who-and-when" / "algorithm-generated" / "4.json.gz", store)
    got = explain(store, run_id).to_dict()
    store.close()
    _check_snapshot("explain_who_and_when.json", got)
    top = got["culprits"][0]
    # the human label of this run: history[2], HawaiiRealEstate_Expert stated the wrong price
    assert (top["source"], top["agent"]) == ("history[2]", "HawaiiRealEstate_Expert")
