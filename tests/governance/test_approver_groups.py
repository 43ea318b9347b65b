"""Approver groups and keys: a rule's approvers= admits members of the groups it names, a
revoked approver is refused, and a keyed approver's decisions count only when signed with
their key, checked by the gate before the call runs, so that a process holding the store
and agentlab's signing key (the agent's) cannot decide in their name. On SQLite and
PostgreSQL."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

import agentlab as al
from agentlab.approval import (
    ApprovalManager,
    add_approver,
    approver_history,
    approver_state,
    approver_states,
    revoke_approver,
)
from agentlab.approval._manager import _decision_fields, _decision_mac, _signed_message
from agentlab.errors import ApprovalError, ToolDeniedError
from agentlab.identity import new_approver_key, sign_decision
from agentlab.identity._ed25519 import public_key, sign, verify
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore, open_store

from ._desk import AGENT, GRANT, run_id
from ._desk import ask as _ask

__all__ = ["run_id"]  # the fixture, shared with the other approver tests

GROUP = "support-leads"



def _run(store: SqlStore, approver: Any) -> tuple[list[str], str, list[str]]:
    """One run whose close_ticket call needs a support lead; what ran, the run, denials."""
    ran: list[str] = []

    @al.tool(side_effect=True, scope="desk:write")
    def close_ticket(ticket: str) -> dict[str, Any]:
        ran.append(ticket)
        return {"closed": ticket}

    policy = al.Policy([al.Rule("closing-needs-lead", "approve", tool="close_ticket",
                                approvers=(GROUP,))])
    with al.record_run("desk", agent=AGENT, store=store, grants=[GRANT], policy=policy,
                       approver=approver, approval_timeout=timedelta(seconds=10)) as run:
        with contextlib.suppress(ToolDeniedError):
            close_ticket("T-9")
    denials = [e.denial.code for e in store.events(run.run_id, kinds=["tool_call"])
               if e.kind == "tool_call" and e.denial is not None]
    return ran, run.run_id, denials


def _forge(store: SqlStore, req: ApprovalRequest, by: str, key: str | None,
          signature: str | None = None) -> None:
    """What a process holding the store and agentlab's signing key can do: write a decision
    row in anyone's name with a valid MAC, signed (or not) with a key of its choosing, or
    carrying a signature copied from elsewhere."""
    now = ApprovalManager(store)._now_us()
    fields = _decision_fields(req.id, req.binding, "approved", "approve", by, "api", now,
                              None, None)
    sig = signature if key is None else sign_decision(key, _signed_message(fields))
    assert store.decide_approval(req.id, {
        "status": "approved", "action": "approve", "decided_by": by, "decided_us": now,
        "channel": "api", "reason": None, "edited_arguments": None, "signature": sig,
        "decision_mac": _decision_mac(fields, sig)})
    assert ApprovalManager(store).authentic(store.approval(req.id))  # the MAC is no obstacle


# -- the signature primitive ------------------------------------------------------------------


def test_ed25519_matches_rfc_8032() -> None:
    seed = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    pub = public_key(seed)
    assert pub.hex() == "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    sig = sign(seed, b"\x72")
    assert sig.hex() == ("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                         "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
    assert verify(pub, b"\x72", sig)
    assert not verify(pub, b"\x73", sig)
    assert not verify(pub, b"\x72", sig[:32] + bytes(32))
    assert not verify(public_key(bytes(32)), b"\x72", sig)


# -- groups -------------------------------------------------------------------------------------


def test_a_group_member_decides_and_a_non_member_does_not(store: SqlStore,
                                                          run_id: str) -> None:
    add_approver(store, "ana", group=GROUP, by="lee")
    add_approver(store, "bob", group="billing-leads", by="lee")
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "g1", approvers=[GROUP, "cy"])
    for who in ("bob", "eve"):
        with pytest.raises(ApprovalError, match=rf"{who} may not decide .*{GROUP}, cy"):
            manager.approve(req.id, by=who)
    assert manager.get(req.id).status == "pending"
    assert manager.approve(req.id, by="ana").status == "approved"  # a member
    assert manager.decision_problem(manager.get(req.id)) is None
    req2 = _ask(store, run_id, "g2", approvers=[GROUP, "cy"])
    assert manager.approve(req2.id, by="cy").status == "approved"  # named directly


def test_a_member_admitted_through_the_gate_runs_the_call_and_a_non_member_never(
        store: SqlStore, run_id: str) -> None:
    add_approver(store, "ana", group=GROUP)
    ran, _, denials = _run(store, lambda req, m: m.approve(req.id, by="ana"))
    assert ran == ["T-9"] and denials == []
    # a non-member's decision written straight into the store (past decide()) is refused
    ran, rid, denials = _run(store, lambda req, m: _forge(store, req, "mallory", None))
    assert ran == [] and denials == ["decider"]
    [req] = store.approvals(run_id=rid)
    assert req.decided_by == "mallory" and req.consumed_at is None


def test_leaving_a_group_or_being_revoked_refuses_the_approver(store: SqlStore,
                                                                 run_id: str) -> None:
    add_approver(store, "ana", group=GROUP)
    add_approver(store, "ana", group="billing-leads")
    manager = ApprovalManager(store)
    revoke_approver(store, "ana", group=GROUP, by="lee", reason="moved team")
    req = _ask(store, run_id, "r1", approvers=[GROUP])
    with pytest.raises(ApprovalError, match="ana may not decide"):
        manager.approve(req.id, by="ana")
    add_approver(store, "ana", group=GROUP)
    revoke_approver(store, "ana", by="lee", reason="left the company")
    state = approver_state(store, "ana")
    assert state is not None and not state.active and state.groups == ()
    for approvers in ([GROUP], None, ["ana"]):  # revoked: refused wherever named or not
        req = _ask(store, run_id, f"r-{approvers}", approvers=approvers)
        with pytest.raises(ApprovalError, match="ana may not decide .* revoked .* by lee "
                           r"\(left the company\)"):
            manager.approve(req.id, by="ana")
    with pytest.raises(ApprovalError, match="already revoked"):
        revoke_approver(store, "ana")
    with pytest.raises(ApprovalError, match="no approver named 'zed'"):
        revoke_approver(store, "zed")


def test_an_approver_revoked_after_deciding_is_refused_before_the_call_runs(
        store: SqlStore, run_id: str) -> None:
    add_approver(store, "ana", group=GROUP)

    def approve_then_revoked(req: ApprovalRequest, manager: ApprovalManager) -> None:
        manager.approve(req.id, by="ana")
        revoke_approver(store, "ana", by="lee", reason="account compromised")

    ran, _, denials = _run(store, approve_then_revoked)
    assert ran == [] and denials == ["decider"]


# -- keys -------------------------------------------------------------------------------------


def test_a_keyed_approver_signs_and_a_forged_decision_never_runs(
        store: SqlStore, run_id: str) -> None:
    added = add_approver(store, "ana", group=GROUP, issue_key=True, by="lee")
    key = added.key
    assert key is not None and added.change.public_key is not None
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "k1", approvers=[GROUP])
    with pytest.raises(ApprovalError, match=r"holds an approver key .* sign the decision"):
        manager.approve(req.id, by="ana")
    stranger, _ = new_approver_key()
    with pytest.raises(ApprovalError, match="not ana's approver key"):
        manager.approve(req.id, by="ana", key=stranger)
    with pytest.raises(ApprovalError, match="not an approver key"):
        manager.approve(req.id, by="ana", key="hunter2-hunter2-hunter2")
    assert manager.get(req.id).status == "pending"
    with pytest.raises(ApprovalError, match="cy holds no approver key"):
        manager.approve(_ask(store, run_id, "k0", approvers=["cy"]).id, by="cy", key=key)
    done = manager.approve(req.id, by="ana", key=key)
    assert done.signature is not None and manager.decision_problem(done) is None

    # Through the gate: ana's signed decision runs the call once ...
    ran, _, denials = _run(store, lambda r, m: m.approve(r.id, by="ana", key=key))
    assert ran == ["T-9"] and denials == []
    # ... a decision in her name without a signature, or signed with another key, or with
    # her signature taken from another request, never does, MAC or not.
    ran, _, denials = _run(store, lambda r, m: _forge(store, r, "ana", None))
    assert ran == [] and denials == ["decider"]
    ran, _, denials = _run(store, lambda r, m: _forge(store, r, "ana", stranger))
    assert ran == [] and denials == ["decider"]

    ran, rid, denials = _run(store, lambda r, m: _forge(store, r, "ana", None, done.signature))
    assert ran == [] and denials == ["decider"]
    [forged] = store.approvals(run_id=rid)
    assert forged.consumed_at is None


def test_a_new_key_voids_the_old_and_revocation_voids_the_key(store: SqlStore,
                                                              run_id: str) -> None:
    old = add_approver(store, "ana", group=GROUP, issue_key=True).key
    new = add_approver(store, "ana", issue_key=True).key
    assert old and new and old != new
    manager = ApprovalManager(store)
    req = _ask(store, run_id, "n1", approvers=[GROUP])
    with pytest.raises(ApprovalError, match="not ana's approver key"):
        manager.approve(req.id, by="ana", key=old)
    manager.approve(req.id, by="ana", key=new)
    revoke_approver(store, "ana")
    add_approver(store, "ana", group=GROUP)  # taken back without a key: the old one is void
    state = approver_state(store, "ana")
    assert state is not None and state.active and state.public_key is None


def test_a_key_is_never_stored(store: SqlStore) -> None:
    key = add_approver(store, "ana", issue_key=True).key
    assert key is not None
    with store._db.engine.begin() as conn:
        rows = [tuple(r) for t in ("agentlab_approver_changes", "agentlab_approvals")
                for r in conn.execute(text(f"SELECT * FROM {t}"))]
    body = key.removeprefix("agentlab-approver-key-")
    assert rows and not any(body in str(v) for row in rows for v in row)


# -- history ------------------------------------------------------------------------------------


def test_the_history_of_approver_changes_is_kept_in_order(store: SqlStore) -> None:
    add_approver(store, "ana", group=GROUP, by="lee", reason="new lead")
    add_approver(store, "ana", issue_key=True, by="lee")
    add_approver(store, "bob", group=GROUP, by="kim")
    revoke_approver(store, "bob", group=GROUP, by="kim", reason="rota ended")
    revoke_approver(store, "ana", by="lee", reason="left")
    history = approver_history(store)
    assert [(c.approver, c.action, c.group, c.by, c.reason, c.public_key is not None)
            for c in history] == [
        ("ana", "add", GROUP, "lee", "new lead", False),
        ("ana", "add", None, "lee", None, True),
        ("bob", "add", GROUP, "kim", None, False),
        ("bob", "revoke", GROUP, "kim", "rota ended", False),
        ("ana", "revoke", None, "lee", "left", False),
    ]
    assert [c.seq for c in history] == sorted(c.seq for c in history)
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    assert [c.action for c in approver_history(store, "bob")] == ["add", "revoke"]
    assert len(approver_history(store, group=GROUP)) == 3
    states = {s.name: s for s in approver_states(store)}
    assert states["ana"].status == "revoked" and states["bob"].status == "active"
    assert states["bob"].groups == ()
    add_approver(store, "bob", group=GROUP)
    with pytest.raises(ApprovalError, match="bob is already an approver in support-leads"):
        add_approver(store, "bob", group=GROUP)
    with pytest.raises(ApprovalError, match="is not usable"):
        add_approver(store, "ana; drop", group=GROUP)


def test_a_hand_written_history_entry_refuses_its_approver(store: SqlStore,
                                                          run_id: str) -> None:
    add_approver(store, "ana", group="billing-leads")
    with store._db.engine.begin() as conn:  # someone adds ana to the group in the database
        conn.execute(text("INSERT INTO agentlab_approver_changes (approver, action, "
                          "group_name, at_us, mac) VALUES ('ana', 'add', :g, 1, :m)"),
                     {"g": GROUP, "m": "0" * 64})
    state = approver_state(store, "ana")
    assert state is not None and state.tampered and state.status == "tampered"
    req = _ask(store, run_id, "t1", approvers=[GROUP])
    with pytest.raises(ApprovalError, match="without agentlab's MAC"):
        ApprovalManager(store).approve(req.id, by="ana")


def test_a_store_from_before_approver_groups_is_upgraded(
        store: SqlStore, store_url: tuple[str, str | None]) -> None:
    """0007 adds the approver history and the decision signature to a store 0006 made."""
    url, schema = store_url
    with store._db.engine.begin() as conn:  # take the store back to its 0006 shape
        conn.execute(text("DROP TABLE agentlab_approver_changes"))
        conn.execute(text("ALTER TABLE agentlab_approvals DROP COLUMN signature"))
        conn.execute(text("DELETE FROM agentlab_migrations WHERE name = '0007_approver_groups'"))
    store.close()
    again = open_store(url, schema=schema)
    try:
        assert "0007_approver_groups" in again.applied_migrations()
        assert again.approver_changes() == []
        add_approver(again, "ana", issue_key=True)
        assert [s.name for s in approver_states(again)] == ["ana"]
    finally:
        again.close()
