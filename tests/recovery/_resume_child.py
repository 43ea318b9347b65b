"""Child of test_resume_crash.py: an agent whose approved side effect is killed and resumed.

Usage: python _resume_child.py STORE EFFECTS_LOG [RUN_ID KILL]

``STORE`` is a SQLite path or a PostgreSQL URL (a per-test schema rides in the URL as
``?options=-csearch_path%3D<schema>``). Without ``RUN_ID KILL`` the child imports agentlab,
prints ``LOADED`` and reads ``RUN_ID KILL`` from one stdin line (so the parent can start it
early and overlap the import with other work). The grant ``GRANT`` must exist (the parent
issues it); its secret is read from the environment variable ``TOKEN_ENV``.

The agent records run ``RUN_ID`` with ``resume=True`` (the same code starts the run or
continues it): two read-only lookups and two state writes, then ``create_issue``, a side
effect that the policy sends to the automatic approver, then one more lookup and a state
write, and ``run.outcome(success=True)``.

``create_issue`` counts its executions outside the record: it appends one line
``<idempotency key> <pid>`` to ``EFFECTS_LOG`` (flushed and fsync'd before it returns). Its
``reconcile`` hook reads that log: the call's result if its key is there, else
``NOT_APPLIED`` (the resumed run then executes it under the same intent).

``KILL`` is where the child SIGKILLs itself, the first time it gets there:

``asked``            in the approver, before it decides (a pending request)
``approved``         in the approver, right after approving (decided, not consumed)
``consumed``         the durable write of the intent, before it commits (the decision is
                     consumed, no intent is stored, the queued events are lost with it)
``consumed-flushed`` the same, after committing what was queued before the intent (the
                     approval event is stored, as when the background writer got to it)
``intent``           in the tool, before the effect (intent committed, no effect)
``effect``           in the tool, after the fsync'd log line (effect done, no result)
``result``           in the lookup after the call (its result committed)
``none``             no self-kill (the parent may still kill it: its ``random`` mode)

Progress lines on stdout, each written at once and flushed: ``LOADED``, ``STARTED <run_id>
<new|resumed>``, ``ASKED <request id>``, ``APPROVED <request id>``, ``EXECUTING <key>``,
``EXECUTED <key>``, ``RECONCILED <key> <applied|not-applied>``, ``CREATED <issue>``,
``KILL <point>`` (just before a self-kill), ``DONE``. Exit status 0 when the run
completed; 2 with ``REFUSED <reason>`` on stderr when ``record_run`` refuses the run (it has
already ended, say). The child leaves with ``os._exit`` once its store is closed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.model import ApprovalRequest
from agentlab.record import NOT_APPLIED, BackgroundWriter, record_run, tool
from agentlab.store import Appended, PendingEvent, RunStore

GRANT = "resume-sys-writer"
AGENT = "resume-bot"
WORKFLOW = "resume-crash"
TOKEN_ENV = "AGENTLAB_RESUME_SYS_TOKEN"
APPROVER = "resume-tester"
RULE = "needs-a-human"
SCOPES = ["sys:read", "sys:write"]
TICKET = "T-7"
KILL_POINTS = ("asked", "approved", "consumed", "consumed-flushed", "intent", "effect",
               "result", "none")


def say(line: str) -> None:
    # One write per line, flushed: a SIGKILL never leaves half a line behind a full one.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def die(point: str) -> None:
    say(f"KILL {point}")
    os.kill(os.getpid(), signal.SIGKILL)


def issue_key(arguments: Mapping[str, Any]) -> str:
    """The call's idempotency key: the request the agent makes, named by its run."""
    return f"issue:{arguments['request']}"


def issue_for(key: str) -> dict[str, Any]:
    """What the system answers for the request with this key (the same every time)."""
    return {"key": "SUP-" + hashlib.sha256(key.encode()).hexdigest()[:6], "project": "SUP"}


def executions(log_path: Path) -> list[tuple[str, int]]:
    """(idempotency key, pid) of every execution the effects log holds, in order."""
    if not log_path.exists():
        return []
    out: list[tuple[str, int]] = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        key, pid = line.rsplit(" ", 1)
        out.append((key, int(pid)))
    return out


