"""Child of test_rollback_crash.py: rolls back a recorded run and may SIGKILL itself on the way.

Usage: python _rollback_child.py STORE RUN_ID WORKDIR KILL

``STORE`` is a SQLite path or a PostgreSQL URL (a per-test schema rides in the URL as
``?options=-csearch_path%3D<schema>``). ``RUN_ID`` is the original run (recorded by the
parent with :func:`record_original`); ``WORKDIR`` holds the fake tracker's files. The
script calls :func:`agentlab.recovery.rollback` under a policy that sends every undo to a
human (an approver that approves at once), so a first call starts the rollback run and a
call after a crash resumes it.

``KILL`` is ``none`` or ``POINT@N``: the process kills itself with SIGKILL at the N-th time
it reaches POINT (counted in this process):

* ``asked``        in the approver, before it decided (the request is pending);
* ``approved``     in the approver, right after it approved an undo;
* ``intent``       when an undo's write-ahead intent is about to be committed (nothing of
                   that batch is stored);
* ``queued-intent`` the same, after first committing what was queued before the intent
                   (as the background writer may have done: the approval event is stored);
* ``undo-started`` inside the undo, before it touched the tracker;
* ``undo-applied`` inside the undo, after it wrote (and fsync'd) its line;
* ``after-result`` once an undo's result is committed (between two undos, or before the
                   rollback run ends after the last one).

The fake tracker is files, shared by every process: ``tracker.jsonl`` (one line per issue
created), ``undo.jsonl`` (one line per execution of the undo, which closes an issue: the
parent counts executions from outside the record) and ``comments.jsonl``. Each line is
written with one write, flushed and fsync'd.

Progress lines on stdout, each flushed: ``READY`` (store open, about to roll back),
``KILL <POINT>@<N>`` (about to die), ``TOOK <seconds>`` (how long rollback() took) and
``RESULT <json>`` (the RollbackResult). Exit status 0 when rollback() returned; 3 with
``BLOCKED <reason>`` on stderr on ResumeBlockedError.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

GRANT = "rollback-tracker-writer"
AGENT = "rollback-bot"
WORKFLOW = "rollback-triage"
TOKEN_ENV = "AGENTLAB_ROLLBACK_TRACKER_TOKEN"
APPROVER = "rollback-tester"
RULE = "undo-needs-a-human"
PROJECT = "SUP"
KILL_POINTS = ("asked", "approved", "intent", "queued-intent", "undo-started", "undo-applied",
               "after-result")

# -- the fake tracker ------------------------------------------------------------------------


def tracker_file(workdir: Path) -> Path:
    return workdir / "tracker.jsonl"


def undo_file(workdir: Path) -> Path:
    return workdir / "undo.jsonl"


def comments_file(workdir: Path) -> Path:
    return workdir / "comments.jsonl"


def append_line(path: Path, obj: Mapping[str, Any]) -> None:
    """One JSON line, in one write, flushed and fsync'd before returning."""
    data = json.dumps(obj, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def issue_states(workdir: Path) -> dict[str, str]:
    """Each created issue's state: ``closed`` once an undo line names it, else ``open``."""
    closed = {line["key"] for line in read_lines(undo_file(workdir))}
    return {line["key"]: ("closed" if line["key"] in closed else "open")
            for line in read_lines(tracker_file(workdir))}


# -- where to die ------------------------------------------------------------------------------

_kill: tuple[str, int] | None = None
_reached: dict[str, int] = {}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def checkpoint(point: str) -> None:
    """Die here if this is the point (and its N-th time) the parent asked for."""
    _reached[point] = _reached.get(point, 0) + 1
    if _kill is not None and _kill == (point, _reached[point]):
        say(f"KILL {point}@{_reached[point]}")
        os.kill(os.getpid(), signal.SIGKILL)


def parse_kill(spec: str) -> tuple[str, int] | None:
    if spec == "none":
        return None
    point, _, n = spec.partition("@")
    if point not in KILL_POINTS or not n.isdigit() or int(n) < 1:
        raise SystemExit(f"bad kill point {spec!r}: none or POINT@N, POINT in {KILL_POINTS}")
    return point, int(n)


def _is_undo(ev: Any, kind: str) -> bool:
    if ev.kind != kind:
        return False
    body = json.loads(ev.body)
    return str(body.get("tool", "")).startswith("undo:") and body.get("status", "ok") == "ok"


def install_writer_hooks() -> None:
    """Kill points around the durable writes: an undo's intent, an undo's result."""
    from agentlab.record import BackgroundWriter

    original = BackgroundWriter.write_now

    def write_now(self: Any, events: Any = ()) -> Any:
        if any(_is_undo(ev, "tool_intent") for ev in events):
            if _kill is not None and _kill[0] == "queued-intent":
                original(self, ())  # what was queued before the intent is now stored
                checkpoint("queued-intent")
            else:
                checkpoint("intent")
        out = original(self, events)
        if any(_is_undo(ev, "tool_call") for ev in events):
            checkpoint("after-result")
        return out

    BackgroundWriter.write_now = write_now  # type: ignore[method-assign]


# -- the tools -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    create_issue: Any
    post_comment: Any

    @property
    def all(self) -> list[Any]:
        return [self.create_issue, self.post_comment]


def make_tools(workdir: Path) -> Tools:
    """The tracker's tools, bound to the files in ``workdir``."""
    import agentlab as al
    from agentlab.record import NOT_APPLIED, Compensation

    def check_secret(what: str) -> None:
        cred = al.credential()
        if cred is None or cred.secret != os.environ[TOKEN_ENV]:
            raise RuntimeError(f"{what} ran without the grant's secret")

    def close_issue(arguments: Mapping[str, Any], result: Any) -> dict[str, Any]:
        """The undo of create_issue: close the issue (one line per execution)."""
        check_secret("undo:create_issue")
        checkpoint("undo-started")
        append_line(undo_file(workdir), {"key": result["key"], "title": arguments["title"],
                                         "pid": os.getpid()})
        checkpoint("undo-applied")
        return {"closed": result["key"]}

    def issue_closed(arguments: Mapping[str, Any], result: Any) -> Any:
        """Whether an interrupted undo closed the issue (its result), else NOT_APPLIED."""
        if any(line["key"] == result["key"] for line in read_lines(undo_file(workdir))):
            return {"closed": result["key"]}
        return NOT_APPLIED

    def issue_created(arguments: Mapping[str, Any], key: str) -> Any:
        for line in read_lines(tracker_file(workdir)):
            if line["title"] == arguments["title"]:
                return {"key": line["key"], "title": line["title"]}
        return NOT_APPLIED

    @al.tool(side_effect=True, scope="tracker:write:{project}", reconcile=issue_created,
             compensate=Compensation(close_issue, reconcile=issue_closed))
    def create_issue(project: str, title: str) -> dict[str, Any]:
        check_secret("create_issue")
        if title.startswith("FAIL"):
            raise RuntimeError(f"the tracker refused {title!r}")
        key = f"{project}-{101 + len(read_lines(tracker_file(workdir)))}"
        append_line(tracker_file(workdir), {"key": key, "title": title})
        return {"key": key, "title": title}

    @al.tool(side_effect=True, scope="tracker:comment")
    def post_comment(issue: str, body: str) -> dict[str, Any]:
        check_secret("post_comment")
        append_line(comments_file(workdir), {"issue": issue, "body": body})
        return {"issue": issue, "comment": len(read_lines(comments_file(workdir)))}

    return Tools(create_issue, post_comment)


def ensure_grant(store: Any) -> None:
    import agentlab as al

    if store.grant(GRANT) is None:
        al.issue_grant(store, GRANT, principal=AGENT, owner="support-team", workflow=WORKFLOW,
                       scopes=["tracker:write:*", "tracker:comment"],
                       expires_in=timedelta(hours=2), secret=f"env:{TOKEN_ENV}")


def record_original(store: Any, run_id: str, workdir: Path, *, mixed: bool = True) -> None:
    """The run to roll back: issues A and B created (compensated); when ``mixed``, also a
    create that failed (nothing to undo) and a comment on B (no compensation)."""
    import agentlab as al

    ensure_grant(store)
    tools = make_tools(workdir)
    with al.record_run(WORKFLOW, agent=AGENT, store=store, run_id=run_id, phase="act",
                       task_input={"ticket": run_id}, grants=[GRANT]) as run:
        a = tools.create_issue(PROJECT, f"A of {run_id}")
        if mixed:
            with contextlib.suppress(RuntimeError):  # the tracker refuses it
                tools.create_issue(PROJECT, f"FAIL of {run_id}")
        b = tools.create_issue(PROJECT, f"B of {run_id}")
        run.state["issues"] = [a["key"], b["key"]]
        if mixed:
            tools.post_comment(b["key"], "linked to the incident")
        run.outcome(success=True)


def undo_policy() -> Any:
    import agentlab as al

    return al.Policy([al.Rule(RULE, "approve", tool="undo:*")])


def main() -> int:
    global _kill
    store_url, run_id, workdir, kill = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    _kill = parse_kill(kill)
    import agentlab as al
    from agentlab.errors import ResumeBlockedError
    from agentlab.recovery import rollback

    install_writer_hooks()
    auto = al.auto_approve(APPROVER)

    def approver(request: Any, manager: Any) -> None:
        checkpoint("asked")
        auto(request, manager)
        checkpoint("approved")

    store = al.open_store(store_url)
    try:
        tools = make_tools(workdir)
        say("READY")
        t0 = time.monotonic()
        try:
            result = rollback(store, run_id, tools=tools.all, policy=undo_policy(),
                              approver=approver)
        except ResumeBlockedError as exc:
            sys.stderr.write(f"BLOCKED {exc}\n")
            return 3
        say(f"TOOK {time.monotonic() - t0:.4f}")
        say("RESULT " + json.dumps(result.to_dict(), sort_keys=True))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
