"""The adapters' shared memory of ended tool calls (integrations/_call_memory.py): a resumed
run reads its earlier calls from the store, keyed on the model's tool-call id, and a side
effect begun without an end is blocked; a new run starts empty."""

from __future__ import annotations

import pytest
from store.helpers import RunBuilder  # tests/ is on the path (its conftest)

import agentlab as al
from agentlab.errors import ResumeBlockedError
from agentlab.integrations._call_memory import Outcome, blocked_error, calls_of
from agentlab.store import SqlStore


def test_a_resumed_run_knows_its_earlier_calls(store: SqlStore) -> None:
    b = RunBuilder(workflow="wf", agent_name="bot")
    intent = b.intent(tool="refund", call_id="i1", idempotency_key="x:c1")
    store.append([
        b.started(),
        intent,
        b.tool(tool="refund", call_id="i1", result={"ok": True}, idempotency_key="x:c1",
               intent_id=intent.event_id, side_effect=True),
        b.tool(tool="lookup", call_id="c2", result="gold"),  # read-only: the id is call_id
        b.tool(tool="lookup", call_id="c3", status="error"),
        b.tool(tool="other", call_id="y", idempotency_key="z:y", result=1),  # another adapter
        b.intent(tool="charge", call_id="i4", idempotency_key="x:c4"),  # began, never ended
    ])
    with al.record_run("wf", agent="bot", store=store, run_id=b.run_id, resume=True,
                       catch_up=False) as run:
        ended = calls_of(run, "x:")
        assert ended == {"c1": Outcome("ok", {"ok": True}), "c2": Outcome("ok", "gold"),
                         "c3": Outcome("error", "ToolError: tool failed"),
                         "c4": Outcome("blocked", "charge")}
        assert calls_of(run, "x:") is ended  # read once, then kept up to date by the adapter
        with pytest.raises(ResumeBlockedError, match="charge's side effect"):
            raise blocked_error("charge")


def test_a_new_run_starts_with_no_calls(store: SqlStore) -> None:
    with al.record_run("wf", agent="bot", store=store) as run:
        assert calls_of(run, "x:") == {}
