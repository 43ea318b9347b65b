"""Importers of runs recorded elsewhere (public trajectory sets) into an agentlab store."""

from agentlab.integrations._detect import FORMATS, detect_format
from agentlab.integrations._swe_agent import import_swe_agent, swe_agent_read_only
from agentlab.integrations._tau_bench import import_tau_bench, tau_bench_read_only
from agentlab.integrations._who_and_when import (
    AttributionLabel,
    import_who_and_when,
    who_and_when_labels,
)

__all__ = ["FORMATS", "AttributionLabel", "detect_format", "import_swe_agent",
           "import_tau_bench", "import_who_and_when", "swe_agent_read_only",
           "tau_bench_read_only", "who_and_when_labels"]
