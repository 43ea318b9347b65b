"""The support-triage agent: one recorded, governed run over one ticket.

Two versions of its code are declared as agent entry points, so a run records which code
made it and recovery can run either again: :data:`triage` (1.0.0, the code of the demo's
runs) and :data:`triage_fixed` (1.1.0, which does not trust an account record older than
the freshness bound and reads the CRM again; replayed after the fix against the bad run,
it flips its outcome).

The run keeps its working memory in ``run.state`` (ticket, classification, account,
entitlement, decision, issue, priority, reply): each step writes what it learned and
reads, through ``run.state[...]``, what it decides on, so every state key carries lineage
(which step wrote it, which steps read it). Steps: triage, account, entitlement, decide,
act, reply, check.

It acts through the demo's grants under the demo's policy, in three phases: ``read`` for
the lookups and the decision (a side effect here would be refused), ``act`` to file the
issue and set the priority (the policy's rules decide: filing, or lowering a priority,
waits for the support lead), then ``draft`` for the customer reply (every side effect needs
the lead's approval). A refused call is recorded with its reason; the agent goes on without
it, and the outcome check judges what was left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from agentlab.approval import Approver
from agentlab.demo._governance import GRANTS, demo_policy, demo_tokens, ensure_grants
from agentlab.demo._lead import ScriptedLead
from agentlab.demo._names import (
    AGENT,
    AGENT_VERSION,
    DEMO_TICKET,
    LEAD,
    OWNER,
    TEAM,
    WORKFLOW,
)
from agentlab.demo._outcome import OutcomeReport, check_outcome
from agentlab.demo._policy import Classification, Decision, ScriptedPolicy
from agentlab.demo._tools import ACCOUNT_FRESHNESS, TriageTools
from agentlab.demo.systems import (
    AccountLookup,
    Entitlement,
    Issue,
    Scenario,
    Systems,
    Ticket,
    WorldSpec,
    build_world,
    story_world,
)
from agentlab.errors import RecordingError, ToolDeniedError
from agentlab.record import RunRecorder, agent, current_run, step
from agentlab.store import RunStore

__all__ = [
    "AGENT",
    "AGENT_VERSION",
    "APPROVAL_WAIT",
    "DEMO_TICKET",
    "FIXED_VERSION",
    "LEAD",
    "OWNER",
    "TEAM",
    "WORKFLOW",
    "run_triage",
    "task_id_for",
    "triage",
    "triage_fixed",
    "world_of",
]

FIXED_VERSION = "1.1.0"
"""The version that checks the freshness of the account record before deciding on it."""

APPROVAL_WAIT = timedelta(minutes=10)
"""How long an approval request waits for a decision before its call is refused."""

Say = Callable[[str], None]


def task_id_for(ticket_id: str) -> str:
    """The task id shared by every run that works on ``ticket_id``."""
    return f"ticket:{ticket_id}"


def world_of(metadata: Mapping[str, Any]) -> WorldSpec:
    """The world a run worked in, from its metadata: the ``demo_world`` it carries (a
    sample-scenario run), else the seed story's for its ``demo_scenario``."""
    world = metadata.get("demo_world")
    if world is not None:
        return WorldSpec.model_validate(world)
    return story_world(metadata.get("demo_scenario", "fresh"))


def _quiet(line: str) -> None:
    pass


def _dump(model: BaseModel | None) -> Any:
    """A result as JSON-able data for the run state."""
    return model.model_dump(mode="json") if model is not None else None


def _triage(run: RunRecorder, tools: TriageTools, policy: ScriptedPolicy, ticket_id: str,
            say: Say) -> None:
    with step("triage"):
        ticket = tools.read_ticket(ticket_id)
        run.state["ticket"] = _dump(ticket)
        classification = policy.classify(ticket)
        run.state["classification"] = _dump(classification)
    say(f"  classify: {classification.category} "
        f"(signals: {', '.join(classification.signals) or 'none'})")


