"""Pure analysis of recorded runs: functions that return data, never pictures.

So far: state diffs (between checkpoints of a run, or the same point of two runs) over the
content-addressed state trees, skipping every unchanged subtree; and state lineage (which
step wrote each key, which steps read it); and branch points (where two runs of a task part
ways, or a run leaves its expected actions).
"""

from agentlab.analysis._branch import (
    Divergence,
    Signature,
    divergence_from_expected,
    first_divergence,
    signature,
)
from agentlab.analysis._diff import Change, diff_trees, diff_values
from agentlab.analysis._investigations import conclude, investigate, mtte_seconds, who
from agentlab.analysis._lineage import Access, KeyLineage, lineage
from agentlab.analysis._state import checkpoint_at, state_diff

__all__ = [
    "Access",
    "Change",
    "Divergence",
    "KeyLineage",
    "Signature",
    "checkpoint_at",
    "conclude",
    "diff_trees",
    "diff_values",
    "divergence_from_expected",
    "first_divergence",
    "investigate",
    "lineage",
    "mtte_seconds",
    "signature",
    "state_diff",
    "who",
]
