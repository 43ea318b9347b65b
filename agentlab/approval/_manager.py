"""Durable approval requests and decisions: one manager, any number of front ends.

A request is a row in the store, so it outlives the process that asked. Its *binding* is a
keyed hash of (run, call, tool, canonical arguments, grant, expiry); the decision carries
a MAC under a key the store never holds. Before the tool runs, the gate re-checks both
against the call as it is about to run and consumes the decision atomically: what runs is
exactly what was approved, once, or nothing.

Front ends (the Python API, the CLI, the notebook widget) call :meth:`ApprovalManager.decide`
with their channel name; a waiting agent wakes at once in the same process and within a
poll interval in another.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from agentlab.approval._approvers import ApproverState, approver_state
from agentlab.errors import ApprovalError, RunNotFoundError, SecretError
from agentlab.identity import (
    approver_public_key,
    default_redactor,
    keyed_hash,
    sign_decision,
    signature_valid,
)
from agentlab.model import ApprovalRequest, Phase, canonical, dumps, loads, new_id, now_ns
from agentlab.model._ids import Clock, IdFactory
from agentlab.store import RunStore

__all__ = ["DEFAULT_TIMEOUT", "ApprovalManager", "binding_for"]

DEFAULT_TIMEOUT = timedelta(hours=1)

_wake_lock = threading.Lock()
_wake: dict[str, threading.Event] = {}


def _event_for(request_id: str) -> threading.Event:
    with _wake_lock:
        ev = _wake.get(request_id)
        if ev is None:
            ev = _wake[request_id] = threading.Event()
        return ev


def _notify(request_id: str) -> None:
    with _wake_lock:
        ev = _wake.get(request_id)
    if ev is not None:
        ev.set()


def binding_for(run_id: str, call_key: str, tool: str, arguments: Mapping[str, Any],
                grant: str | None, expires_us: int) -> str:
    """The keyed hash a decision is bound to: this call, these exact arguments."""
    data, _ = canonical([run_id, call_key, tool, dict(arguments), grant, expires_us])
    return keyed_hash("approval-binding", data)


def _us(dt: Any) -> int:
    return int(dt.timestamp() * 1_000_000)


def _request_mac(req: ApprovalRequest | Mapping[str, Any]) -> str:
    if isinstance(req, ApprovalRequest):
        fields: list[Any] = [req.id, req.run_id, req.call_key, req.tool, req.arguments,
                             req.grant, req.scope, req.rule, req.phase, _us(req.requested_at),
                             _us(req.expires_at), req.binding]
        approvers = req.approvers
    else:
        fields = [req["request_id"], req["run_id"], req["call_key"], req["tool"],
                  req["arguments_value"], req["grant_name"], req["scope"], req["rule"],
                  req["phase"], req["requested_us"], req["expires_us"], req["binding"]]
        approvers = loads(req["approvers"]) if req.get("approvers") else None
    if approvers:  # (requests without approvers keep the MAC they always had)
        fields.append(list(approvers))
    return keyed_hash("approval-request", canonical(fields)[0])


def _decision_fields(request_id: str, binding: str, status: str, action: str, by: str,
                     channel: str, decided_us: int, reason: str | None,
                     edited: Any) -> bytes:
    fields = [request_id, binding, status, action, by, channel, decided_us, reason, edited]
    return canonical(fields)[0]


def _decision_mac(fields: bytes, signature: str | None) -> str:
    if signature is None:  # (unsigned decisions keep the MAC they always had)
        return keyed_hash("approval-decision", fields)
    return keyed_hash("approval-decision", canonical([fields.decode(), signature])[0])


def _signed_message(fields: bytes) -> bytes:
    """What an approver's key signs: the decision, bound to its request and exact call."""
    return b"agentlab approval decision v1\n" + fields


def _decision_of(req: ApprovalRequest) -> bytes | None:
    if req.action is None or req.decided_by is None or req.channel is None \
            or req.decided_at is None:
        return None
    return _decision_fields(req.id, req.binding, req.status, req.action, req.decided_by,
                            req.channel, _us(req.decided_at), req.reason, req.edited_arguments)