def _look_up_account(run: RunRecorder, tools: TriageTools, say: Say, *,
                     check_freshness: bool) -> None:
    with step("account"):
        account_id = run.state["ticket"]["account_id"]
        account = tools.lookup_account(account_id)
        limit = ACCOUNT_FRESHNESS.total_seconds()
        if check_freshness and account.cache_age_s is not None and account.cache_age_s > limit:
            say(f"  lookup_account {account_id}: cached {account.cache_age_s // 3600}h ago, "
                f"older than {limit / 3600:g}h: reading the CRM again")
            account = tools.refresh_account(account_id)
        run.state["account"] = _dump(account)
    age = f", cached {account.cache_age_s // 3600}h ago" if account.cache_age_s is not None else ""
    source = "CRM" if account.source == "crm" else "cache"
    say(f"  lookup_account {account_id}: plan {account.plan!r} from the {source}, "
        f"as of {account.as_of:%Y-%m-%d %H:%M} UTC{age}")


def _check_entitlement(run: RunRecorder, tools: TriageTools, say: Say) -> None:
    with step("entitlement"):
        plan = run.state["account"]["plan"]
        entitlement = tools.check_entitlement(plan)
        run.state["entitlement"] = _dump(entitlement)
    escalation = "with" if entitlement.engineering_escalation else "without"
    say(f"  check_entitlement {plan}: {entitlement.tier} support, {entitlement.sla_hours}h "
        f"response, {escalation} engineering escalation")


def _decide(run: RunRecorder, policy: ScriptedPolicy, say: Say) -> None:
    with step("decide") as s:
        decision = policy.decide(
            Ticket.model_validate(run.state["ticket"]),
            Classification.model_validate(run.state["classification"]),
            AccountLookup.model_validate(run.state["account"]),
            Entitlement.model_validate(run.state["entitlement"]),
        )
        run.state["decision"] = s.output = _dump(decision)
    target = f"open an issue in {decision.project}" if decision.open_issue else "no issue"
    say(f"  decide: {target}, priority {decision.priority}")
    say(f"    because {decision.rationale}")


def _refused(what: str, exc: ToolDeniedError, say: Say) -> None:
    say(f"  {what}: refused ({exc.denial.code}): {exc.denial.reason}")


def _create_issue(run: RunRecorder, tools: TriageTools, decision: Decision, ticket: Ticket,
                  say: Say) -> Issue | None:
    assert decision.project is not None
    account = AccountLookup.model_validate(run.state["account"])
    entitlement = Entitlement.model_validate(run.state["entitlement"])
    try:
        issue = tools.create_issue(
            project=decision.project,
            title=f"[{ticket.ticket_id}] {ticket.subject}",
            priority=decision.priority,
            description=(f"{account.name} ({account.account_id}), {entitlement.tier} "
                         f"support, {entitlement.sla_hours}h SLA. Customer report: "
                         f"{ticket.body}"),
            ticket_id=ticket.ticket_id,
        )
    except ToolDeniedError as exc:
        _refused(f"create_issue in {decision.project}", exc, say)
        return None
    edited = (issue.project, issue.priority) != (decision.project, decision.priority)
    say(f"  create_issue: {issue.key} ({issue.priority})"
        + (", as the approver edited it" if edited else ""))
    return issue


def _act(run: RunRecorder, tools: TriageTools, say: Say) -> None:
    with step("act"):
        decision = Decision.model_validate(run.state["decision"])
        ticket = Ticket.model_validate(run.state["ticket"])
        issue: Issue | None = None
        if decision.open_issue and decision.project is not None:
            issue = _create_issue(run, tools, decision, ticket, say)
        run.state["issue"] = _dump(issue)
        try:
            change = tools.set_priority(ticket.ticket_id, decision.priority, ticket.priority)
        except ToolDeniedError as exc:
            run.state["priority"] = ticket.priority
            _refused(f"set_priority {ticket.priority} -> {decision.priority}", exc, say)
            return
        run.state["priority"] = change.priority
    say(f"  set_priority: {change.previous} -> {change.priority}")


def _reply(run: RunRecorder, tools: TriageTools, policy: ScriptedPolicy, say: Say) -> None:
    with step("reply"):
        ticket = Ticket.model_validate(run.state["ticket"])
        issue = run.state["issue"]
        reply = policy.reply(
            ticket,
            AccountLookup.model_validate(run.state["account"]),
            Entitlement.model_validate(run.state["entitlement"]),
            Decision.model_validate(run.state["decision"]),
            Issue.model_validate(issue) if issue is not None else None,
        )
        try:
            draft = tools.draft_reply(ticket.ticket_id, reply.body)
        except ToolDeniedError as exc:
            run.state["reply"] = {**_dump(reply), "draft_version": None}
            _refused("draft_reply", exc, say)
            return
        run.state["reply"] = {**_dump(reply), "draft_version": draft.version}
    say(f"  draft_reply: quotes {reply.tier} support, {reply.sla_hours}-hour response"
        + (f", issue {reply.issue_key}" if reply.issue_key else ""))


