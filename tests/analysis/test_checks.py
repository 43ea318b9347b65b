"""Each evidence kind decides a ranking: in a small support-agent run with one planted fault,
the step the evidence points at ranks first, and without that evidence it would not.

Runs are recorded into a real SQLite store (``_runs.record`` plays a script through the
recorder; governed, sibling and counterfactual runs are recorded with real tools, policies
and agents).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
from agentlab.analysis import _checks as checks_module
from agentlab.analysis import explain, rank_culprits
from agentlab.analysis._checks import DEFAULT_CHECKS, Check, installed_checks
from agentlab.analysis._culprits import Culprit, default_checks
from agentlab.analysis._evidence import KINDS, WEIGHTS, Evidence, Finding
from agentlab.analysis._view import RunView
from agentlab.approval import ApprovalManager
from agentlab.model import ApprovalRequest, ToolCallEvent
from agentlab.store import SqlStore
from agentlab.testing import allow_all

from ._runs import Call, Model, Recorded, Say, Step, System, User, record

ORDER = "W123456"


@pytest.fixture
def db(tmp_path: Path) -> SqlStore:
    return al.open_store(tmp_path / "checks.db")


def kinds(c: Culprit | None) -> list[str]:
    assert c is not None
    return [e.kind for e in c.evidence]


def kinds_of(culprits: Iterable[Culprit], kind: str) -> Iterator[Evidence]:
    """The evidence of ``kind`` on any of the culprits."""
    return (e for c in culprits for e in c.evidence if e.kind == kind)


def dropping(kind: str) -> list[Check]:
    """The default checks, with every finding of ``kind`` left out."""

    def without(check: Check) -> Check:
        def filtered(view: RunView) -> list[Finding]:
            return [f for f in check(view) if f.kind != kind]
        return filtered

    return [without(c) for c in DEFAULT_CHECKS]


def asks(tool: str, **arguments: Any) -> Model:
    """A model response asking for one tool call."""
    return Model({"tool_calls": [{"name": tool, "arguments": arguments}]})


LOOKUP = Call("lookup_order", {"order_id": ORDER},
              {"order_id": ORDER, "total": 1200.5, "payment_id": "PAY-1001"})
# competing evidence, weaker than the planted fault's
TIMEOUT = Call("lookup_order", {"order_id": ORDER}, error="timeout")          # error-recovered
LOYALTY_DOWN = Call("get_loyalty_points", {"customer_id": "C-88"},
                    error="service down")                                     # error-continued


# -- the checks' kinds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    script: Sequence[Step]
    planted: int
    """The index, in the script, of the step the fault was planted in."""
    expected: dict[str, Any] | None = None


CASES: dict[str, Case] = {
    # the agent's code passes a payment id nobody gave (the lookup said PAY-1001)
    "invented-value": Case([
        User(f"Please refund order {ORDER}, it arrived broken."),
        LOOKUP, LOYALTY_DOWN,
        Call("refund", {"order_id": ORDER, "payment_id": "PAY-7777"}, {"refund_id": "RF-1"},
             write=True),
        Say("Your refund is on its way."),
    ], planted=3),
    # the model asks for the wrong order; its total is what the answer states
    "wrong-value-origin": Case([
        User(f"How much will I get back for order {ORDER}?"),
        asks("lookup_order", order_id="W123465"),
        Call("lookup_order", {"order_id": "W123465"}, {"order_id": "W123465", "total": 89.99}),
        Say("You will get $89.99 back."),
    ], planted=1, expected={"outputs": ["1200.50"]}),
    # the lookup gave the right total, and the answer states the shipping fee instead
    "ignored-correct-value": Case([
        User(f"How much will I get back for order {ORDER}?"),
        asks("lookup_order", order_id=ORDER),
        Call("lookup_order", {"order_id": ORDER},
             {"order_id": ORDER, "total": 1200.5, "shipping": 35}),
        Say("You will get $35 back."),
    ], planted=3, expected={"outputs": ["1200.50"]}),
    # the user wants 1 of 2 mugs back; the model returns 2
    "wrong-arguments": Case([
        User(f"Please return 1 of the 2 mugs from order {ORDER}."),
        Call("check_stock", {"sku": "MUG-42"}, error="warehouse timeout"),
        asks("return_items", order_id=ORDER, quantity=2),
        Call("return_items", {"order_id": ORDER, "quantity": 2}, {"rma": "RMA-1"}, write=True),
        Say("Your return is booked."),
    ], planted=2, expected={"actions": [
        {"name": "return_items", "arguments": {"order_id": ORDER, "quantity": 1}}]}),
    # refunded as asked, then cancelled the order too
    "unexpected-write": Case([
        User(f"Refund order {ORDER} please."),
        LOYALTY_DOWN,
        Call("refund", {"order_id": ORDER}, {"refund_id": "RF-1"}, write=True),
        Call("cancel_order", {"order_id": ORDER}, {"status": "cancelled"}, write=True),
        Say("Refunded and cancelled."),
    ], planted=3, expected={"actions": [{"name": "refund", "arguments": {"order_id": ORDER}}]}),
    # the agent ends the conversation without refunding
    "missing-write": Case([
        User(f"Refund order {ORDER} please."),
        TIMEOUT, LOOKUP,
        Say("I have looked into your order; someone will get back to you."),
    ], planted=3, expected={"actions": [{"name": "refund", "arguments": {"order_id": ORDER}}]}),
    # the payment lookup fails and the agent carries on regardless
    "error-continued": Case([
        User(f"Refund order {ORDER} please."),
        TIMEOUT, LOOKUP,
        Call("get_payment", {"payment_id": "PAY-1001"}, error="gateway down"),
        Say("Done."),
    ], planted=3),
    # the only thing that went wrong: a timeout, retried successfully at once
    "error-recovered": Case([
        User(f"What is the total of order {ORDER}?"),
        TIMEOUT, LOOKUP,
        Say("Your order total is $1,200.50."),
    ], planted=1),
    # cancelling first makes the refund fail
    "precondition": Case([
        User(f"Cancel order {ORDER} and refund it."),
        Call("cancel_order", {"order_id": ORDER}, {"status": "cancelled"}, write=True),
        Call("refund", {"order_id": ORDER}, error=f"order {ORDER} is cancelled", write=True),
        Say("Sorry, the refund failed."),
    ], planted=1),
    # the same refund twice
    "repeated-write": Case([
        User(f"Refund order {ORDER} please."),
        TIMEOUT, LOOKUP,
        Call("refund", {"order_id": ORDER, "amount": 1200.5}, {"refund_id": "RF-1"}, write=True),
        Call("refund", {"order_id": ORDER, "amount": 1200.5}, {"refund_id": "RF-2"}, write=True),
        Say("Refunded."),
    ], planted=4),
    # the system prompt asks for a confirmation the agent never got
    "unconfirmed-write": Case([
        System("You are a support agent. Obtain explicit user confirmation before any refund."),
        User(f"Refund order {ORDER}."),
        TIMEOUT, LOOKUP,
        Call("refund", {"order_id": ORDER, "amount": 1200.5}, {"refund_id": "RF-1"}, write=True),
        Say("Refunded."),
    ], planted=4),
    # the lookup says 1200.5; the answer says 120.05
    "contradicts-result": Case([
        User(f"What is the refund amount for order {ORDER}?"),
        Call("lookup_order", {"order_id": ORDER}, {"order_id": ORDER, "refund_amount": 1200.5}),
        LOYALTY_DOWN,
        Say("Your refund amount: $120.05."),
    ], planted=3),
    # the model, with no lookup, states a total; the refund computed from it is wrong
    "fed-wrong-result": Case([
        User(f"How much will I get back for order {ORDER}?"),
        Model("The order total is 1,450.00 and returns keep 10%."),
        asks("compute_refund", total=1450.0),
        Call("compute_refund", {"total": 1450.0}, {"refund": 1305.0}),
        Say("You will get $1,305.00 back."),
    ], planted=1, expected={"outputs": ["1080.45"]}),
    # the model says it makes the total up
    "stand-in": Case([
        User(f"How much will I get back for order {ORDER}?"),
        LOYALTY_DOWN,
        Model("The order system did not answer, so let's assume the total is $99.00."),
        Say("You will get $99.00 back."),
    ], planted=2),
    # the answer states no amount at all
    "wrong-answer": Case([
        User(f"How much will I get back for order {ORDER}?"),
        TIMEOUT, LOOKUP,
        Say("I could not work out your refund, sorry."),
    ], planted=3, expected={"outputs": ["1200.50"]}),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_checks_evidence_kind_decides_the_ranking(db: SqlStore, kind: str) -> None:
    case = CASES[kind]
    run = record(db, case.script, expected=case.expected)
    planted = run.seqs[case.planted]
    ex = explain(db, run.run_id)
    top = ex.culprit
    assert top is not None and top.seq == planted, ex.to_text()
    assert kind in kinds(top), ex.to_text()
    # without that one kind of evidence the planted step is no longer first
    without = explain(db, run.run_id, checks=dropping(kind))
    assert without.culprits, "a failed run always gets a culprit"
    assert without.culprits[0].seq != planted, without.to_text()
    assert kind not in {e.kind for c in without.culprits for e in c.evidence}


def test_the_table_covers_every_kind_the_checks_can_yield() -> None:
    comparisons = {"counterfactual", "counterfactual-downstream", "differed-from-sibling",
                   "branch-point", "stale", "denied", "overridden", "fed-symptom", "ended-here"}
    assert set(CASES) | comparisons == set(KINDS)


def test_evidence_lands_on_the_model_call_that_asked_for_the_call(db: SqlStore) -> None:
    run = record(db, CASES["wrong-arguments"].script,
                 expected=CASES["wrong-arguments"].expected)
    ex = explain(db, run.run_id)
    top = ex.culprit
    assert top is not None and top.kind == "llm_call" and top.name == "gpt-test"
    [wrong] = [e for e in top.evidence if e.kind == "wrong-arguments"]
    assert "quantity=2 (expected 1)" in wrong.detail
    # the 2 is traced to the user who said it, weighed as the weak value it is
    user = next(c for c in ex.culprits if c.seq == run.seqs[0])
    [origin] = user.evidence
    assert origin.kind == "wrong-value-origin" and origin.weight == pytest.approx(0.3)


def test_a_wrong_value_weighs_by_its_specificity(db: SqlStore) -> None:
    run = record(db, CASES["wrong-value-origin"].script,
                 expected=CASES["wrong-value-origin"].expected)
    ex = explain(db, run.run_id)
    [origin] = [e for e in kinds_of(ex.culprits, "wrong-value-origin")]
    assert origin.weight == pytest.approx(WEIGHTS["wrong-value-origin"] * 0.9)
    assert "89.99" in origin.detail and "lookup_order" in origin.detail
    answer = next(c for c in ex.culprits if c.seq == run.seqs[3])
    assert kinds(answer) == ["wrong-answer"]


def test_a_confirmed_write_is_not_blamed(db: SqlStore) -> None:
    script = list(CASES["unconfirmed-write"].script)
    confirmed = [*script[:4], Say("Shall I refund $1,200.50 to your card?"),
                 User("Yes, go ahead."), *script[4:]]
    bad = explain(db, record(db, script).run_id)
    good = explain(db, record(db, confirmed).run_id)
    assert "unconfirmed-write" in kinds(bad.culprit)
    assert not list(kinds_of(good.culprits, "unconfirmed-write"))
    assert good.culprit is not None and good.culprit.name == "lookup_order"


def test_an_error_recovered_at_once_weighs_less_than_one_never_put_right(
        db: SqlStore) -> None:
    recovered = record(db, [User("Total of W123456?"), TIMEOUT, LOOKUP, Say("It is $1,200.50.")])
    unrecovered = record(db, [User("Total of W123456?"), TIMEOUT, Say("I cannot tell.")])
    [r] = kinds_of(explain(db, recovered.run_id).culprits, "error-recovered")
    [u] = kinds_of(explain(db, unrecovered.run_id).culprits, "error-continued")
    assert r.weight == WEIGHTS["error-recovered"] < u.weight == WEIGHTS["error-continued"]
    # in one run, the error never put right ranks above the one retried at once
    both = record(db, CASES["error-continued"].script)
    ranked = explain(db, both.run_id).culprits
    assert [(c.seq, kinds(c)) for c in ranked] == [
        (both.seqs[3], ["error-continued"]), (both.seqs[1], ["error-recovered"])]


# -- no evidence at all -----------------------------------------------------------------------


def test_a_failed_run_with_no_evidence_still_names_the_last_thing_the_agent_did(
        db: SqlStore) -> None:
    answered = record(db, [User(f"Total of {ORDER}?"), LOOKUP, Say("It is $1,200.50.")])
    ex = explain(db, answered.run_id)
    assert [(c.seq, kinds(c)) for c in ex.culprits] == [(answered.seqs[2], ["ended-here"])]
    assert ex.culprits[0].score == WEIGHTS["ended-here"]
    # no final answer: the last step
    silent = record(db, [User(f"Total of {ORDER}?"), LOOKUP])
    ex = explain(db, silent.run_id)
    assert [(c.seq, c.name, kinds(c)) for c in ex.culprits] == [
        (silent.seqs[1], "lookup_order", ["ended-here"])]
    # a run that succeeded gets no culprit it does not deserve
    fine = record(db, [User(f"Total of {ORDER}?"), LOOKUP, Say("It is $1,200.50.")],
                  success=True)
    assert explain(db, fine.run_id).culprits == []
    events = db.events(fine.run_id)
    assert [kinds(c) for c in rank_culprits(events, failed=True)] == [["ended-here"]]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_failed_run_gets_a_ranked_list_even_with_no_checks(
        db: SqlStore, kind: str) -> None:
    run = record(db, CASES[kind].script, expected=CASES[kind].expected)
    ex = explain(db, run.run_id, checks=[])
    assert [kinds(c) for c in ex.culprits] == [["ended-here"]]
    assert ex.culprits[0].seq == run.seqs[-1]  # every script ends with the agent's answer


# -- checks a team brings ---------------------------------------------------------------------


def big_refunds_need_a_manager(view: RunView) -> Iterator[Finding]:
    """A domain rule: a refund over 1000 is made only after a manager said so."""
    for call in view.calls:
        if call.tool == "refund" and float(call.arguments.get("amount", 0)) > 1000:
            yield Finding(view.decision(call).seq, "needs-manager",
                          f"refund of {call.arguments['amount']} without a manager", 4.0)


REFUND_RUN: list[Step] = [
    User(f"Refund order {ORDER} please."),
    TIMEOUT, LOOKUP,
    asks("refund", order_id=ORDER, amount=1200.5),
    Call("refund", {"order_id": ORDER, "amount": 1200.5}, {"refund_id": "RF-1"}, write=True),
    Say("Refunded $1,200.50."),
]


def test_a_custom_check_passed_to_explain_ranks_its_step_first(db: SqlStore) -> None:
    run = record(db, REFUND_RUN)
    plain = explain(db, run.run_id)
    assert plain.culprit is not None and plain.culprit.seq == run.seqs[1]  # the timeout
    ex = explain(db, run.run_id, checks=[*DEFAULT_CHECKS, big_refunds_need_a_manager])
    top = ex.culprit
    assert top is not None and top.seq == run.seqs[3] and top.kind == "llm_call"
    assert [(e.kind, e.weight) for e in top.evidence] == [("needs-manager", 4.0)]
    # only the checks given run: the timeout is no evidence now
    only = explain(db, run.run_id, checks=[big_refunds_need_a_manager])
    assert [c.seq for c in only.culprits] == [run.seqs[3]]


def test_a_kind_of_a_rule_pack_weighs_one_unless_it_says() -> None:
    assert Finding(1, "needs-manager", "x").strength == 1.0
    assert Finding(1, "stale", "x").strength == WEIGHTS["stale"] == KINDS["stale"][0]
    assert Finding(1, "stale", "x", 0.25).strength == 0.25


def test_a_check_that_raises_stops_the_explanation(db: SqlStore) -> None:
    def broken(view: RunView) -> Iterator[Finding]:
        raise ValueError("rule pack bug")
        yield  # pragma: no cover

    run = record(db, REFUND_RUN)
    with pytest.raises(ValueError, match="rule pack bug"):
        explain(db, run.run_id, checks=[*DEFAULT_CHECKS, broken])
    with pytest.raises(ValueError, match="rule pack bug"):
        rank_culprits(db.events(run.run_id), checks=[broken])


def test_findings_on_no_step_of_the_run_or_of_no_weight_are_dropped(db: SqlStore) -> None:
    run = record(db, REFUND_RUN)

    def confused(view: RunView) -> list[Finding]:
        return [Finding(999, "needs-manager", "a seq the run does not have", 9.0),
                Finding(-1, "needs-manager", "nor this", 9.0),
                Finding(run.seqs[3], "needs-manager", "no weight", 0.0)]

    ex = explain(db, run.run_id, checks=[*DEFAULT_CHECKS, confused])
    assert ex.culprits == explain(db, run.run_id).culprits
    assert all(c.seq in run.seqs for c in ex.culprits)
    # with nothing else to go on, the failed run still gets its last step
    alone = explain(db, run.run_id, checks=[confused])
    assert [(c.seq, kinds(c)) for c in alone.culprits] == [(run.seqs[-1], ["ended-here"])]


@dataclass
class FakeEntryPoint:
    name: str
    loaded: Any

    def load(self) -> Any:
        return self.loaded


@pytest.fixture
def fresh_packs() -> Iterator[None]:
    """Installed rule packs are read once per process: read them again around the test."""
    installed_checks.cache_clear()
    yield
    installed_checks.cache_clear()


def test_installed_rule_packs_are_loaded_and_run_by_default(
        db: SqlStore, monkeypatch: pytest.MonkeyPatch, fresh_packs: None) -> None:
    def second(view: RunView) -> list[Finding]:
        return []

    def third(view: RunView) -> list[Finding]:
        return [Finding(view.steps[0].seq, "pack-three", "the user's words", 0.05)]

    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[FakeEntryPoint]:
        asked.append(group)
        return [FakeEntryPoint("manager", big_refunds_need_a_manager),
                FakeEntryPoint("more", [second, third])]

    monkeypatch.setattr(checks_module, "entry_points", fake_entry_points)
    assert list(installed_checks()) == [big_refunds_need_a_manager, second, third]
    assert list(installed_checks()) == [big_refunds_need_a_manager, second, third]
    assert asked == ["agentlab.checks"]  # read once, then remembered
    assert default_checks() == [*DEFAULT_CHECKS, big_refunds_need_a_manager, second, third]
    run = record(db, REFUND_RUN)
    ex = explain(db, run.run_id)
    assert ex.culprit is not None and ex.culprit.seq == run.seqs[3]
    assert kinds(ex.culprit) == ["needs-manager"]
    assert "pack-three" in kinds(next(c for c in ex.culprits if c.seq == run.seqs[0]))
    # checks given explicitly replace the default ones, installed packs included
    assert not list(kinds_of(explain(db, run.run_id, checks=DEFAULT_CHECKS).culprits,
                             "needs-manager"))


# -- comparisons: a successful sibling, freshness -----------------------------------------------


def test_a_result_that_differed_from_the_successful_sibling_decides(db: SqlStore) -> None:
    def run(total: float, success: bool) -> Recorded:
        return record(db, [
            User(f"Refund order {ORDER}."),
            Call("lookup_order", {"order_id": ORDER}, {"order_id": ORDER, "total": total}),
            Call("refund", {"order_id": ORDER, "amount": total}, {"refund_id": "RF-1"},
                 write=True),
            Say("Refunded."),
        ], success=success, task_id=f"refund:{ORDER}")

    good = run(1200.5, True)
    bad = run(120.05, False)
    ex = explain(db, bad.run_id)
    assert ex.sibling_run_id == good.run_id
    assert [(c.seq, kinds(c)) for c in ex.culprits] == [
        (bad.seqs[1], ["differed-from-sibling"]), (bad.seqs[2], ["branch-point"])]
    alone = explain(db, bad.run_id, siblings=[])
    assert alone.culprit is not None and alone.culprit.seq != bad.seqs[1]


def test_the_same_calls_with_other_results_still_point_at_the_result(db: SqlStore) -> None:
    """The runs never part on their calls, yet one lookup returned another total: that
    result is the evidence, and the explanation says the calls were the same throughout."""
    def run(total: float, success: bool) -> Recorded:
        return record(db, [
            User(f"What is the total of order {ORDER}?"),
            Call("lookup_order", {"order_id": ORDER}, {"order_id": ORDER, "total": total}),
            Say(f"The total is ${total}."),
        ], success=success, task_id=f"total:{ORDER}")

    good = run(1200.5, True)
    bad = run(120.05, False)
    ex = explain(db, bad.run_id)
    assert ex.sibling_run_id == good.run_id
    assert ex.culprit is not None and ex.culprit.seq == bad.seqs[1]
    assert "differed-from-sibling" in kinds(ex.culprit)
    assert "the same calls throughout; 1 returned other results" in ex.to_text()


def test_a_value_the_deciding_model_was_first_to_say_is_invented(db: SqlStore) -> None:
    """The model asks for a refund with a payment id no user message or result gave."""
    run = record(db, [
        User(f"Please refund order {ORDER}."),
        LOOKUP,
        asks("refund", order_id=ORDER, payment_id="PAY-7777"),
        Call("refund", {"order_id": ORDER, "payment_id": "PAY-7777"}, {"refund_id": "RF-1"},
             write=True),
        Say("Your refund is on its way."),
    ])
    ex = explain(db, run.run_id)
    assert ex.culprit is not None and ex.culprit.seq == run.seqs[2]  # the model call
    assert "invented-value" in kinds(ex.culprit)
    assert "PAY-7777" in next(e.detail for e in ex.culprit.evidence if e.kind == "invented-value")


def test_the_first_step_that_leaves_the_successful_sibling_is_the_branch_point(
        db: SqlStore) -> None:
    def run(tool: str, success: bool) -> Recorded:
        return record(db, [
            User(f"My order {ORDER} arrived broken."), LOOKUP,
            Call(tool, {"order_id": ORDER}, {"ok": True}, write=True),
            Say("Done."),
        ], success=success, task_id="broken-parcel")

    run("refund", True)
    bad = run("cancel_order", False)
    ex = explain(db, bad.run_id)
    assert ex.culprit is not None and ex.culprit.seq == bad.seqs[2]
    assert kinds(ex.culprit) == ["branch-point"] and "refund" in ex.culprit.evidence[0].detail
    alone = explain(db, bad.run_id, siblings=[])
    assert [kinds(c) for c in alone.culprits] == [["ended-here"]]


def test_a_stale_result_decides(db: SqlStore) -> None:
    run = record(db, [
        User(f"Refund order {ORDER}."),
        Call("lookup_order", {"order_id": ORDER},
             {"order_id": ORDER, "total": 1200.5, "cache_age_s": 7200}),
        LOYALTY_DOWN,
        Say("Your total is $1,200.50."),
    ])
    ex = explain(db, run.run_id, freshness={"lookup_*": timedelta(hours=1)})
    assert ex.culprit is not None and ex.culprit.seq == run.seqs[1]
    assert kinds(ex.culprit) == ["stale"] and ex.culprit.score == WEIGHTS["stale"]
    unbounded = explain(db, run.run_id)
    assert unbounded.culprit is not None and unbounded.culprit.seq == run.seqs[2]


# -- governance: denied, overridden, and the results they were decided on ----------------------


@al.tool
def lookup_customer(customer_id: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "tier": "gold"}


@al.tool
def get_loyalty_points(customer_id: str) -> int:
    raise ConnectionError("service down")


@al.tool(side_effect=True, scope="support:refund")
def refund(order_id: str, amount: float) -> dict[str, Any]:
    return {"refund_id": "RF-1", "amount": amount}


@pytest.mark.parametrize("denied", [True, False])
def test_a_denied_call_decides(db: SqlStore, denied: bool) -> None:
    rules = [al.Rule("no-refunds", "deny", tool="refund", reason="refunds are frozen")]
    with al.record_run("support", agent="bot", store=db, grants=[allow_all(db, agent="bot")],
                       policy=al.Policy(rules if denied else [])) as run:
        run.message(f"Refund order {ORDER}.", role="user")
        with pytest.raises(ConnectionError):
            get_loyalty_points("C-88")
        run.llm_call("gpt-test", messages=[], response={"tool_calls": [
            {"name": "refund", "arguments": {"order_id": ORDER, "amount": 40}}]})
        try:
            refund(ORDER, 40)
        except al.ToolDeniedError:
            assert denied
        run.message("Done.")
        run.outcome(success=False)
    events = db.events(run.run_id)
    decision = next(e.seq for e in events if e.kind == "llm_call")
    loyalty = next(e.seq for e in events
                   if isinstance(e, ToolCallEvent) and e.tool == "get_loyalty_points")
    top = explain(db, run.run_id).culprit
    assert top is not None
    if denied:
        assert (top.seq, kinds(top)) == (decision, ["denied"])
        assert "refunds are frozen" in top.evidence[0].detail
    else:
        assert (top.seq, kinds(top)) == (loyalty, ["error-continued"])


def _edited_refund(db: SqlStore, *, action: str, reads_state: bool) -> tuple[str, int, int]:
    """A refund a human edits (``action="edit"``) or approves; the amount comes from the
    customer lookup through the run's state, or not. Returns (run id, the lookup's seq,
    the refund's seq)."""

    def approver(request: ApprovalRequest, manager: ApprovalManager) -> None:
        if action == "edit":
            manager.edit(request.id, {"order_id": ORDER, "amount": 100.0}, by="ann",
                         reason="refunds are capped at 100")
        else:
            manager.approve(request.id, by="ann")

    policy = al.Policy([al.Rule("ask", "approve", tool="refund")])
    with al.record_run("support", agent="bot", store=db, grants=[allow_all(db, agent="bot")],
                       policy=policy, approver=approver) as run:
        run.message(f"Refund order {ORDER}, all $1,200.50 of it.", role="user")
        run.state["customer"] = lookup_customer("C-88")
        with al.step("decide"):
            gold = run.state["customer"]["tier"] == "gold" if reads_state else True
            refund(ORDER, 1200.5 if gold else 40.0)
        run.message("Refunded.")
        run.outcome(success=False)
    seq = {e.tool: e.seq for e in db.events(run.run_id) if isinstance(e, ToolCallEvent)}
    return run.run_id, seq["lookup_customer"], seq["refund"]


