"""Pure analysis of recorded runs: functions that return data, never pictures.

So far: state diffs (between checkpoints of a run, or the same point of two runs) over the
content-addressed state trees, skipping every unchanged subtree; and state lineage (which
step wrote each key, which steps read it); and branch points (where two runs of a task part
ways, or a run leaves its expected actions); stale reads; value provenance and checks (the
evidence against each step); culprit ranking and ``explain``
(a run's postmortem as data); investigations (MTTE); and timeline rows (one per step, with its lane,
nesting, status and governance, ready for a chart).
"""

from agentlab.analysis._attribution import (
    AttributionReport,
    Label,
    LabelError,
    read_labels,
    score_attribution,
)
from agentlab.analysis._branch import (
    Divergence,
    Signature,
    divergence_from_expected,
    first_divergence,
    signature,
)
from agentlab.analysis._checks import (
    DEFAULT_CHECKS,
    Check,
    contradicting_answer,
    expected_actions,
    expected_outputs,
    installed_checks,
    invented_values,
    preconditions,
    repeated_writes,
    stand_ins,
    tool_errors,
    trace,
    unconfirmed_writes,
)
from agentlab.analysis._culprits import Culprit, default_checks, rank_culprits
from agentlab.analysis._evidence import KINDS, WEIGHTS, Evidence, Finding
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
from agentlab.analysis._values import Value, ValueIndex, values_in
from agentlab.analysis._view import Expectations, RunView, expectations_of
from agentlab.model import Change, diff_trees, diff_values

__all__ = [
    "DEFAULT_CHECKS",
    "GROUP_BY",
    "KINDS",
    "METRICS",
    "WEIGHTS",
    "Access",
    "AttributionReport",
    "CallCredential",
    "Change",
    "Check",
    "Culprit",
    "Divergence",
    "Evidence",
    "Expectations",
    "Explanation",
    "Finding",
    "KeyLineage",
    "Label",
    "LabelError",
    "MetricsRow",
    "Replayability",
    "RunView",
    "Signature",
    "StaleRead",
    "StateStep",
    "TimelineRow",
    "Value",
    "ValueIndex",
    "checkpoint_at",
    "conclude",
    "contradicting_answer",
    "default_checks",
    "diff_trees",
    "diff_values",
    "divergence_from_expected",
    "expectations_of",
    "expected_actions",
    "expected_outputs",
    "explain",
    "first_divergence",
    "installed_checks",
    "invented_values",
    "investigate",
    "lineage",
    "metrics",
    "metrics_summary",
    "mtte_seconds",
    "preconditions",
    "rank_culprits",
    "read_labels",
    "repeated_writes",
    "score_attribution",
    "signature",
    "stale_reads",
    "stand_ins",
    "state_diff",
    "timeline_rows",
    "tool_errors",
    "trace",
    "unconfirmed_writes",
    "values_in",
    "who",
]
