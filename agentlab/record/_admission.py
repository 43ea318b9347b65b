"""Admission: the stage that decides whether a call may run, and with which credential.

Live admission runs scope → grant → policy → approval → credential before a tool executes
when the tool declares a scope, has side effects, or the run has a policy. Every refusal
is recorded as a denied tool call with its reason and raised as
:class:`~agentlab.errors.ToolDeniedError`; a call that passes carries its grant, the keyed
fingerprint of the secret it used, its scope, phase, the deciding rule and its approval.

A replay admits in two more ways: *as recorded* (a call served from the record carries the
facts the record holds, and nothing is re-resolved or asked again) and *checked* (a call
answered by a stub passes the grant and policy checks, with no secret resolved and no human
asked, because nothing acts).
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlab.approval import Policy, PolicyDecision, pass_through_gate
from agentlab.errors import GrantError, ResumeBlockedError, SecretError, ToolDeniedError
from agentlab.identity import (
    choose_grant,
    fingerprint,
    render_scope,
    resolve_secret,
)
from agentlab.model import (
    ApprovalRequest,
    Denial,
    EventStats,
    Grant,
    ToolCallEvent,
    ToolIntentEvent,
)
from agentlab.record._context import Credential, approval_rule_var, external_call_id_var
from agentlab.record._core import RunCore, note_recorded
from agentlab.record._spec import ToolSpec

__all__ = ["RECORDED_FIELDS", "Admission", "admit", "admit_checked", "admit_edit",
           "admit_recorded", "credential_for_grant", "learn_secrets", "refuse",
           "validate_edit"]

_DENIED = EventStats(steps=1, tool_calls=1, denials=1)
RECORDED_FIELDS = ("scope", "grant", "credential", "phase", "policy_rule", "approval")
"""The admission facts a call carries in the record."""

@dataclass(frozen=True, slots=True)
class Admission:
    """A call that may run: how, under which grant, with which arguments."""

    credential: Credential | None
    fields: dict[str, Any]
    edited: dict[str, Any] | None = None
    approval: ApprovalRequest | None = None


def _grants_of(run: RunCore) -> list[Grant]:
    """The run's grants as they stand now. Grants are never edited, only revoked, so the
    rows are read once per run and each call asks the store only which are revoked."""
    gov = run.governance
    if not gov.grants:
        return []
    if gov.loaded is None or len(gov.loaded) < len(gov.grants):
        stored = {g.name: g for g in run.store.grants()}
        gov.loaded = [stored[name] for name in gov.grants if name in stored]
    revoked = run.store.revoked_grants([g.name for g in gov.loaded if g.revoked_at is None])
    if revoked:
        stored = {g.name: g for g in run.store.grants()}
        gov.loaded = [stored.get(g.name, g) for g in gov.loaded]
    return gov.loaded


def learn_secrets(run: RunCore) -> None:
    """Resolve the run's env/file grant secrets up front, so the redactor knows them before
    anything is recorded (a secret echoed in the task input, say). Callables are left for
    their first use; a secret that cannot be resolved now is refused at call time."""
    for grant in _grants_of(run):
        source = run.governance.secrets.get(grant.name) or grant.secret_ref
        if isinstance(source, str) and source != "callable":
            with contextlib.suppress(SecretError):
                resolve_secret(source)


def refuse(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any], denial: Denial,
            fields: Mapping[str, Any]) -> ToolDeniedError:
    body: dict[str, Any] = {"tool": spec.name, "arguments": dict(arguments), "status": "denied",
                            "denial": denial.model_dump(exclude_none=True), **fields}
    if spec.side_effect:
        body["side_effect"] = True
    if (external_id := external_call_id_var.get()) is not None:
        body["call_id"] = external_id
    event_id = run._emit("tool_call", body, stats=_DENIED)
    exc = ToolDeniedError(spec.name, denial)
    note_recorded(exc, event_id)  # a refusal that ends the run is not counted twice
    return exc


def _record_decision(run: RunCore, req: ApprovalRequest) -> None:
    body: dict[str, Any] = {"request_id": req.id, "tool": req.tool}
    for key, value in (("action", req.action), ("by", req.decided_by),
                       ("channel", req.channel), ("reason", req.reason), ("rule", req.rule),
                       ("arguments", req.edited_arguments)):
        if value is not None:
            body[key] = value
    run._emit("approval", body,
              stats=EventStats(approvals=1 if req.action else 0,
                               overrides=1 if req.action in ("edit", "reject") else 0))


def validate_edit(spec: ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...],
                  edited: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments for an edited call, checked against the tool's
    signature and type hints (the approver typed JSON; the tool expects its own types)."""
    sig = inspect.signature(fn)
    lead = args[:1] if spec.skip_first else ()
    try:
        bound = sig.bind(*lead, **edited)
    except TypeError as exc:
        raise ValueError(f"the edited arguments do not fit {spec.name}(): {exc}") from exc
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: the signature check above still holds
        hints = {}
    for name, value in list(bound.arguments.items()):
        if name in hints and (not lead or name != next(iter(sig.parameters))):
            try:
                bound.arguments[name] = TypeAdapter(hints[name]).validate_python(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise ValueError(
                    f"edited argument {name!r} is not a valid {hints[name]}: {first['msg']}"
                ) from exc
    return bound.args, bound.kwargs


def _grant_and_credential(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any],
                          fields: dict[str, Any]) -> tuple[Grant | None, Credential | None]:
    """The grant that covers this call and the credential it runs with (recording the
    scope, grant and fingerprint in ``fields``), or a recorded refusal."""
    fields.pop("scope", None)
    fields.pop("grant", None)
    fields.pop("credential", None)
    if spec.scope is None:
        if spec.side_effect:
            raise refuse(run, spec, arguments, Denial(
                code="no_grant",
                reason=f"{spec.name} has side effects and declares no scope, so no grant "
                "covers it; declare one: @tool(side_effect=True, scope='system:write')"),
                fields)
        return None, None
    grant = _covering_grant(run, spec, arguments, fields)
    source = run.governance.secrets.get(grant.name) or grant.secret_ref
    if source is None:
        return grant, Credential(grant.name, None, None)
    if source == "callable":
        raise refuse(run, spec, arguments, Denial(
            code="secret", grant=grant.name,
            reason=f"grant {grant.name}'s secret comes from a callable that this run was "
            "not given; pass secrets={name: callable} to record_run"), fields)
    try:
        secret = resolve_secret(source)
    except SecretError as exc:
        raise refuse(run, spec, arguments,
                     Denial(code="secret", reason=str(exc), grant=grant.name),
                     fields) from None
    cred = Credential(grant.name, fingerprint(secret), secret)
    fields["credential"] = cred.fingerprint
    return grant, cred