@pytest.mark.parametrize("action", ["edit", "approve"])
def test_a_call_a_human_overrode_decides_when_nothing_else_points_anywhere(
        db: SqlStore, action: str) -> None:
    run_id, _, refund_seq = _edited_refund(db, action=action, reads_state=False)
    top = explain(db, run_id).culprit
    assert top is not None
    if action == "edit":
        assert (top.seq, kinds(top)) == (refund_seq, ["overridden"])
        assert "ann" in top.evidence[0].detail
    else:
        assert kinds(top) == ["ended-here"] and top.seq != refund_seq


@pytest.mark.parametrize("reads_state", [True, False])
def test_the_result_an_overridden_call_was_decided_on_is_blamed(
        db: SqlStore, reads_state: bool) -> None:
    run_id, lookup_seq, refund_seq = _edited_refund(db, action="edit", reads_state=reads_state)
    ranked = explain(db, run_id).culprits
    if reads_state:
        assert [(c.seq, kinds(c)) for c in ranked] == [
            (lookup_seq, ["fed-symptom"]), (refund_seq, ["overridden"])]
        assert "'customer'" in ranked[0].evidence[0].detail
    else:
        assert [(c.seq, kinds(c)) for c in ranked] == [(refund_seq, ["overridden"])]


# -- counterfactual forks -----------------------------------------------------------------------