def _work(task_input: Any, systems: Systems | None, out: Say | None, *,
          check_freshness: bool) -> OutcomeReport:
    """One triage of ``task_input["ticket_id"]`` inside the active run."""
    run = current_run()
    if run is None:
        raise RecordingError("the triage agent runs inside a run: call triage.run(...)")
    say = out or _quiet
    ticket_id = str(task_input["ticket_id"])
    if systems is None:  # a replay or resume in another process: the run's world again
        systems = build_world(world_of(run.metadata), tokens=demo_tokens())
    tools = TriageTools(systems)
    policy = ScriptedPolicy(pace=systems.on_model_call)
    say(f"run {run.run_id} ({run.metadata.get('demo_scenario', 'fresh')} cache): "
        f"ticket {ticket_id}")
    _triage(run, tools, policy, ticket_id, say)
    _look_up_account(run, tools, say, check_freshness=check_freshness)
    _check_entitlement(run, tools, say)
    _decide(run, policy, say)
    run.enter_phase("act")
    _act(run, tools, say)
    run.enter_phase("draft")
    _reply(run, tools, policy, say)
    with step("check") as s:
        report = check_outcome(systems, ticket_id, run.state.snapshot())
        s.output = _dump(report)
        run.outcome(success=report.success, score=report.score)
    verdict = "succeeded" if report.success else f"failed ({', '.join(report.failed)})"
    say(f"  outcome: {verdict}, score {report.score:.2f}")
    return report


_GOVERNED: dict[str, Any] = {
    "grants": [g.name for g in GRANTS], "policy": demo_policy(), "phase": "read",
    "owner": OWNER, "team": TEAM, "tags": ["demo"],
}


@agent(WORKFLOW, version=AGENT_VERSION, name=AGENT, **_GOVERNED)
def triage(task_input: Any, *, systems: Systems | None = None,
           out: Say | None = None) -> OutcomeReport:
    """The triage agent as the demo recorded it (1.0.0): it decides on the account record
    the cache returns, however old."""
    return _work(task_input, systems, out, check_freshness=False)


@agent(WORKFLOW, version=FIXED_VERSION, name=AGENT, **_GOVERNED)
def triage_fixed(task_input: Any, *, systems: Systems | None = None,
                 out: Say | None = None) -> OutcomeReport:
    """The fixed triage agent (1.1.0): an account record older than the freshness bound
    is read again from the CRM before anything is decided on it."""
    return _work(task_input, systems, out, check_freshness=True)


def run_triage(
    store: RunStore,
    *,
    scenario: Scenario,
    ticket_id: str = DEMO_TICKET,
    out: Say | None = None,
    approver: Approver | None = None,
    approval_timeout: timedelta = APPROVAL_WAIT,
    fixed: bool = False,
    systems: Systems | None = None,
) -> str:
    """Record one governed triage run of ``ticket_id`` against fresh sample systems; its
    run id.

    ``scenario`` prepares the account cache: ``"fresh"`` (the lookup reads the CRM) or
    ``"stale"`` (the cache serves Acme's pre-upgrade record). ``out`` receives progress.
    The demo's grants are issued into ``store`` if missing. ``approver`` is told of each
    approval request (default: the scripted support lead, who decides at once); a request
    left undecided for ``approval_timeout`` refuses its call. ``fixed`` runs version 1.1.0;
    ``systems`` replaces the fresh sample systems (to inspect them afterwards).

    >>> run_id = run_triage(open_store("demo.db"), scenario="stale")   # doctest: +SKIP
    """
    ensure_grants(store)
    systems = systems or build_world(story_world(scenario), tokens=demo_tokens())
    code = triage_fixed if fixed else triage
    result = code.run(
        {"ticket_id": ticket_id}, store=store, task_id=task_id_for(ticket_id),
        metadata={"demo_scenario": scenario}, approval_timeout=approval_timeout,
        approver=approver or ScriptedLead(systems, out=out or _quiet),
        kwargs={"systems": systems, "out": out},
    )
    return result.run_id
