"""Pure analysis of recorded runs: functions that return data, never pictures.

So far: state diffs (between checkpoints of a run, or the same point of two runs) over the
content-addressed state trees, skipping every unchanged subtree; and state lineage (which
step wrote each key, which steps read it); and branch points (where two runs of a task part
ways, or a run leaves its expected actions); stale reads, culprit ranking and ``explain``
(a run's postmortem as data); investigations (MTTE); and timeline rows (one per step, with its lane,
nesting, status and governance, ready for a chart).
"""

from agentlab.analysis._branch import (
    Divergence,
    Signature,
    divergence_from_expected,
    first_divergence,
    signature,
)
from agentlab.analysis._culprits import WEIGHTS, Culprit, Evidence, rank_culprits
from agentlab.analysis._explain import (
    CallCredential,
    Explanation,
    Replayability,
    StateStep,
    explain,
)
from agentlab.analysis._investigations import conclude, investigate, mtte_seconds, who
from agentlab.analysis._lineage import Access, KeyLineage, lineage
from agentlab.analysis._metrics import (
    GROUP_BY,
    METRICS,
    MetricsRow,
    metrics,
    metrics_summary,
)
from agentlab.analysis._stale import StaleRead, stale_reads
from agentlab.analysis._state import checkpoint_at, state_diff
from agentlab.analysis._timeline import TimelineRow, timeline_rows
from agentlab.model import Change, diff_trees, diff_values

__all__ = [
    "GROUP_BY",
    "METRICS",
    "WEIGHTS",
    "Access",
    "CallCredential",
    "Change",
    "Culprit",
    "Divergence",
    "Evidence",
    "Explanation",
    "KeyLineage",
    "MetricsRow",
    "Replayability",
    "Signature",
    "StaleRead",
    "StateStep",
    "TimelineRow",
    "checkpoint_at",
    "conclude",
    "diff_trees",
    "diff_values",
    "divergence_from_expected",
    "explain",
    "first_divergence",
    "investigate",
    "lineage",
    "metrics",
    "metrics_summary",
    "mtte_seconds",
    "rank_culprits",
    "signature",
    "stale_reads",
    "state_diff",
    "timeline_rows",
    "who",
]