WORLD: dict[str, Any] = {}


@al.tool
def lookup_weather(city: str) -> dict[str, Any]:
    return {"city": city, "forecast": WORLD["weather"]}


@al.tool
def lookup_refund(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "total": WORLD["total"]}


@al.tool
def quote_refund(amount: float) -> dict[str, Any]:
    return {"refund": amount}


@al.agent("refund-cf", version="1", name="refund-bot")
def refund_agent(task_input: dict[str, Any]) -> None:
    """Looks up the weather (irrelevant) and the order, then quotes the refund from the
    order kept in the run's state (or, with ``via_state`` off, from a local variable)."""
    run = al.current_run()
    assert run is not None
    lookup_weather("Paris")
    order = lookup_refund(task_input["order_id"])
    run.state["order"] = order
    with al.step("quote"):
        total = run.state["order"]["total"] if task_input["via_state"] else order["total"]
        quote = quote_refund(total)
    run.outcome(success=quote["refund"] == 1200.5)


def _good_and_bad(db: SqlStore, *, via_state: bool) -> str:
    """A successful run, then a failed one of the same task in which both lookups saw
    other values than the successful run did; returns the failed run's id."""
    task = {"order_id": ORDER, "via_state": via_state}
    WORLD.update(weather="sunny", total=1200.5)
    assert refund_agent.run(task, store=db, task_id=f"cf:{via_state}").success is True
    WORLD.update(weather="rain", total=120.05)
    bad = refund_agent.run(task, store=db, task_id=f"cf:{via_state}")
    assert bad.success is False
    return bad.run_id


