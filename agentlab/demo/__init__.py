"""The sample support-triage agent: the seed story of agentlab.

A support bot triages ticket T-1001 ("Shipments API returning 503") from Acme Logistics,
which upgraded to the enterprise plan two days earlier. It acts through narrow grants
(``crm-reader``, ``jira-writer``, ``reply-drafter``) under a policy that asks the support
lead before a Jira issue is filed or a priority lowered. Recorded three times into a store:
with fresh account data (it escalates to engineering, urgent; the lead approves); with an
account cache that still serves the pre-upgrade record (the lead edits the issue it files,
but the stale entitlement still reaches the reply and the priority: it fails its outcome
check); and on ticket T-1004, which reads like a question (the lead rejects the agent's
priority drop). Deterministic: local in-memory systems, a scripted policy instead of a
model, a scripted lead instead of a human (unless one is asked), a fixed now.

The sample scenario (``agentlab demo``; docs/sample_scenario.md) puts the story among two
weeks of the agent at work, about 400 runs of versions 1.0.0 and 1.1.0 over three teams,
recorded deterministically into ``sample_traces/`` and imported from there;
:func:`sample_story` finds the story's runs by name.

>>> from agentlab import open_store                           # doctest: +SKIP
>>> from agentlab.demo import run_demo                        # doctest: +SKIP
>>> result = run_demo(open_store("demo.db"), out=print)      # doctest: +SKIP
>>> story = build_sample_store(open_store("sample.db"))      # doctest: +SKIP
>>> story.bad_run_id                                          # doctest: +SKIP
"""

from agentlab.demo._agent import (
    AGENT,
    AGENT_VERSION,
    APPROVAL_WAIT,
    DEMO_TICKET,
    FIXED_VERSION,
    LEAD,
    OWNER,
    TEAM,
    WORKFLOW,
    run_triage,
    task_id_for,
    triage,
    triage_fixed,
)
from agentlab.demo._demo import REJECTED_TICKET, DemoResult, run_demo, waiting_approver
from agentlab.demo._governance import (
    GRANTS,
    TOKEN_ENV,
    GrantSpec,
    demo_policy,
    demo_tokens,
    ensure_grants,
)
from agentlab.demo._lead import ScriptedLead
from agentlab.demo._outcome import Check, OutcomeReport, check_outcome
from agentlab.demo._policy import MODEL, Classification, Decision, Reply, ScriptedPolicy
from agentlab.demo._report import governance_lines
from agentlab.demo._sample import (
    SAMPLE_NAME,
    WAITING_APPROVAL,
    SampleStory,
    build_sample_store,
    load_sample,
    record_waiting_run,
    record_waiting_run_here,
    sample_lines,
    sample_path,
    sample_story,
    write_sample,
)
from agentlab.demo._scenario import SEED, plan_runs, record_scenario
from agentlab.demo._tools import TriageTools
from agentlab.demo.systems import Scenario

__all__ = [
    "AGENT",
    "AGENT_VERSION",
    "APPROVAL_WAIT",
    "DEMO_TICKET",
    "FIXED_VERSION",
    "GRANTS",
    "LEAD",
    "MODEL",
    "OWNER",
    "REJECTED_TICKET",
    "SAMPLE_NAME",
    "SEED",
    "TEAM",
    "TOKEN_ENV",
    "WAITING_APPROVAL",
    "WORKFLOW",
    "Check",
    "Classification",
    "Decision",
    "DemoResult",
    "GrantSpec",
    "OutcomeReport",
    "Reply",
    "SampleStory",
    "Scenario",
    "ScriptedLead",
    "ScriptedPolicy",
    "TriageTools",
    "build_sample_store",
    "check_outcome",
    "demo_policy",
    "demo_tokens",
    "ensure_grants",
    "governance_lines",
    "load_sample",
    "plan_runs",
    "record_scenario",
    "record_waiting_run",
    "record_waiting_run_here",
    "run_demo",
    "run_triage",
    "sample_lines",
    "sample_path",
    "sample_story",
    "task_id_for",
    "triage",
    "triage_fixed",
    "waiting_approver",
    "write_sample",
]
