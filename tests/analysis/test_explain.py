"""explain, culprit ranking, stale reads and investigations, on runs with known culprits."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import agentlab as al
from agentlab.analysis import (
    conclude,
    explain,
    investigate,
    mtte_seconds,
    rank_culprits,
    stale_reads,
)
from agentlab.cli import cli
from agentlab.errors import InvestigationError
from agentlab.store import SqlStore
from agentlab.testing import allow_all


@pytest.fixture
def db(tmp_path: Path) -> SqlStore:
    return al.open_store(tmp_path / "explain.db")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqlStore, Any]:
    from agentlab.demo import run_demo

    store = al.open_store(tmp_path_factory.mktemp("demo") / "demo.db")
    return store, run_demo(store, out=None)


def test_the_demos_bad_run_blames_the_stale_account_lookup(demo: tuple[SqlStore, Any]) -> None:
    store, result = demo
    ex = explain(store, result.bad_run_id)
    top = ex.culprit
    assert top is not None and top.name == "lookup_account"
    kinds = [e.kind for e in top.evidence]
    assert kinds[:2] == ["differed-from-sibling", "stale"] and "fed-symptom" in kinds
    assert ex.sibling_run_id == result.good_run_id
    assert ex.sibling is not None and ex.sibling.a is not None
    assert (ex.sibling.a.name, ex.sibling.a.arguments) == ("check_entitlement",
                                                          '{"plan":"standard"}')
    # which credential made each call: every call names its grant and key fingerprint
    assert ex.calls and all(c.grant and c.credential for c in ex.calls)
    assert any(c.approval and c.approval.startswith("edit by") for c in ex.calls)
    assert any(s.writer == "account" and s.changes[0].path == "/account" for s in ex.state)
    assert ex.replay is not None and ex.replay.ready
    data = json.loads(json.dumps(ex.to_dict()))
    assert data["culprits"][0]["name"] == "lookup_account"
    text = ex.to_text().split("\n")
    # The run's size in the words every view uses, then the first culprit.
    assert text[1] == ("33 events: 7 steps, 9 calls (3 model, 6 tool), 8 state writes, "
                       "2 approvals")
    assert data["counts"]["events"] == 33 == ex.run.last_seq
    assert "lookup_account" in text[4]
    assert "<b>seq" in ex._repr_html_() and "lookup_account" in ex._repr_html_()
    good = explain(store, result.good_run_id)
    assert good.culprits == [] or good.culprits[0].name != "lookup_account"


def test_a_rejected_call_weighs_on_the_decision_and_what_it_read(
        demo: tuple[SqlStore, Any]) -> None:
    """T-1004: the lead rejects the priority drop. The refusal is the system working: the
    evidence goes to the model call whose response carried the rejected arguments, and to
    the result its decision read; the refused call itself ranks below both."""
    store, result = demo
    ex = explain(store, result.rejected_run_id)
    names = [c.name for c in ex.culprits]
    top = ex.culprits[0]
    assert top.kind == "llm_call" and {"denied", "overridden"} <= {e.kind for e in top.evidence}
    assert "read_ticket" in names
    assert "set_priority" not in names or names.index("read_ticket") < names.index(
        "set_priority")


def _two_runs(db: SqlStore, results: list[Any]) -> list[str]:
    """Two runs of one task: the tool's result differs, and so does what the agent does."""

    @al.tool
    def fetch(key: str) -> Any:
        return results.pop(0)

    @al.tool
    def act(mode: str) -> str:
        return mode

    ids = []
    for ok in (True, False):
        with al.record_run("wf", agent="a", task_id="t1", store=db) as run:
            value = fetch("k")
            run.state["value"] = value
            act("fast" if run.state["value"]["n"] > 1 else "slow")
            run.outcome(success=ok)
        ids.append(run.run_id)
    return ids


def test_a_result_that_differed_from_the_successful_sibling_ranks_first(db: SqlStore) -> None:
    good, bad = _two_runs(db, [{"n": 2}, {"n": 0}])
    ex = explain(db, bad)
    assert ex.sibling_run_id == good
    assert [(c.name, c.evidence[0].kind) for c in ex.culprits[:2]] == [
        ("fetch", "differed-from-sibling"), ("act", "branch-point")]


