"""State lineage on the sample agent's runs and on a constructed run."""

from __future__ import annotations

from pathlib import Path

import agentlab as al
from agentlab.analysis import lineage
from agentlab.demo import run_demo


def test_lineage_of_a_constructed_run(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "l.db")

    @al.tool
    def lookup(account_id: str) -> dict[str, str]:
        return {"plan": "standard"}

    with al.record_run("w", agent="a", store=store, state={"ticket": {"id": "T1"}}) as run:
        with al.step("fetch"):
            ticket = run.state["ticket"]
            run.state["account"] = lookup(ticket["id"])
        with al.step("decide"):
            plan = run.state["account"]["plan"]
            run.state["priority"] = "low" if plan == "standard" else "urgent"
        run.llm_call("gpt-4o", input_tokens=1, output_tokens=1)
    events = store.events(run.run_id)
    seq = {(e.kind, getattr(e, "name", None)): e.seq for e in events}
    lin = lineage(events)
    assert list(lin) == ["account", "priority", "ticket"]
    assert [(w.kind, w.name) for w in lin["ticket"].writes] == [("checkpoint", "run")]
    assert [(r.kind, r.name, r.seq) for r in lin["ticket"].reads] == [
        ("step", "fetch", seq[("step", "fetch")])]
    assert [(w.kind, w.name) for w in lin["account"].writes] == [("step", "fetch")]
    assert [(r.name) for r in lin["account"].reads] == ["decide"]
    decide_seq = seq[("step", "decide")]
    last = lin["account"].last_write_before(decide_seq)
    assert last is not None and last.name == "fetch"
    assert [(w.name) for w in lin["priority"].writes] == ["decide"]
    assert lin["priority"].reads == []
    store.close()


def test_lineage_of_the_demo_bad_run_traces_the_account(tmp_path: Path) -> None:
    store = al.open_store(tmp_path / "demo.db")
    result = run_demo(store)
    lin = lineage(store.events(result.bad_run_id))
    assert [w.name for w in lin["account"].writes] == ["account"]
    readers = {r.name for r in lin["account"].reads}
    assert {"entitlement", "decide"} <= readers
    assert [w.name for w in lin["entitlement"].writes] == ["entitlement"]
    assert "decide" in {r.name for r in lin["entitlement"].reads}
    store.close()