class ApprovalManager:
    """Requests, decisions, waits and the exactly-once consume, over one store."""

    def __init__(self, store: RunStore, *, clock: Clock | None = None,
                 id_factory: IdFactory | None = None, poll_interval_s: float = 0.2) -> None:
        self.store = store
        self._clock: Clock = clock or now_ns
        self._new_id: IdFactory = id_factory or new_id
        self.poll_interval_s = poll_interval_s

    def __repr__(self) -> str:
        return f"<ApprovalManager {self.store!r}>"

    def _now_us(self) -> int:
        return self._clock() // 1000

    # -- asking ---------------------------------------------------------------------------

    def request(self, *, run_id: str, call_key: str, tool: str, arguments: Mapping[str, Any],
                grant: str | None = None, scope: str | None = None, rule: str | None = None,
                phase: Phase | None = None, timeout: timedelta = DEFAULT_TIMEOUT,
                approvers: Sequence[str] | None = None) -> ApprovalRequest:
        """Store a pending request for this call, or return the one already stored for it
        (a resumed run reaching the call it was waiting on). A stored request that expired
        unanswered does not block the call for ever: the call asks again, under a numbered
        key (``key#2``, ``key#3``...)."""
        redactor = default_redactor()
        shown, _ = redactor.scrub(dict(arguments))
        shown_data, _ = canonical(shown)
        shown_value = loads(shown_data)
        # Rows hold what the record may hold: a key or scope built from a secret-bearing
        # argument is stored scrubbed (the binding, over the real arguments, still tells
        # two such calls apart).
        call_key = redactor.scrub_text(call_key)
        scope = redactor.scrub_text(scope) if scope is not None else None
        key = call_key
        for attempt in range(2, 1000):
            now = self._now_us()
            expires = now + int(timeout.total_seconds() * 1_000_000)
            row: dict[str, Any] = {
                "request_id": self._new_id(), "run_id": run_id, "call_key": key, "tool": tool,
                "arguments": shown_data.decode(), "grant_name": grant, "scope": scope,
                "rule": rule, "phase": phase, "requested_us": now, "expires_us": expires,
                "approvers": dumps(list(approvers)).decode() if approvers else None,
                "binding": binding_for(run_id, key, tool, arguments, grant, expires),
            }
            row["request_mac"] = _request_mac({**row, "arguments_value": shown_value})
            stored = self.store.add_approval(row)
            if stored.status != "expired":
                return stored
            key = f"{call_key}#{attempt}"
        raise ApprovalError(f"call {call_key} has asked for approval too often; giving up")

    # -- reading --------------------------------------------------------------------------

    def get(self, request_id: str) -> ApprovalRequest:
        return self.store.approval(request_id)

    def pending(self, *, run_id: str | None = None) -> list[ApprovalRequest]:
        return self.store.approvals(status="pending", run_id=run_id)

    def authentic(self, req: ApprovalRequest) -> bool:
        """Whether the request, and its decision if any, carry agentlab's MACs."""
        if not hmac.compare_digest(req.request_mac, _request_mac(req)):
            return False
        if req.action is None:
            return req.decision_mac is None and req.signature is None
        fields = _decision_of(req)
        if req.decision_mac is None or fields is None:
            return False
        return hmac.compare_digest(req.decision_mac, _decision_mac(fields, req.signature))

    def decision_problem(self, req: ApprovalRequest) -> str | None:
        """Why a decided request must not be honoured, judged now: its decider is the agent
        that asked, not among the rule's approvers (by name or by group), revoked, or holds
        a key and the decision does not carry a valid signature from it. None: honour it.

        The gate asks this before the call runs. The MAC alone cannot settle it: any process
        with agentlab's signing key (the agent's own) can make one; it cannot make an
        approver's signature.
        """
        fields = _decision_of(req)
        if fields is None:
            return f"approval {req.id} is not decided"
        try:
            state = self._admit(req, req.decided_by or "")
        except ApprovalError as exc:
            return str(exc)
        if state is not None and state.public_key is not None and not signature_valid(
                state.public_key, _signed_message(fields), req.signature):
            return (f"the decision on approval {req.id} is not signed with {state.name}'s "
                    "approver key; it is not honoured (forged, or made before their key "
                    "was replaced)")
        return None

    # -- deciding -------------------------------------------------------------------------

    def decide(self, request_id: str, action: Literal["approve", "reject", "edit"], *,
               by: str, channel: str = "api", reason: str | None = None,
               arguments: Mapping[str, Any] | None = None,
               key: str | None = None) -> ApprovalRequest:
        """Record a decision; raise ApprovalError if the request cannot take it.

        ``key`` is the decider's approver key (the text `agentlab approver add NAME
        --issue-key` printed once): required when the store holds a key for ``by``, refused
        when it holds none. The decision is signed with it here; the key is not stored.
        """
        if not by or not by.strip():
            raise ApprovalError("say who decides (by=..., or --as NAME on the command line)")
        if action not in ("approve", "reject", "edit"):
            raise ApprovalError(f"action must be approve, reject or edit, not {action!r}")
        req = self.store.approval(request_id)
        if req.status != "pending":
            raise ApprovalError(
                f"request {req.id} is already {req.status}"
                + (f" by {req.decided_by} via {req.channel}" if req.decided_by else "")
            )
        now = self._now_us()
        if now >= _us(req.expires_at):
            self._expire(req)
            raise ApprovalError(
                f"request {req.id} expired at {req.expires_at:%Y-%m-%d %H:%M:%S} UTC; the "
                "call was refused; the agent has to ask again"
            )
        if not self.authentic(req):
            raise ApprovalError(
                f"request {req.id} does not carry agentlab's MAC (written by hand, or under "
                "another signing key); it cannot be decided"
            )
        state = self._admit(req, by)
        if key is not None:
            # never recorded anywhere; one too short to redact is no approver key (said below)
            with contextlib.suppress(ValueError):
                default_redactor().add_secret(key)
        self._check_key(state, by.strip(), key)
        edited: Any = None
        if action == "edit":
            if not isinstance(arguments, Mapping):
                raise ApprovalError("an edit needs the new arguments as a JSON object")
            scrubbed, _ = default_redactor().scrub(dict(arguments))
            data, fixed = canonical(scrubbed)
            if fixed:
                raise ApprovalError(
                    f"edited arguments are not portable JSON at {', '.join(fixed)}; "
                    "use plain strings, numbers, booleans, lists and objects"
                )
            edited = loads(data)
        elif arguments is not None:
            raise ApprovalError("arguments are given only with an edit")
        if action == "reject" and not reason:
            raise ApprovalError("a rejection needs a reason (reason=..., or --reason)")
        status = {"approve": "approved", "reject": "rejected", "edit": "edited"}[action]
        by = default_redactor().scrub_text(by)
        reason = default_redactor().scrub_text(reason) if reason is not None else None
        values: dict[str, Any] = {
            "status": status, "action": action, "decided_by": by, "decided_us": now,
            "channel": channel, "reason": reason,
            "edited_arguments": dumps(edited).decode() if edited is not None else None,
        }
        fields = _decision_fields(req.id, req.binding, status, action, by, channel, now,
                                  reason, edited)
        signature = None
        if key is not None:
            signature = sign_decision(key, _signed_message(fields))
        values["signature"] = signature
        values["decision_mac"] = _decision_mac(fields, signature)
        if not self.store.decide_approval(req.id, values):
            latest = self.store.approval(req.id)
            raise ApprovalError(
                f"request {req.id} was {latest.status} meanwhile"
                + (f" by {latest.decided_by} via {latest.channel}" if latest.decided_by else "")
            )
        _notify(req.id)
        return self.store.approval(req.id)

    def _admit(self, req: ApprovalRequest, by: str) -> ApproverState | None:
        """A person decides: never the agent that asked (its run's agent, or the principal
        of the grant it acts under), never a revoked approver, and only one of the rule's
        approvers when it names them (by name, or as a member of a group it names). Returns
        the decider's approver record, if the store holds one."""
        who = by.strip()
        asking = set()
        with contextlib.suppress(RunNotFoundError):
            asking.add(self.store.run(req.run_id, exact=True).agent_name)
        if req.grant:
            g = self.store.grant(req.grant)
            if g is not None:
                asking.add(g.principal)
        if who in asking:
            raise ApprovalError(
                f"{who} is the agent that asked for request {req.id}; it cannot decide its "
                "own call: a person does (" + (f"one of {', '.join(req.approvers)}, "
                if req.approvers else "") + f"`agentlab approve {req.id} --as NAME`)")
        state = approver_state(self.store, who) if who else None
        if state is not None and state.tampered:
            raise ApprovalError(
                f"{who}'s approver history holds an entry without agentlab's MAC (written "
                "into the database by hand, or under another signing key); their decisions "
                "are refused until it is looked into (`agentlab approver list --history`)")
        if state is not None and not state.active:
            raise ApprovalError(
                f"{who} may not decide request {req.id}: their approver rights were revoked"
                + (f" at {state.revoked_at:%Y-%m-%d %H:%M:%S} UTC" if state.revoked_at else "")
                + (f" by {state.revoked_by}" if state.revoked_by else "")
                + (f" ({state.revoke_reason})" if state.revoke_reason else ""))
        if req.approvers and who not in req.approvers and not (
                state is not None and set(state.groups) & set(req.approvers)):
            raise ApprovalError(
                f"{who} may not decide request {req.id}: rule {req.rule} names its approvers: "
                f"{', '.join(req.approvers)} (people, or groups of `agentlab approver list`)")
        return state

    @staticmethod
    def _check_key(state: ApproverState | None, who: str, key: str | None) -> None:
        held = state.public_key if state is not None else None
        if held is None:
            if key is not None:
                raise ApprovalError(
                    f"{who} holds no approver key in this store, so a key cannot sign for "
                    f"them; decide without one, or issue {who} a key with `agentlab approver "
                    f"add {who} --issue-key`")
            return
        if key is None:
            raise ApprovalError(
                f"{who} holds an approver key in this store: sign the decision with it "
                "(--key-from env:VAR or file:PATH on the command line, key=... in Python, "
                "key_from= in a notebook widget)")
        try:
            given = approver_public_key(key)
        except SecretError as exc:
            raise ApprovalError(str(exc)) from None
        if not hmac.compare_digest(given, held):
            raise ApprovalError(
                f"the key given is not {who}'s approver key (an old one, replaced or "
                "revoked, or someone else's); the decision was not recorded")

    def approve(self, request_id: str, *, by: str, channel: str = "api",
                reason: str | None = None, key: str | None = None) -> ApprovalRequest:
        return self.decide(request_id, "approve", by=by, channel=channel, reason=reason,
                           key=key)

    def reject(self, request_id: str, *, by: str, reason: str,
               channel: str = "api", key: str | None = None) -> ApprovalRequest:
        return self.decide(request_id, "reject", by=by, channel=channel, reason=reason,
                           key=key)

    def edit(self, request_id: str, arguments: Mapping[str, Any], *, by: str,
             channel: str = "api", reason: str | None = None,
             key: str | None = None) -> ApprovalRequest:
        return self.decide(request_id, "edit", by=by, channel=channel, reason=reason,
                           arguments=arguments, key=key)

    def _expire(self, req: ApprovalRequest, reason: str = "no decision before expiry") -> None:
        self.store.decide_approval(req.id, {"status": "expired",
                                            "reason": default_redactor().scrub_text(reason)})
        _notify(req.id)

    def withdraw(self, request_id: str, reason: str) -> None:
        """Close a pending request that will not be used (its call was refused)."""
        req = self.store.approval(request_id)
        if req.status == "pending":
            self._expire(req, reason)

    # -- waiting and consuming --------------------------------------------------------------

    def wait(self, request_id: str, *, timeout_s: float | None = None) -> ApprovalRequest:
        """Block until the request is decided or expires (then it is marked expired).

        Wakes at once when the decision is made in this process, else within
        ``poll_interval_s`` of it landing in the store from any process.
        """
        event = _event_for(request_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while True:
                event.clear()
                req = self.store.approval(request_id)
                if req.status != "pending":
                    return req
                left_us = _us(req.expires_at) - self._now_us()
                if left_us <= 0:
                    self._expire(req)
                    return self.store.approval(request_id)
                pause = min(self.poll_interval_s, left_us / 1e6)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return req
                    pause = min(pause, remaining)
                event.wait(pause)
        finally:
            with _wake_lock:
                _wake.pop(request_id, None)

    def consume(self, request_id: str, *, by: str) -> bool:
        """Claim the decided request for execution: True for exactly one caller, ever."""
        return self.store.consume_approval(request_id, by=by, at_us=self._now_us())
