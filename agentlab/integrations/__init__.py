"""Importers of runs recorded elsewhere (public trajectory sets) into an agentlab store."""

from agentlab.integrations._tau_bench import import_tau_bench, tau_bench_read_only
from agentlab.integrations._who_and_when import (
    AttributionLabel,
    import_who_and_when,
    who_and_when_labels,
)

__all__ = ["AttributionLabel", "import_tau_bench", "import_who_and_when", "tau_bench_read_only",
           "who_and_when_labels"]
