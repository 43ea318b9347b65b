"""The sample support-triage agent: the seed story of agentlab.

A support bot triages ticket T-1001 ("Shipments API returning 503") from Acme Logistics,
which upgraded to the enterprise plan two days earlier. Recorded twice into a store: once
with fresh account data (it escalates to engineering, urgent) and once with an account
cache that still serves the pre-upgrade record (it quotes the wrong entitlement, files the
issue in the support backlog at normal priority, and fails its outcome check).
Deterministic: local in-memory systems, a scripted policy instead of a model, a fixed now.

>>> from agentlab import open_store                           # doctest: +SKIP
>>> from agentlab.demo import run_demo                        # doctest: +SKIP
>>> result = run_demo(open_store("demo.db"), out=print)      # doctest: +SKIP
"""

from agentlab.demo._agent import (
    AGENT,
    AGENT_VERSION,
    DEMO_TICKET,
    OWNER,
    TEAM,
    WORKFLOW,
    run_triage,
    task_id_for,
)
from agentlab.demo._demo import DemoResult, run_demo
from agentlab.demo._outcome import Check, OutcomeReport, check_outcome
from agentlab.demo._policy import MODEL, Classification, Decision, Reply, ScriptedPolicy
from agentlab.demo._tools import TriageTools
from agentlab.demo.systems import Scenario

__all__ = [
    "AGENT",
    "AGENT_VERSION",
    "DEMO_TICKET",
    "MODEL",
    "OWNER",
    "TEAM",
    "WORKFLOW",
    "Check",
    "Classification",
    "Decision",
    "DemoResult",
    "OutcomeReport",
    "Reply",
    "Scenario",
    "ScriptedPolicy",
    "TriageTools",
    "check_outcome",
    "run_demo",
    "run_triage",
    "task_id_for",
]