def _covering_grant(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any],
                    fields: dict[str, Any]) -> Grant:
    """The run's grant that covers the call's scope (noting scope and grant in
    ``fields``), or a recorded refusal."""
    assert spec.scope is not None
    try:
        scope = render_scope(spec.scope, arguments)
    except GrantError as exc:
        raise refuse(run, spec, arguments, Denial(code="scope", reason=str(exc)),
                     fields) from None
    fields["scope"] = scope
    grant, denial = choose_grant(_grants_of(run), scope, principal=run.agent,
                                 workflow=run.workflow, now=_utc(run._clock()))
    if denial is not None:
        raise refuse(run, spec, arguments, denial, fields)
    assert grant is not None
    fields["grant"] = grant.name
    return grant


def _policy(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any],
            fields: dict[str, Any]) -> PolicyDecision:
    decision = (run.governance.policy or _PHASE_ONLY).decide(
        tool=spec.name, scope=fields.get("scope"), phase=run.phase,
        side_effect=spec.side_effect, arguments=arguments)
    required = approval_rule_var.get()
    if decision.action == "allow" and required:
        decision = PolicyDecision("approve", required, f"{spec.name} asks for a person's "
                                  "approval (the agent framework marks it so)")
    fields["policy_rule"] = decision.rule
    if decision.action == "deny":
        code = "phase" if decision.rule.startswith("phase:") else "policy"
        raise refuse(run, spec, arguments, Denial(code=code, reason=decision.reason,
                                                   rule=decision.rule), fields)
    return decision


def admit(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any], call_key: str | None,
          current_arguments: Callable[[], Mapping[str, Any]]) -> Admission:
    """Check one call before it runs; record and raise a denial, or return the admission.

    May block while a human decides (run it off the event loop in async code).
    """
    gov = run.governance
    fields: dict[str, Any] = {}
    if run.phase is not None:
        fields["phase"] = run.phase
    grant, cred = _grant_and_credential(run, spec, arguments, fields)
    decision = _policy(run, spec, arguments, fields)
    if decision.action == "allow":
        return Admission(cred, fields)

    key = call_key or run._idempotency_key(spec, arguments, _canonical_bytes(arguments))
    # The run must be on disk before its request is: a process that dies while waiting is
    # then resumed (run_resumed), not started afresh under the same id.
    run.flush()
    result = pass_through_gate(
        run.approvals, gov.approver, run_id=run.run_id, call_key=key, tool=spec.name,
        arguments=arguments, current_arguments=current_arguments,
        grant=grant.name if grant else None, scope=fields.get("scope"), rule=decision.rule,
        approvers=decision.approvers, phase=run.phase, timeout=gov.approval_timeout, consumer=f"{run.agent}@{run.run_id}",
        reclaim_before_us=run._taken_up_us if key not in _intent_keys(run) else None,
    )
    if result.request is not None:
        fields["approval"] = result.request.id
        if not (result.reclaimed and _decision_recorded(run, result.request.id)):
            _record_decision(run, result.request)
    if result.denial is not None:
        raise refuse(run, spec, arguments, result.denial, fields)
    return Admission(cred, fields, result.edited, result.request)


