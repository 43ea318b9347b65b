"""Child of test_abandoned.py: a recording process that the parent kills with SIGKILL.

Usage: python _abandon_child.py STORE MODE, with ``AGENTLAB_RUN_LEASE_S`` set short by the
parent. ``MODE`` ``call``: the run's tool prints ``IN CALL <run_id>`` and sleeps (killed
mid-call); ``approval``: the run's side effect needs a person's approval and the run waits
for one (killed mid-approval, its request pending). The grant ``abandon-bot-all`` must exist.
"""

from __future__ import annotations

import sys
import time

import agentlab as al

GRANT = "abandon-bot-all"


@al.tool
def slow_lookup(key: str) -> dict[str, str]:
    print(f"IN CALL {al.current_run().run_id}", flush=True)  # type: ignore[union-attr]
    time.sleep(600)
    return {"key": key}


@al.tool(side_effect=True, scope="desk:write")
def close_ticket(ticket: str) -> dict[str, str]:
    return {"closed": ticket}


def main() -> None:
    store, mode = sys.argv[1], sys.argv[2]
    policy = al.Policy([al.Rule("closing-needs-human", "approve", tool="close_ticket")],
                       default="allow")
    with al.record_run("abandon", agent="abandon-bot", store=store, grants=[GRANT],
                       policy=policy, approver=al.announce) as run:
        print(f"STARTED {run.run_id}", flush=True)
        if mode == "call":
            slow_lookup("T-1")
        else:
            close_ticket("T-1")


if __name__ == "__main__":
    main()