class Killer:
    """Kills the process at one point, the first time it gets there."""

    def __init__(self, point: str) -> None:
        if point not in KILL_POINTS:
            raise SystemExit(f"unknown kill point {point!r}; one of {', '.join(KILL_POINTS)}")
        self.point = point

    def at(self, point: str) -> None:
        if point == self.point:
            die(point)

    def patch_writer(self) -> None:
        """Kill at the durable write of an intent, before (or after the rest of) the batch
        commits: the gap between consuming a decision and recording the call's intent."""
        if self.point not in ("consumed", "consumed-flushed"):
            return
        real = BackgroundWriter.write_now
        point = self.point

        def write_now(self: BackgroundWriter,
                      events: Sequence[PendingEvent] = ()) -> list[Appended]:
            if any(ev.kind == "tool_intent" for ev in events):
                if point == "consumed-flushed":
                    real(self, ())  # what was queued before the intent is committed
                die(point)
            return real(self, events)

        BackgroundWriter.write_now = write_now  # type: ignore[method-assign]


def run_agent(store: RunStore, run_id: str, log_path: Path, killer: Killer) -> dict[str, Any]:
    """Record (or resume) the run; returns the issue the run created."""

    @tool(scope="sys:read")
    def lookup_ticket(ticket_id: str) -> dict[str, Any]:
        return {"id": ticket_id, "title": "Checkout fails with 502", "priority": "high"}

    @tool(scope="sys:read")
    def lookup_customer(account: str) -> dict[str, Any]:
        return {"account": account, "plan": "enterprise"}

    @tool(scope="sys:read")
    def lookup_sla(plan: str) -> dict[str, Any]:
        killer.at("result")  # create_issue's result is committed by now
        return {"plan": plan, "hours": 4}

    def reconcile(arguments: Mapping[str, Any], idempotency_key: str) -> Any:
        if al.credential().secret != os.environ[TOKEN_ENV]:
            raise RuntimeError("reconcile ran without the grant's secret")
        applied = any(key == idempotency_key for key, _ in executions(log_path))
        say(f"RECONCILED {idempotency_key} {'applied' if applied else 'not-applied'}")
        return issue_for(idempotency_key) if applied else NOT_APPLIED

    @tool(side_effect=True, scope="sys:write", idempotency_key=issue_key, reconcile=reconcile)
    def create_issue(request: str, title: str) -> dict[str, Any]:
        if al.credential().secret != os.environ[TOKEN_ENV]:
            raise RuntimeError("create_issue ran without the grant's secret")
        key = issue_key({"request": request})
        say(f"EXECUTING {key}")
        killer.at("intent")  # the intent is committed, the effect not done
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{key} {os.getpid()}\n")
            fh.flush()
            os.fsync(fh.fileno())
        say(f"EXECUTED {key}")
        killer.at("effect")  # the effect is done, its result not recorded
        return issue_for(key)

    auto = al.auto_approve(APPROVER)

    def approver(request: ApprovalRequest, manager: ApprovalManager) -> None:
        say(f"ASKED {request.id}")
        killer.at("asked")
        auto(request, manager)
        say(f"APPROVED {request.id}")
        killer.at("approved")

    policy = al.Policy([al.Rule(RULE, "approve", tool="create_issue")])
    with record_run(WORKFLOW, agent=AGENT, store=store, run_id=run_id, resume=True,
                    task_input={"ticket": TICKET}, grants=[GRANT], policy=policy,
                    approver=approver) as run:
        say(f"STARTED {run.run_id} {'resumed' if run._taken_up_us is not None else 'new'}")
        ticket = lookup_ticket(TICKET)
        run.state["ticket"] = ticket
        customer = lookup_customer("acme")
        run.state["customer"] = customer
        issue = create_issue(f"{run.run_id}/{TICKET}", f"Escalate {TICKET}: {ticket['title']}")
        say(f"CREATED {issue['key']}")
        run.state["issue"] = issue
        run.state["sla"] = lookup_sla(customer["plan"])
        run.outcome(success=True)
    return issue


def main() -> int:
    store_url, log_path = sys.argv[1], Path(sys.argv[2])
    if len(sys.argv) > 3:
        run_id, point = sys.argv[3], sys.argv[4]
    else:
        say("LOADED")
        line = sys.stdin.readline().split()
        if not line:
            return 0  # the parent let its spare child go unused
        run_id, point = line
    killer = Killer(point)
    killer.patch_writer()
    store = al.open_store(store_url)
    try:
        run_agent(store, run_id, log_path, killer)
    except al.RecordingError as exc:
        sys.stderr.write(f"REFUSED {exc}\n")
        return 2
    finally:
        store.close()
    say("DONE")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The store is closed (everything recorded is committed) and the output flushed: skip
    # the interpreter's teardown, which takes longer than the run (and would dilute the
    # parent's random kills with kills of a process that has finished).
    os._exit(code)
