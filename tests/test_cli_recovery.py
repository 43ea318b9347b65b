"""The recovery commands as a user types them: replay, fork, resume, rollback and
explain --counterfactual on the demo's runs, with their reports, JSON and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agentlab.cli import cli
from agentlab.demo import run_demo
from agentlab.store import open_store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("cli-recovery") / "demo.db"
    store = open_store(db)
    result = run_demo(store)
    lookup = next(e for e in store.events(result.bad_run_id, kinds=["tool_call"])
                  if e.tool == "lookup_account")  # type: ignore[union-attr]
    good_lookup = next(e for e in store.events(result.good_run_id, kinds=["tool_call"])
                       if e.tool == "lookup_account")  # type: ignore[union-attr]
    store.close()
    return {"db": str(db), "bad": result.bad_run_id, "good": result.good_run_id,
            "lookup_seq": lookup.seq, "fresh": good_lookup.result}  # type: ignore[union-attr]


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_a_strict_replay_of_unchanged_code_is_identical(demo: dict[str, Any]) -> None:
    out = _run("replay", demo["bad"][:12], "--store", demo["db"])
    assert out.exit_code == 0, out.output
    assert "strict replay" in out.output and "identical to the record" in out.output
    data = json.loads(_run("replay", demo["bad"], "--store", demo["db"], "--json").output)
    assert data["identical"] and data["mode"] == "strict" and data["divergences"] == []


def test_replay_after_the_fix_needs_live_reads_then_flips(demo: dict[str, Any]) -> None:
    args = ["replay", demo["bad"], "--store", demo["db"], "--agent",
            "agentlab.demo:triage_fixed"]
    stopped = _run(*args)
    assert stopped.exit_code == 1
    assert "replay diverged at seq" in stopped.output and "--live-reads" in stopped.output
    data = json.loads(_run(*args, "--json").output.split("\nagentlab: error")[0])
    assert data["stopped"]["actual"]["name"] == "refresh_account"
    flipped = _run(*args, "--live-reads")
    assert flipped.exit_code == 0, flipped.output
    assert "the outcome flipped" in flipped.output and "after-fix replay" in flipped.output
    assert _run("replay", demo["bad"], "--store", demo["db"], "--strict",
                "--live-reads").exit_code == 1


def test_fork_with_an_edited_result_or_state(demo: dict[str, Any]) -> None:
    out = _run("fork", demo["bad"], "--store", demo["db"], "--at", str(demo["lookup_seq"]),
               "--set-result", json.dumps(demo["fresh"]), "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["kind"] == "fork" and data["flipped"] and data["fork_seq"] == demo["lookup_seq"]
    wrong = _run("fork", demo["bad"], "--store", demo["db"], "--at", "1", "--set-result", "{}")
    assert wrong.exit_code == 1 and "is not one of its calls" in wrong.output
    bad_json = _run("fork", demo["bad"], "--store", demo["db"], "--at", "7",
                    "--set-result", "{not json")
    assert bad_json.exit_code == 1 and "is not JSON" in bad_json.output
    both = _run("fork", demo["bad"], "--store", demo["db"], "--at", "7")
    assert both.exit_code == 1 and "exactly one edit" in both.output
    state = _run("fork", demo["bad"], "--store", demo["db"], "--at", "8", "--set-state",
                 'account/plan="enterprise"')
    assert state.exit_code == 0 and "the outcome flipped" in state.output, state.output
    assert _run("fork", demo["bad"], "--store", demo["db"], "--at", "8", "--set-state",
                "noequals").exit_code == 1


def test_explain_with_counterfactuals(demo: dict[str, Any]) -> None:
    out = _run("explain", demo["bad"], "--store", demo["db"], "--counterfactual", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    top = data["culprits"][0]
    assert top["name"] == "lookup_account" and top["evidence"][0]["kind"] == "counterfactual"
    assert data["counterfactual"]["trials"]
    limited = json.loads(_run("explain", demo["bad"], "--store", demo["db"],
                              "--counterfactual", "--max-forks", "1", "--json").output)
    assert len(limited["counterfactual"]["trials"]) == 1 and limited["counterfactual"]["exhausted"]


def test_resume_and_rollback_say_what_they_cannot_do(demo: dict[str, Any]) -> None:
    ended = _run("resume", demo["bad"], "--store", demo["db"])
    assert ended.exit_code == 1 and "already ended" in ended.output
    # The demo's sample systems lived in the process that recorded it: from the command
    # line nothing holds their compensations, and the rollback lists every side effect.
    rb = _run("rollback", demo["bad"], "--store", demo["db"], "--json")
    assert rb.exit_code == 1
    data = json.loads(rb.output.split("\nagentlab: error")[0])
    assert {u["status"] for u in data["undos"]} == {"no_compensation"}
    assert not data["complete"]


def test_recovery_runs_are_listed_with_their_kind(demo: dict[str, Any]) -> None:
    out = _run("runs", "--store", demo["db"])
    assert "(replay)" in out.output and "(fork)" in out.output
    runs = json.loads(_run("runs", "--store", demo["db"], "--json").output)
    replays = [r for r in runs if r["run_kind"] == "replay"]
    assert replays and all(r["parent_run_id"] == demo["bad"] for r in replays)
    shown = _run("show", replays[0]["run_id"], "--store", demo["db"])
    assert "replay of" in shown.output and "[served from the record seq" in shown.output


def test_a_missing_run_or_agent_is_a_one_line_error(demo: dict[str, Any], tmp_path: Path) -> None:
    missing = _run("replay", "nope", "--store", demo["db"])
    assert missing.exit_code == 1 and "no run with id" in missing.output
    no_agent = _run("replay", demo["bad"], "--store", demo["db"], "--agent", "nosuch:thing")
    assert no_agent.exit_code == 1 and "cannot import" in no_agent.output
