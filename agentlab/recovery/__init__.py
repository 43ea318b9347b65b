"""Recovery: replay a recorded run (strictly, or after a fix), resume an interrupted one,
fork one from a step with an edited value, search for counterfactual culprits, and roll
back a run's side effects.

Every operation runs the agent's code in a run whose mode serves the record
(:mod:`agentlab.recovery._modes`); a replay never executes a side-effecting tool live. What
each operation promises is stated in docs/recovery.md.
"""

from agentlab.recovery._counterfactual import (
    DEFAULT_BUDGET,
    Budget,
    CounterfactualReport,
    Trial,
    counterfactuals,
)
from agentlab.recovery._modes import Divergence, ForkPoint, ReplayMode, Strategy
from agentlab.recovery._operations import AgentRef, fork, replay, resume
from agentlab.recovery._result import Outcome, ReplayResult, ResumeResult, run_shape
from agentlab.recovery._rollback import RollbackResult, Undo, rollback, rollback_run_id

__all__ = [
    "DEFAULT_BUDGET",
    "AgentRef",
    "Budget",
    "CounterfactualReport",
    "Divergence",
    "ForkPoint",
    "Outcome",
    "ReplayMode",
    "ReplayResult",
    "ResumeResult",
    "RollbackResult",
    "Strategy",
    "Trial",
    "Undo",
    "counterfactuals",
    "fork",
    "replay",
    "resume",
    "rollback",
    "rollback_run_id",
    "run_shape",
]