def test_stale_over_its_bound_and_newer_value_existed(db: SqlStore) -> None:
    @al.tool
    def lookup(account: str, version: int) -> dict[str, Any]:
        return {"plan": "x", "cache_age_s": 7200 if version == 1 else 5,
                "as_of": f"2026-01-0{version}T00:00:00Z"}

    with al.record_run("wf", agent="a", store=db) as run:
        lookup("A", 2)
        lookup("A", 1)
    events = db.events(run.run_id)
    over = stale_reads(events, freshness={"look*": timedelta(hours=1)})
    assert [(s.seq, s.reason, s.age_s) for s in over] == [(3, "over-bound", 7200.0)]
    # without a bound, the same source: arguments differ, so neither is "newer" of the other
    assert stale_reads(events) == []

    @al.tool
    def profile(account: str) -> dict[str, Any]:
        return profiles.pop(0)

    profiles = [{"as_of": "2026-01-05T00:00:00Z"}, {"as_of": "2026-01-01T00:00:00Z"}]
    with al.record_run("wf", agent="a", store=db) as run:
        profile("A")
        profile("A")
    [found] = stale_reads(db.events(run.run_id))
    assert (found.seq, found.reason, found.newer_seq) == (3, "newer-existed", 2)
    assert "4.0 days newer" in found.detail


def test_an_overridden_call_is_traced_back_to_the_results_it_read(db: SqlStore) -> None:
    @al.tool
    def read_customer(cid: str) -> dict[str, Any]:
        return {"tier": "free"}

    @al.tool
    def unrelated() -> int:
        return 1

    @al.tool(side_effect=True, scope="billing:refund")
    def refund(amount: int) -> int:
        return amount

    reject = al.Policy([al.Rule("ask", "approve", tool="refund")])
    with al.record_run("wf", agent="a", store=db, grants=[allow_all(db, agent="a")],
                       policy=reject, approver=lambda req, m: m.reject(
                           req.id, by="ann", reason="free tier gets no refunds")) as run:
        run.state["customer"] = read_customer("c1")
        unrelated()
        with al.step("decide"):
            amount = 100 if run.state["customer"]["tier"] == "free" else 0
            with pytest.raises(al.ToolDeniedError):
                refund(amount)
    culprits = rank_culprits(db.events(run.run_id))
    names = [c.name for c in culprits]
    assert names.index("refund") >= 0 and "unrelated" not in names
    fed = next(c for c in culprits if c.name == "read_customer")
    assert [e.kind for e in fed.evidence] == ["fed-symptom"]


def test_a_tool_error_the_run_carried_on_after_is_a_candidate(db: SqlStore) -> None:
    @al.tool
    def flaky() -> None:
        raise TimeoutError("upstream")

    @al.tool
    def fallback() -> str:
        return "guess"

    with al.record_run("wf", agent="a", store=db) as run:
        try:
            flaky()
        except TimeoutError:
            run.state["answer"] = fallback()
        run.outcome(success=False)
    ex = explain(db, run.run_id)
    assert ex.culprit is not None and ex.culprit.name == "flaky"
    assert ex.culprit.evidence[0].kind == "error-continued"
    assert ex.notes == ["no successful run of the same task to compare with",
                        "no expected actions or outputs to hold the run against"]


def test_investigations_measure_time_to_explain(db: SqlStore) -> None:
    t = [1_000_000_000_000_000_000]

    def clock() -> int:
        return t[0]

    with al.record_run("wf", agent="a", store=db) as run:
        run.state["x"] = 1
    opened = investigate(db, run.run_id, by="ann", clock=clock)
    assert investigate(db, run.run_id, by="bob", clock=clock).id == opened.id  # still open
    t[0] += 90 * 10**9
    done = conclude(db, run.run_id, culprit_seq=2, note="x was wrong", by="ann", clock=clock)
    assert done.seconds_to_explain == 90.0 and done.culprit_seq == 2
    with pytest.raises(InvestigationError, match="not a step"):
        conclude(db, run.run_id, culprit_seq=99, by="ann")
    t[0] += 10**9
    quick = conclude(db, run.run_id, culprit_seq=None, note="again", by="bob", clock=clock)
    assert quick.seconds_to_explain == 0.0          # concluded without opening first
    assert mtte_seconds(db.investigations()) == 45.0
    assert mtte_seconds([]) is None


def test_cli_explain_investigate_conclude(demo: tuple[SqlStore, Any]) -> None:
    store, result = demo
    runner = CliRunner()
    url = store.url
    out = runner.invoke(cli, ["explain", result.bad_run_id[:12], "--store", url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["culprits"][0]["name"] == "lookup_account"
    out = runner.invoke(cli, ["investigate", result.bad_run_id, "--store", url, "--as", "ann"])
    assert out.exit_code == 0 and "--culprit 7" in out.stdout, out.output
    out = runner.invoke(cli, ["conclude", result.bad_run_id, "--store", url, "--as", "ann",
                              "--culprit", "7", "--note", "stale cache", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["culprit_seq"] == 7
    bad = runner.invoke(cli, ["explain", result.bad_run_id, "--store", url,
                              "--freshness", "lookup_account=soon"])
    assert bad.exit_code == 1 and "is not a duration" in bad.output
    none = runner.invoke(cli, ["conclude", result.bad_run_id, "--store", url])
    assert none.exit_code == 1 and "--culprit" in none.output