def _seq(db: SqlStore, run_id: str, tool: str) -> int:
    return next(e.seq for e in db.events(run_id)
                if isinstance(e, ToolCallEvent) and e.tool == tool)


def test_a_substitution_that_flips_the_outcome_decides(db: SqlStore) -> None:
    bad = _good_and_bad(db, via_state=True)
    weather, order = _seq(db, bad, "lookup_weather"), _seq(db, bad, "lookup_refund")
    # both lookups differed from the sibling: without forks, the earlier one leads
    plain = explain(db, bad)
    assert plain.culprit is not None and plain.culprit.seq == weather
    assert "differed-from-sibling" in kinds(plain.culprit)
    ex = explain(db, bad, counterfactual=True, agent=refund_agent)
    assert ex.counterfactual is not None
    assert {t.name for t in ex.counterfactual.flipping} == {"lookup_refund", "quote_refund"}
    top = ex.culprit
    assert top is not None and top.seq == order
    assert kinds(top)[0] == "counterfactual"
    assert top.evidence[0].weight == WEIGHTS["counterfactual"]


@pytest.mark.parametrize("via_state", [True, False])
def test_a_flip_downstream_of_an_earlier_flip_weighs_little(
        db: SqlStore, via_state: bool) -> None:
    bad = _good_and_bad(db, via_state=via_state)
    order, quote = _seq(db, bad, "lookup_refund"), _seq(db, bad, "quote_refund")
    ex = explain(db, bad, counterfactual=True, agent=refund_agent)
    assert ex.culprit is not None and ex.culprit.seq == order
    q = next(c for c in ex.culprits if c.seq == quote)
    if via_state:
        # the quote's input came from the lookup through the state: its flip is the
        # lookup's, weighed 0.5 rather than 5
        assert "counterfactual-downstream" in kinds(q) and "counterfactual" not in kinds(q)
        assert f"seq {order}" in next(e.detail for e in q.evidence
                                      if e.kind == "counterfactual-downstream")
        assert q.score < WEIGHTS["counterfactual"]
    else:
        assert "counterfactual" in kinds(q) and "counterfactual-downstream" not in kinds(q)
        assert q.score >= WEIGHTS["counterfactual"]


