"""Who the demo agent is, and for whom it works: names shared by the agent and its grants."""

from __future__ import annotations

__all__ = ["AGENT", "AGENT_VERSION", "DEMO_TICKET", "LEAD", "OWNER", "TEAM", "WORKFLOW"]

WORKFLOW = "support-triage"
AGENT = "triage-bot"
AGENT_VERSION = "1.0.0"
OWNER = "dana.reyes@example.com"
TEAM = "support-ops"
DEMO_TICKET = "T-1001"
LEAD = "dana (support lead)"
"""The human who answers the demo's approval requests when they are scripted."""
