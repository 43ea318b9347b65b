"""The recorder against a real SQLite store: what each API records, and when."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import agentlab as al
from agentlab.store import SqlStore, open_store
from agentlab.testing import allow_all


@pytest.fixture
def db(tmp_path: Path) -> SqlStore:
    s = open_store(tmp_path / "rec.db")
    yield s
    s.close()


class Account(BaseModel):
    id: str
    plan: str


@al.tool
def lookup(account_id: str, *, fresh: bool = False) -> Account:
    return Account(id=account_id, plan="enterprise" if fresh else "standard")


def kinds(store: SqlStore, run_id: str) -> list[str]:
    return [e.kind for e in store.events(run_id)]


def test_records_a_run_with_nested_steps_and_summary(db: SqlStore) -> None:
    with al.record_run("triage", agent="bot", agent_version="2", task_id="T1", owner="ann",
                       team="support", phase="read", store=db, task_input={"q": 1}) as run:
        with al.step("plan") as s:
            lookup("A1")
            lookup(account_id="A2", fresh=True)
            s.output = {"next": "reply"}
        run.outcome(success=True, score=0.5)
    events = db.events(run.run_id)
    assert [e.kind for e in events] == ["run_started", "tool_call", "tool_call", "step", "run_ended"]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    step_ev = events[3]
    assert step_ev.kind == "step" and step_ev.output == {"next": "reply"}
    assert events[1].parent_id == step_ev.id and events[2].parent_id == step_ev.id
    assert events[1].arguments == {"account_id": "A1"}
    assert events[2].arguments == {"account_id": "A2", "fresh": True}
    assert events[2].result == {"id": "A2", "plan": "enterprise"}
    r = db.run(run.run_id)
    assert (r.status, r.success, r.score, r.phase, r.task_id) == ("succeeded", True, 0.5, "read", "T1")
    assert (r.step_count, r.tool_calls, r.llm_calls, r.error_count) == (3, 2, 0, 0)
    assert events[0].task_input == {"q": 1}
    assert db.verify(run.run_id)[0].ok


def test_tool_error_is_recorded_and_reraised(db: SqlStore) -> None:
    @al.tool
    def broken(x: int) -> int:
        raise LookupError(f"no record {x}")

    with al.record_run("w", agent="a", store=db) as run:
        with pytest.raises(LookupError):
            broken(7)
    ev = db.events(run.run_id, kinds=["tool_call"])[0]
    assert ev.status == "error" and ev.error is not None
    assert ev.error.type == "LookupError" and ev.error.message == "no record 7"
    assert "Traceback" in (ev.error.traceback or "")
    assert db.run(run.run_id).error_count == 1


def test_retries_are_recorded_then_success(db: SqlStore) -> None:
    calls = itertools.count(1)

    @al.tool(retries=3, retry_on=(TimeoutError,))
    def flaky() -> str:
        if next(calls) < 3:
            raise TimeoutError("slow")
        return "ok"

    with al.record_run("w", agent="a", store=db) as run:
        assert flaky() == "ok"
    evs = db.events(run.run_id)
    retries = [e for e in evs if e.kind == "retry"]
    assert [r.attempt for r in retries] == [1, 2]
    call = next(e for e in evs if e.kind == "tool_call")
    assert call.attempt == 3 and call.status == "ok"
    assert db.run(run.run_id).retry_count == 2


def test_retries_exhausted_and_non_retryable(db: SqlStore) -> None:
    @al.tool(retries=1, retry_on=(TimeoutError,))
    def always(kind: str) -> None:
        raise TimeoutError("t") if kind == "timeout" else ValueError("v")

    with al.record_run("w", agent="a", store=db) as run:
        with pytest.raises(TimeoutError):
            always("timeout")
        with pytest.raises(ValueError):
            always("value")
    evs = db.events(run.run_id)
    assert [e.kind for e in evs if e.kind in ("retry", "tool_call")] == [
        "retry", "tool_call", "tool_call"]
    calls = [e for e in evs if e.kind == "tool_call"]
    assert [(c.attempt, c.status) for c in calls] == [(2, "error"), (1, "error")]


def test_side_effect_intent_is_committed_before_the_tool_runs(db: SqlStore, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    observer = open_store(tmp_path / "rec.db")

    @al.tool(side_effect=True, scope="mail:send")
    def send(to: str) -> dict[str, str]:
        run_id = al.current_run().run_id  # type: ignore[union-attr]
        seen.setdefault("during", [a.state for a in observer.actions(run_id)])
        return {"sent": to}

    with al.record_run("w", agent="a", store=db, grants=[allow_all(db, agent="a")]) as run:
        send("ann@example.com")
        seen["after"] = [a.state for a in observer.actions(run.run_id)]
        send("ann@example.com")
    assert seen["during"] == ["started-not-finished"]
    assert seen["after"] == ["finished"]  # committed before the call returned, no flush
    actions = db.actions(run.run_id)
    assert [a.state for a in actions] == ["finished", "finished"]
    # Same arguments twice: distinct, deterministic keys (occurrence-numbered).
    assert actions[0].idempotency_key != actions[1].idempotency_key
    assert actions[0].idempotency_key.endswith(":1") and actions[1].idempotency_key.endswith(":2")
    observer.close()


def test_side_effect_failure_and_custom_key(db: SqlStore) -> None:
    @al.tool(side_effect=True, scope="jira:write",
             idempotency_key=lambda a: f"issue:{a['title']}")
    def create_issue(title: str) -> None:
        raise PermissionError("jira says no")

    with al.record_run("w", agent="a", store=db, grants=[allow_all(db, agent="a")]) as run:
        with pytest.raises(PermissionError):
            create_issue("Outage")
    [action] = db.actions(run.run_id)
    assert action.state == "failed" and action.idempotency_key == "issue:Outage"


def test_llm_cost_from_price_table_and_provider(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db, prices={"tiny": (1.0, 2.0)}) as run:
        run.llm_call("tiny", messages=[{"role": "user", "content": "hi"}], response="yo",
                     input_tokens=1_000_000, output_tokens=500_000)
        run.llm_call("tiny", input_tokens=10, output_tokens=10, cost_usd=0.25)
        run.llm_call("mystery-model", input_tokens=10, output_tokens=10)
    calls = db.events(run.run_id, kinds=["llm_call"])
    assert [(c.cost_usd, c.cost_source) for c in calls] == [
        (2.0, "price_table"), (0.25, "provider"), (None, "unknown")]
    r = db.run(run.run_id)
    assert r.cost_usd == pytest.approx(2.25)
    assert (r.input_tokens, r.output_tokens, r.llm_calls) == (1_000_020, 500_020, 3)


def test_state_checkpoints_and_lineage(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db, state={"ticket": {"id": "T1"}}) as run:
        with al.step("lookup"):
            _ = run.state["ticket"]
            run.state["account"] = {"plan": "standard"}
        with al.step("decide"):
            plan = run.state["account"]["plan"]
            run.state.update(priority="low" if plan == "standard" else "high", reply="draft")
        del run.state["reply"]
        run.state["account"]["plan"] = "enterprise"  # in-place, after a read: caught at the end
    cps = db.checkpoints(run.run_id)
    assert [c.writes for c in cps] == [["ticket"], ["account"], ["priority", "reply"], [], ["account"]]
    assert cps[3].deletes == ["reply"]
    assert db.state_at(run.run_id, cps[1].seq) == {"ticket": {"id": "T1"}, "account": {"plan": "standard"}}
    assert db.state_at(run.run_id) == {"ticket": {"id": "T1"}, "account": {"plan": "enterprise"},
                                       "priority": "low"}
    steps = {e.name: e for e in db.events(run.run_id, kinds=["step"])}
    assert steps["lookup"].reads == ["ticket"] and steps["decide"].reads == ["account"]
    # The checkpoint written inside a step names that step as its parent (who wrote the key).
    assert db.events(run.run_id, kinds=["checkpoint"])[1].parent_id == steps["lookup"].id


def test_large_state_shares_structure(db: SqlStore) -> None:
    big = {f"doc{i}": f"{i}-" + "x" * 1000 for i in range(200)}
    with al.record_run("w", agent="a", store=db, state=big) as run:
        run.flush()
        with db._db.read() as conn:
            before = conn.exec_driver_sql("SELECT SUM(LENGTH(data)) FROM agentlab_blobs").scalar()
        for i in range(20):
            run.state[f"doc{i}"] = f"changed {i} " + "y" * 1000
        run.flush()
        with db._db.read() as conn:
            after = conn.exec_driver_sql("SELECT SUM(LENGTH(data)) FROM agentlab_blobs").scalar()
    assert (after - before) / 20 < 5_000
    assert db.state_at(run.run_id)["doc3"].startswith("changed 3")


def test_exception_in_run_marks_it_errored(db: SqlStore) -> None:
    with pytest.raises(RuntimeError), al.record_run("w", agent="a", store=db) as run:
        raise RuntimeError("agent crashed")
    r = db.run(run.run_id)
    assert r.status == "errored" and r.error_count == 1
    ended = db.events(run.run_id)[-1]
    assert ended.kind == "run_ended" and ended.error is not None
    assert ended.error.message == "agent crashed"


def test_outcome_failure_marks_run_failed(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db) as run:
        run.outcome(success=False, score=0.0)
    assert db.run(run.run_id).status == "failed"


def test_values_outside_portable_json_are_normalised_and_listed(db: SqlStore) -> None:
    @al.tool
    def odd() -> dict[str, Any]:
        return {"nan": math.nan, "big": 2**80, "nul": "a\x00b", 3: "int key"}

    with al.record_run("w", agent="a", store=db) as run:
        odd()
    ev = db.events(run.run_id, kinds=["tool_call"])[0]
    assert ev.result == {"nan": "NaN", "big": str(2**80), "nul": "a\ufffdb", "3": "int key"}
    assert ev.normalized == ["/result/3", "/result/big", "/result/nan", "/result/nul"]


def test_payload_over_the_limit_raises_and_stores_nothing_half(tmp_path: Path) -> None:
    store = open_store(tmp_path / "small.db", max_payload_bytes=10_000)

    @al.tool
    def huge() -> str:
        return "z" * 20_000

    with al.record_run("w", agent="a", store=store) as run:
        with pytest.raises(al.PayloadTooLargeError, match="tool_call result is 20,002 bytes"):
            huge()
    assert store.verify(run.run_id)[0].ok
    assert "tool_call" not in kinds(store, run.run_id)
    store.close()


def test_tools_outside_a_run_are_not_recorded(db: SqlStore) -> None:
    assert lookup("A9").plan == "standard"
    assert db.runs() == []


def test_async_runs_in_concurrent_tasks_stay_apart(db: SqlStore) -> None:
    @al.tool
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.001)
        return n * 10

    @al.tool(side_effect=True, scope="db:write")
    async def write(n: int) -> int:
        return n

    async def one(label: str) -> str:
        async with al.record_run("w", agent=label, store=db,
                                 grants=[allow_all(db, agent=label)]) as run:
            for i in range(5):
                await fetch(i)
            await write(1)
        return run.run_id

    async def main() -> list[str]:
        return await asyncio.gather(one("a"), one("b"))

    ids = asyncio.run(main())
    for rid in ids:
        evs = db.events(rid)
        assert [e.kind for e in evs].count("tool_call") == 6
        assert all(e.run_id == rid for e in evs)
        assert [a.state for a in db.actions(rid)] == ["finished"]
        assert db.verify(rid)[0].ok


def test_runs_in_threads_stay_apart(db: SqlStore) -> None:
    ids: list[str] = []

    def work(label: str) -> None:
        with al.record_run("w", agent=label, store=db) as run:
            for i in range(200):
                lookup(f"{label}{i}")
        ids.append(run.run_id)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rid in ids:
        agent = db.run(rid).agent_name
        args = [e.arguments["account_id"] for e in db.events(rid, kinds=["tool_call"])]
        assert args == [f"{agent}{i}" for i in range(200)]


def test_injected_clock_and_ids_make_recordings_byte_stable(tmp_path: Path) -> None:
    def record(path: Path) -> list[bytes]:
        store = open_store(path)
        ticks = itertools.count(1_700_000_000_000_000_000, 1_000_000)
        ids = (f"{i:032x}" for i in itertools.count(1))
        with al.record_run("w", agent="a", store=store, clock=lambda: next(ticks),
                           id_factory=lambda: next(ids), state={"k": 1}) as run:
            lookup("A1")
            run.llm_call("gpt-4o", input_tokens=3, output_tokens=4)
        buf = io.BytesIO()
        store.export_runs([run.run_id], buf)
        store.close()
        return [ln for ln in buf.getvalue().splitlines() if b'"type":"header"' not in ln]

    assert record(tmp_path / "a.db") == record(tmp_path / "b.db")


def test_events_queued_at_exit_are_flushed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import agentlab as al
        store = al.open_store({str(tmp_path / 'exit.db')!r})
        @al.tool
        def t(i): return i
        run = al.record_run("w", agent="a", store=store).__enter__()
        for i in range(50):
            t(i)
        print(run.run_id)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60)
    store = open_store(tmp_path / "exit.db")
    run_id = out.stdout.strip()
    assert kinds(store, run_id).count("tool_call") == 50
    assert store.run(run_id).status == "running"
    assert store.verify(run_id)[0].ok
    store.close()


def test_record_run_rejects_bad_arguments(db: SqlStore) -> None:
    with pytest.raises(al.RecordingError, match="phase must be"):
        al.record_run("w", agent="a", store=db, phase="deploy")  # type: ignore[arg-type]
    with pytest.raises(al.RecordingError, match="workflow name"):
        al.record_run("", agent="a", store=db)
    run = al.record_run("w", agent="a", store=db)
    with run, pytest.raises(al.RecordingError, match="entered once"):
        run.__enter__()


def test_an_exception_recorded_by_its_tool_call_is_counted_once(db: SqlStore) -> None:
    @al.tool
    def flaky() -> None:
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError):
        with al.record_run("w", agent="a", store=db) as run:
            flaky()                          # fails, and the failure ends the run
    with al.record_run("w", agent="a", store=db) as handled:
        try:
            flaky()
        except TimeoutError as exc:
            handled.error(exc)               # the agent records the error it handled
    for rid in (run.run_id, handled.run_id):
        events = db.events(rid)
        [call] = [e for e in events if e.kind == "tool_call"]
        [err] = [e for e in events if e.kind == "error"]
        assert err.recorded_as == call.id    # type: ignore[union-attr]
        assert db.run(rid).error_count == 1
        assert db.verify(rid)[0].ok