# -- edge cases found in review -------------------------------------------------------------------


def test_an_errored_run_is_explained_as_a_failure(db: SqlStore) -> None:
    with pytest.raises(RuntimeError), al.record_run("support", agent="bot", store=db) as run:
        run.message("working on it")
        raise RuntimeError("boom")
    text = explain(db, run.run_id).to_text()
    assert "Which step caused the failure" in text and "did not fail" not in text


def test_a_run_that_succeeded_without_an_outcome_has_no_culprit(db: SqlStore) -> None:
    with al.record_run("support", agent="bot", store=db) as run:
        run.message("all done")
    assert rank_culprits(db.events(run.run_id)) == []


def test_a_value_the_model_was_shown_in_its_prompt_is_not_invented(db: SqlStore) -> None:
    @al.tool(side_effect=True, scope="support:refund")
    def refund(order_id: str, amount: float) -> dict[str, str]:
        return {"refund_id": "RF-1"}

    with al.record_run("support", agent="bot", store=db,
                       grants=[allow_all(db, agent="bot")]) as run:
        run.llm_call("gpt-test", messages=[
            {"role": "user", "content": f"Please refund order {ORDER}, $45.10"}],
            response={"content": None, "tool_calls": [
                {"name": "refund", "arguments": {"order_id": ORDER, "amount": 45.1}}]})
        refund(ORDER, 45.1)
        run.message("Refunded.")
        run.outcome(success=False)
    assert not list(kinds_of(explain(db, run.run_id).culprits, "invented-value"))


