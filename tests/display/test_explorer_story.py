"""The explorer on the sample store's story: what it says where the bad run parts from the
good one, and about the stale lookup that caused it."""

from __future__ import annotations

from pathlib import Path

import agentlab as al


def test_compare_names_the_arguments_that_differ_and_the_step_its_staleness(
        tmp_path: Path) -> None:
    """Two calls of one tool with other arguments read as such, not as "the same call";
    a stale result says how old it was against its bound."""
    from agentlab.demo import build_sample_store
    from agentlab.display._explorer_pages import ExplorerPages

    store = al.open_store(tmp_path / "sample.db")
    try:
        story = build_sample_store(store, waiting=False)
        pages = ExplorerPages(store)
        d = pages.handle({"type": "compare", "a": story.bad_run_id, "b": story.good_run_id})
        dv = d["divergence"]
        assert dv["a"] == dv["b"] == "check_entitlement"
        assert dv["arguments"] == [{"name": "plan", "a": '"standard"', "b": '"enterprise"'}]
        row = pages.handle({"type": "runs", "filters": {"search": story.bad_run_id[:12]}})
        assert row["rows"][0]["counts"].startswith("33 events: 9 calls (3 model, 6 tool)")
        lookup = next(e for e in store.events(story.bad_run_id, kinds=["tool_call"])
                      if e.tool == "lookup_account")
        step = pages.handle({"type": "step", "run_id": story.bad_run_id, "seq": lookup.seq})
        assert step["stale"]["age_s"] == 212400 and step["stale"]["bound_s"] == 3600
    finally:
        store.close()
