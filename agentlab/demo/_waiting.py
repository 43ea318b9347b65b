"""The process that records the sample's run waiting for approval (T-1006, version 1.1.0).

Usage: ``python -m agentlab.demo._waiting RUN_ID``, the store in ``AGENTLAB_STORE``.
:func:`agentlab.demo.record_waiting_run` starts it and stops it once the run's approval
request is stored: the run is left unended, the request pending, as after a restart. The
run is started resumable under ``RUN_ID``, so ``agentlab resume`` continues it.
"""

from __future__ import annotations

import sys

from agentlab.approval import ApprovalManager
from agentlab.demo._sample import record_waiting_run_here
from agentlab.model import ApprovalRequest
from agentlab.store import open_store


def _asked(request: ApprovalRequest, manager: ApprovalManager) -> None:
    """Nobody answers here: the decision comes from elsewhere, later."""
    sys.stdout.write(f"PENDING {request.id}\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m agentlab.demo._waiting RUN_ID (store in "
                         "AGENTLAB_STORE)\n")
        return 2
    record_waiting_run_here(open_store(), approver=_asked, run_id=argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