CONFIRM = System("Before any refund, obtain explicit user confirmation (yes) to proceed.")
REFUND = Call("refund", {"order_id": ORDER}, {"refund_id": "RF-1"}, write=True)


@pytest.mark.parametrize(("script", "flagged"), [
    # a refusal is no confirmation, though it says "proceed"
    ([CONFIRM, Model("Shall I refund it?"), User("No, do not proceed."), REFUND], [3]),
    # a "yes" covers the write it answered, not one the agent asks about afterwards
    ([CONFIRM, Model("Shall I refund it?"), User("Yes, refund it."), REFUND,
      Say("Done. Shall I also refund the other one?"), REFUND], [5]),
    ([CONFIRM, Model("Shall I refund it?"), User("Yes, go ahead."), REFUND], []),
])
def test_a_confirmation_is_a_yes_for_the_write_it_answers(
        db: SqlStore, script: list[Step], flagged: list[int]) -> None:
    run = record(db, script)
    view = RunView.of(run.events())
    got = [f.seq for f in checks_module.unconfirmed_writes(view)]
    assert got == [view.decision(view.by_seq[run.seqs[i]]).seq for i in flagged]


@pytest.mark.parametrize("result_had_it", [False, True])
def test_a_wrong_statement_read_off_a_result_blames_the_result_only_if_it_was_wrong_too(
        db: SqlStore, result_had_it: bool) -> None:
    """The answer's date first appears in the answer, which repeats the carrier of a tracking
    result. If that result lacked the right date, asking for it (the wrong shipment) shares
    the fault; if it had the right date, the answer misread it and is the culprit."""
    eta = {"eta": "2024-05-17"} if result_had_it else {"eta": "2024-05-21"}
    run = record(db, [
        User(f"When does order {ORDER} arrive?"),
        asks("track_shipment", shipment_id="SH-0042"),
        Call("track_shipment", {"shipment_id": "SH-0042"}, {"carrier": "UPS Ground", **eta}),
        Say("It ships with UPS Ground and arrives on 2024-05-14."),
    ], expected={"outputs": ["2024-05-17"]})
    ex = explain(db, run.run_id)
    assert ex.culprit is not None
    if result_had_it:
        assert ex.culprit.seq == run.seqs[3]
        assert not list(kinds_of(ex.culprits, "fed-wrong-result"))
    else:
        assert ex.culprit.seq == run.seqs[1] and kinds(ex.culprit) == ["fed-wrong-result"]


