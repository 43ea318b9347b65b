"""Child of test_restart.py: an agent whose side-effecting call waits for a human's approval.

Usage: python _restart_agent.py STORE RUN_ID SIDE_EFFECT_LOG

``STORE`` is a SQLite path or a PostgreSQL URL (a per-test schema rides in the URL as
``?options=-csearch_path%3D<schema>``). The script issues its grant if it is missing, then
records run ``RUN_ID`` with ``resume=True`` (the same code starts the run or continues it):
two read-only lookups and two state writes, then ``create_issue``, which the policy sends to
a human. The approver only announces the request, so the call waits, up to five minutes,
for a decision from elsewhere (``agentlab approve ID --as NAME`` in another process).

The side effect appends one line to ``SIDE_EFFECT_LOG``: the parent counts executions from
outside, whatever the record says.

Progress lines on stdout, each flushed: ``STARTED <run_id>``, ``WAITING`` (about to make the
gated call), ``CREATED <issue key>``, ``DONE``. Exit status 0 when the run completed; 2 with
a one-line ``REFUSED <reason>`` on stderr when ``record_run`` refuses the run (it has
already ended, say).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

GRANT = "restart-jira-writer"
AGENT = "restart-bot"
WORKFLOW = "restart-triage"
TOKEN_ENV = "AGENTLAB_RESTART_JIRA_TOKEN"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    store_url, run_id, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
    import agentlab as al
    from agentlab.approval import announce

    store = al.open_store(store_url)
    if store.grant(GRANT) is None:
        al.issue_grant(store, GRANT, principal=AGENT, owner="support-team", workflow=WORKFLOW,
                       scopes=["jira:read", "jira:write:SUP"], expires_in=timedelta(hours=1),
                       secret=f"env:{TOKEN_ENV}")

    @al.tool(scope="jira:read")
    def lookup_ticket(ticket_id: str) -> dict[str, Any]:
        return {"id": ticket_id, "title": "Checkout fails with 502", "priority": "high"}

    @al.tool(scope="jira:read")
    def lookup_customer(account: str) -> dict[str, Any]:
        return {"account": account, "plan": "enterprise"}

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str) -> dict[str, Any]:
        if al.credential().secret != os.environ[TOKEN_ENV]:
            raise RuntimeError("create_issue ran without the grant's secret")
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {project} {title}\n")
            fh.flush()
            os.fsync(fh.fileno())
        return {"key": f"{project}-101"}

    policy = al.Policy([al.Rule("jira-writes-need-a-human", "approve", tool="create_issue")])
    try:
        with al.record_run(WORKFLOW, agent=AGENT, store=store, run_id=run_id, resume=True,
                           task_input={"ticket": "T-7"}, grants=[GRANT], policy=policy,
                           approver=announce, approval_timeout=timedelta(minutes=5)) as run:
            say(f"STARTED {run.run_id}")
            ticket = lookup_ticket("T-7")
            run.state["ticket"] = ticket
            run.state["customer"] = lookup_customer("acme")
            say("WAITING")
            issue = create_issue("SUP", f"Escalate {ticket['id']}: {ticket['title']}")
            say(f"CREATED {issue['key']}")
            run.state["issue"] = issue
            run.outcome(success=True)
    except al.RecordingError as exc:
        sys.stderr.write(f"REFUSED {exc}\n")
        return 2
    finally:
        store.close()
    say("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
