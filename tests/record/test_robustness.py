"""Failure paths of the recorder: each test pins down a way a run could be lost or corrupted."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
from agentlab.model import new_id
from agentlab.record import price_call
from agentlab.store import SqlStore, open_store
from agentlab.testing import allow_all


@pytest.fixture
def db(tmp_path: Path) -> SqlStore:
    s = open_store(tmp_path / "rob.db")
    yield s
    s.close()


def test_using_a_run_before_it_starts_is_refused_at_once(db: SqlStore) -> None:
    rec = al.record_run("w", agent="a", store=db)
    with pytest.raises(al.RecordingError, match="has not started"):
        rec.state["x"] = 1
    assert "x" not in rec.state
    with rec:
        rec.state["x"] = 2
    with al.record_run("w", agent="b", store=db) as other:
        pass
    assert {r.run_id for r in db.runs()} == {rec.run_id, other.run_id}


def test_a_run_the_store_refuses_does_not_block_other_runs(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db, run_id="fixed-id"):
        pass
    with pytest.raises(al.RecordingError, match="fixed-id"):
        with al.record_run("w", agent="a", store=db, run_id="fixed-id"):
            pass
    with al.record_run("w", agent="b", store=db) as fine:
        fine.state["k"] = "v"
    assert db.run(fine.run_id).status == "succeeded"
    assert all(r.ok for r in db.verify())


@pytest.mark.parametrize("bad", ["tâche-1", "x" * 37, "-leading-dash", "has space"])
def test_unusable_run_ids_are_refused(db: SqlStore, bad: str) -> None:
    with pytest.raises(al.RecordingError, match="run_id"):
        al.record_run("w", agent="a", store=db, run_id=bad)


def test_oversized_error_is_refused_in_the_caller(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db", max_payload_bytes=5_000)
    with al.record_run("w", agent="a", store=store) as run:
        with pytest.raises(al.PayloadTooLargeError, match="fields other than payloads"):
            run.error(ValueError("e" * 10_000))
    assert store.verify(run.run_id)[0].ok
    store.close()


def test_side_effect_result_survives_a_failed_commit(db: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[int] = []

    @al.tool(side_effect=True, scope="billing:refund")
    def refund(amount: int) -> dict[str, int]:
        done.append(amount)
        return {"refunded": amount}

    with al.record_run("w", agent="a", store=db, grants=[allow_all(db, agent="a")]) as run:
        real = run.writer.write_now
        calls = {"n": 0}

        def flaky(events: Any = ()) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:  # the result, after the intent went through
                raise al.StoreBusyError("database is locked")
            return real(events)

        monkeypatch.setattr(run.writer, "write_now", flaky)
        assert refund(50) == {"refunded": 50}
        monkeypatch.setattr(run.writer, "write_now", real)
    assert done == [50]
    assert [a.state for a in db.actions(run.run_id)] == ["finished"]


def test_durable_records_refuse_to_join_the_callers_transaction(db: SqlStore) -> None:
    ran: list[str] = []

    @al.tool(side_effect=True, scope="mail:send")
    def send(to: str) -> None:
        ran.append(to)

    with al.record_run("w", agent="a", store=db, grants=[allow_all(db, agent="a")]) as run:
        with db.atomic():
            with pytest.raises(al.RecordingError, match=r"inside store\.atomic"):
                send("x")
        send("y")
    assert ran == ["y"]
    assert [a.state for a in db.actions(run.run_id)] == ["finished"]


def test_nul_in_a_large_body_is_normalised_and_exports(db: SqlStore, tmp_path: Path) -> None:
    @al.tool
    def fetch(query: str) -> str:
        return "row\x00" * 50

    with al.record_run("w", agent="a", store=db) as run:
        fetch("q" * 2_500)
    ev = db.events(run.run_id, kinds=["tool_call"])[0]
    assert "\x00" not in ev.result and ev.normalized == ["/result"]
    buf = io.BytesIO()
    db.export_runs([run.run_id], buf)
    other = open_store(tmp_path / "other.db")
    assert other.import_runs(io.BytesIO(buf.getvalue())).imported == [run.run_id]
    other.close()


def test_tools_outliving_their_run_run_unrecorded(db: SqlStore) -> None:
    @al.tool
    def late(x: int) -> int:
        return x + 1

    release = threading.Event()
    results: list[int] = []
    with al.record_run("w", agent="a", store=db) as run:
        import contextvars

        ctx = contextvars.copy_context()
        t = threading.Thread(target=lambda: (release.wait(), results.append(ctx.run(late, 1))))
        t.start()
    release.set()
    t.join()
    assert results == [2]
    assert [e.kind for e in db.events(run.run_id)] == ["run_started", "run_ended"]


def test_a_failed_start_leaves_no_active_run(db: SqlStore) -> None:
    with pytest.raises(TypeError):
        with al.record_run("w", agent="a", store=db, state={1: "x"}):  # type: ignore[dict-item]
            pass
    assert al.current_run() is None
    [summary] = db.runs()
    assert summary.status == "errored"


def test_a_refused_state_value_leaves_the_state_unchanged(db: SqlStore) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with al.record_run("w", agent="a", store=db) as run:
        with pytest.raises(al.PortabilityError):
            run.state["cfg"] = loop
        assert "cfg" not in run.state
        run.state["ok"] = 1
    assert db.run(run.run_id).status == "succeeded"
    assert db.state_at(run.run_id) == {"ok": 1}


def test_retries_have_the_same_parent_sync_and_async(db: SqlStore) -> None:
    attempts = {"s": 0, "a": 0}

    @al.tool(retries=1)
    def flaky_sync() -> str:
        attempts["s"] += 1
        if attempts["s"] == 1:
            raise TimeoutError
        return "ok"

    @al.tool(retries=1)
    async def flaky_async() -> str:
        attempts["a"] += 1
        if attempts["a"] == 1:
            raise TimeoutError
        return "ok"

    async def main() -> str:
        async with al.record_run("w", agent="a", store=db):
            with al.step("s") as s:
                flaky_sync()
                await flaky_async()
        assert s.event_id is not None
        return s.event_id

    step_id = asyncio.run(main())
    retries = [e for e in db.runs() for e in db.events(e.run_id, kinds=["retry"])]
    assert [r.parent_id for r in retries] == [step_id, step_id]


def test_methods_do_not_record_self(db: SqlStore) -> None:
    class Jira:
        @al.tool(side_effect=True, scope="jira:write")
        def create(self, title: str) -> str:
            return title

    with al.record_run("w", agent="a", store=db, run_id="r1",
                       grants=[allow_all(db, agent="a")]) as run:
        Jira().create("Outage")
        Jira().create(title="Outage")
    actions = db.actions(run.run_id)
    assert [a.arguments for a in actions] == [{"title": "Outage"}, {"title": "Outage"}]
    assert [a.idempotency_key.rsplit(":", 1)[1] for a in actions] == ["1", "2"]


def test_forked_children_get_fresh_ids_and_cannot_reuse_the_parents_run(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db) as run:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(r)
            out = [new_id()]
            try:
                run.writer.flush()
                out.append("no error")
            except al.RecordingError as exc:
                out.append("refused" if "another process" in str(exc) else str(exc))
            os.write(w, "\n".join(out).encode())
            os._exit(0)
        os.close(w)
        parent_id = new_id()
        os.waitpid(pid, 0)
        child_id, verdict = os.read(r, 4096).decode().split("\n")
        os.close(r)
    assert child_id != parent_id and verdict == "refused"
    assert db.verify(run.run_id)[0].ok


def test_price_table_prices_snapshots_not_other_models() -> None:
    assert price_call("gpt-4o-2024-08-06", 1_000_000, 0, None) == (2.5, "price_table")
    assert price_call("gpt-4.1-nano", 1_000_000, 0, None) == (None, "unknown")
    assert price_call("gpt-4o", 1_000_000, 0, None, {"mine": (1.0, 1.0)}) == (2.5, "price_table")
    assert price_call("mine", 1_000_000, 0, None, {"mine": (1.0, 1.0)}) == (1.0, "price_table")


def test_llm_messages_must_be_a_sequence_of_messages(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db) as run:
        with pytest.raises(TypeError, match="sequence of messages"):
            run.llm_call("gpt-4o", messages="Summarise this")  # type: ignore[arg-type]


def test_outcome_changes_only_what_is_given(db: SqlStore) -> None:
    with al.record_run("w", agent="a", store=db) as run:
        run.outcome(success=True)
        run.outcome(score=0.9)
    r = db.run(run.run_id)
    assert (r.success, r.score) == (True, 0.9)


def test_closing_the_store_stops_its_writer(tmp_path: Path) -> None:
    store = open_store(tmp_path / "c.db")
    with al.record_run("w", agent="a", store=store) as run:
        pass
    writer = run.writer
    store.close()
    assert not writer._thread.is_alive()
    from agentlab.store import PendingEvent

    with pytest.raises(al.RecordingError, match="closed"):
        writer.enqueue(PendingEvent(run.run_id, None, None, 0, "step", b'{"kind":"step"}'))