# -- answers that were never given, and values too small to trace by their first holder --------


def test_an_error_retried_in_a_run_that_never_got_the_answer_was_not_put_right(
        db: SqlStore) -> None:
    """The retry ran, but the run never obtained the expected value nor stated one: the
    failure stands, and outranks the last word of a run that gave up."""
    stuck = [User(f"How much will I get back for order {ORDER}?"),
             Call("fetch_invoice", {"order_id": ORDER}, error="parse error"),
             Call("fetch_invoice", {"order_id": ORDER}, {"order_id": ORDER, "lines": []}),
             Say("I could not find the invoice lines, sorry.")]
    run = record(db, stuck, expected={"outputs": ["1200.50"]})
    ex = explain(db, run.run_id)
    assert ex.culprit is not None and ex.culprit.seq == run.seqs[1], ex.to_text()
    [e] = kinds_of(ex.culprits, "error-continued")
    assert "never got the answer" in e.detail
    assert not list(kinds_of(ex.culprits, "error-recovered"))
    # the same run when the retry did get the expected value: recovered, and the answer
    # that then failed to give it is what ranks first
    got = [*stuck[:2], Call("fetch_invoice", {"order_id": ORDER},
                            {"order_id": ORDER, "total": 1200.5}), stuck[3]]
    run = record(db, got, expected={"outputs": ["1200.50"]})
    ex = explain(db, run.run_id)
    assert [e.kind for e in kinds_of(ex.culprits, "error-recovered")] == ["error-recovered"]
    assert ex.culprit is not None and ex.culprit.seq == run.seqs[3], ex.to_text()
    # without expected outputs nothing says what the goal was: a retry recovers
    run = record(db, stuck)
    assert list(kinds_of(explain(db, run.run_id).culprits, "error-recovered"))


