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
