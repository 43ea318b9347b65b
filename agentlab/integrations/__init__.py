"""Importers of runs recorded elsewhere (public trajectory sets, OpenTelemetry traces) into an
agentlab store, the format detection of ``agentlab import``, and the OTLP export of agentlab
runs.

``AgentlabSpanExporter`` needs ``opentelemetry-sdk``; it is loaded on first use, so this
package imports without it. The framework adapters (``agentlab.integrations.pydantic_ai``,
``agentlab.integrations.langgraph``) are imported on demand: each needs its extra.
"""

from typing import TYPE_CHECKING, Any

from agentlab.integrations._detect import FORMATS, detect_format
from agentlab.integrations._otlp import export_otlp, import_otlp
from agentlab.integrations._swe_agent import import_swe_agent, swe_agent_read_only
from agentlab.integrations._tau_bench import import_tau_bench, tau_bench_read_only
from agentlab.integrations._who_and_when import (
    AttributionLabel,
    import_who_and_when,
    who_and_when_labels,
)

if TYPE_CHECKING:
    from agentlab.integrations._otel import AgentlabSpanExporter

__all__ = ["FORMATS", "AgentlabSpanExporter", "AttributionLabel", "detect_format",
           "export_otlp", "import_otlp", "import_swe_agent", "import_tau_bench",
           "import_who_and_when", "swe_agent_read_only", "tau_bench_read_only",
           "who_and_when_labels"]


def __getattr__(name: str) -> Any:
    if name == "AgentlabSpanExporter":
        try:
            from agentlab.integrations._otel import AgentlabSpanExporter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "AgentlabSpanExporter needs the OpenTelemetry SDK: pip install "
                "opentelemetry-sdk") from exc
        return AgentlabSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