def test_a_small_expected_value_in_some_result_is_not_taken_as_obtained(db: SqlStore) -> None:
    """An expected ``3`` is in most results by chance: a result holding it does not show the
    run got the answer."""
    run = record(db, [User("How many albums came out between 2000 and 2009?"),
                      Call("search", {"q": "discography"}, error="rate limited"),
                      Call("search", {"q": "discography"}, "page 3 of 12: no album list"),
                      Say("I could not find the albums.")], expected={"outputs": ["3"]})
    assert list(kinds_of(explain(db, run.run_id).culprits, "error-continued"))


def test_a_small_wrong_value_is_traced_to_the_nearest_result_that_holds_it(
        db: SqlStore) -> None:
    """``0`` is in many events; the earliest of them (a page number in the question) says
    nothing.
    The nearest result before the answer that holds it is where the answer read it."""
    run = record(db, [User("Page 0 of the listing: how many of its papers have a PostScript "
                           "version?"),
                      asks("count_ps", month="2020-01"),
                      Call("count_ps", {"month": "2020-01"}, {"count": 0}),
                      Say("There are 0 such papers.")], expected={"outputs": ["31"]})
    ex = explain(db, run.run_id)
    [origin] = kinds_of(ex.culprits, "wrong-value-origin")
    holder = next(c for c in ex.culprits if any(e is origin for e in c.evidence))
    assert holder.seq == run.seqs[1], ex.to_text()  # the model call that asked for count_ps
    assert "count_ps" in origin.detail


def test_list_numbering_in_parentheses_is_not_an_answer(db: SqlStore) -> None:
    """"(1) the task and (2) the plan" numbers a list; it does not state the value 1."""
    run = record(db, [User("How many moons has Mars?"),
                      Say("My plan: (1) find the planet and (2) count its moons."),
                      Say("I was unable to look that up.")], expected={"outputs": ["2"]})
    ex = explain(db, run.run_id)
    assert not [e for e in kinds_of(ex.culprits, "wrong-answer") if "states '1'" in e.detail]
    assert [e.detail for e in kinds_of(ex.culprits, "wrong-answer")] == [
        "the final answer does not state the expected '2'"]
