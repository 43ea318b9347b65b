"""Importers of runs recorded elsewhere (public trajectory sets) into an agentlab store."""

from agentlab.integrations._tau_bench import import_tau_bench

__all__ = ["import_tau_bench"]