def admit_edit(run: RunCore, spec: ToolSpec, edited: Mapping[str, Any],
               admission: Admission) -> Admission:
    """Check a call again after an approver edited its arguments: the edit is an approval
    of *these* arguments, not a way around the grant or a rule that refuses them."""
    fields = dict(admission.fields)
    _, cred = _grant_and_credential(run, spec, edited, fields)
    rule = fields.get("policy_rule")
    _policy(run, spec, edited, fields)
    if rule is not None:
        fields["policy_rule"] = rule  # the rule that asked for the approval just given
    return Admission(cred, fields, dict(edited), admission.approval)


def _decision_recorded(run: RunCore, request_id: str) -> bool:
    """Whether the run's record already holds the decision (its earlier process wrote it
    before dying): a decision is recorded once."""
    return any(getattr(e, "request_id", None) == request_id
               for e in run.store.events(run.run_id, kinds=["approval"]))


def _intent_keys(run: RunCore) -> set[str]:
    """Idempotency keys of the run's recorded intents; only a resumed run asks (a decision
    its earlier process consumed may be used again if that process wrote no intent)."""
    if run._taken_up_us is None:
        return set()
    return {a.idempotency_key for a in run.store.actions(run.run_id)}


def admit_recorded(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any],
                   recorded: ToolCallEvent | ToolIntentEvent,
                   replayed: Mapping[str, Any] | None = None, *,
                   substituted: bool = False) -> Admission:
    """A call served from the record (or reconciled under its recorded intent): it carries
    the facts the record holds for it; a recorded refusal is recorded (marked ``replayed``)
    and raised again, unless a fork ``substituted`` the call's answer (what it would have
    returned, had it run)."""
    fields = {k: v for k in RECORDED_FIELDS if (v := getattr(recorded, k, None)) is not None}
    if isinstance(recorded, ToolCallEvent) and recorded.denial is not None and not substituted:
        marked = {**fields, "replayed": dict(replayed)} if replayed is not None else fields
        raise refuse(run, spec, arguments, recorded.denial, marked)
    return Admission(None, fields)


def admit_checked(run: RunCore, spec: ToolSpec, arguments: Mapping[str, Any]) -> Admission:
    """A call answered by a stub: its scope must be covered by one of the run's grants and
    the policy must not refuse it, but no secret is resolved and nobody is asked (a stub
    acts on nothing). What live admission would have asked for is noted on the call."""
    fields: dict[str, Any] = {}
    if run.phase is not None:
        fields["phase"] = run.phase
    if spec.scope is not None:
        _covering_grant(run, spec, arguments, fields)
    _policy(run, spec, arguments, fields)
    return Admission(None, fields)


def credential_for_grant(run: RunCore, spec: ToolSpec, grant_name: str | None) -> Credential | None:
    """The credential of a grant that admitted a call before the run was interrupted: a
    resumed run reconciles the call under it. Revoked or gone since, it is not used."""
    if grant_name is None:
        return None
    grant = next((g for g in _grants_of(run) if g.name == grant_name), None)
    if grant is None or grant.revoked_at is not None:
        raise ResumeBlockedError(
            f"{spec.name} was admitted under grant {grant_name!r}, which this run no longer "
            "holds (revoked, or not in grants=): reconcile the interrupted call by hand")
    source = run.governance.secrets.get(grant.name) or grant.secret_ref
    if source is None:
        return Credential(grant.name, None, None)
    if source == "callable":
        raise ResumeBlockedError(f"grant {grant.name}'s secret comes from a callable this run "
                                 "was not given; pass secrets={name: callable} to resume")
    secret = resolve_secret(source)
    return Credential(grant.name, fingerprint(secret), secret)


def _canonical_bytes(arguments: Mapping[str, Any]) -> bytes:
    from agentlab.model import canonical

    return canonical(dict(arguments))[0]


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


_PHASE_ONLY = Policy()
