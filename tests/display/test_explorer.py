"""The run explorer without a browser: its comm is a recording fake, so each test sends what
the page would send and reads the widget's replies, over stores recorded with the real
recorder (the demo's three runs; thousands of small runs; a run of thousands of steps).

The widget must never read a whole store or a whole run for one view: the store's
``runs()`` and ``events()`` are made to fail while it answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import agentlab as al
from agentlab.demo import LEAD, DemoResult, run_demo
from agentlab.display import RunExplorer, explore
from agentlab.display._explorer_pages import COMPARE_BUDGET, COMPARE_CHUNK, TIMELINE_ROWS
from agentlab.errors import ConfigError, RunNotFoundError
from agentlab.store import RunFilter, SqlStore
from agentlab.testing import allow_all

from .conftest import FakeComm

pytestmark = pytest.mark.usefixtures("comms")  # tests/display/conftest.py: a fake comm


@pytest.fixture(autouse=True)
def no_full_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every run or every event of a run is what the explorer must not do."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the explorer read a whole store or run")

    monkeypatch.setattr(SqlStore, "runs", refuse)
    monkeypatch.setattr(SqlStore, "events", refuse)


class Page:
    """The page's side of one widget: send a request over the comm, get its reply."""

    def __init__(self, widget: RunExplorer, comms: dict[str, FakeComm]) -> None:
        self.widget = widget
        self.comm = comms[widget.comm.comm_id]
        self.n = 0

    def ask(self, type_: str, **body: Any) -> dict[str, Any]:
        self.n += 1
        before = len(self.comm.sent)
        self.comm.from_frontend({"method": "custom",
                                 "content": {"id": self.n, "type": type_, **body}})
        (msg,) = self.comm.sent[before:]
        assert msg["method"] == "custom"
        reply: dict[str, Any] = msg["content"]
        assert reply["id"] == self.n and reply["type"] == type_
        json.dumps(reply)  # what goes over the comm is plain JSON
        return reply

    def data(self, type_: str, **body: Any) -> Any:
        reply = self.ask(type_, **body)
        assert reply["ok"], reply
        return reply["data"]


@pytest.fixture
def demo(store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DemoResult:
    monkeypatch.setenv("AGENTLAB_KEY_FILE", str(tmp_path / "key"))
    return run_demo(store, out=None)


@pytest.fixture
def page(store: SqlStore, demo: DemoResult, comms: dict[str, FakeComm]) -> Page:
    return Page(explore(store), comms)


def test_runs_page_filters_search_and_facets(page: Page, demo: DemoResult) -> None:
    rows = page.data("runs")["rows"]
    assert [r["run_id"] for r in rows] == [demo.rejected_run_id, demo.bad_run_id,
                                           demo.good_run_id]  # newest first
    failed = page.data("runs", filters={"status": "failed"})["rows"]
    assert {r["run_id"] for r in failed} == {demo.bad_run_id, demo.rejected_run_id}
    found = page.data("runs", filters={"search": "t-1004"})["rows"]  # any case
    assert [r["task_id"] for r in found] == ["ticket:T-1004"]
    assert page.data("runs", filters={"search": demo.good_run_id[-10:]})["rows"][0][
        "run_id"] == demo.good_run_id
    assert page.data("runs", filters={"search": "%"})["rows"] == []  # literally a percent sign
    assert page.data("runs", filters={"agent_version": "9.9"})["rows"] == []
    assert page.data("runs", filters={"since": "2999-01-01"})["rows"] == []
    assert len(page.data("runs", filters={"until": "2999-01-01"})["rows"]) == 3
    facets = page.data("facets")["facets"]
    assert facets["workflow"] == ["support-triage"]
    assert facets["status"] == ["failed", "succeeded"]
    bad = page.ask("runs", filters={"since": "last tuesday"})
    assert not bad["ok"] and "since 'last tuesday' is not a date" in bad["error"]
    assert "unknown request type" in page.ask("frobnicate")["error"]


def test_tree_expands_and_a_step_shows_its_governance_and_state(
        page: Page, demo: DemoResult, store: SqlStore) -> None:
    top = page.data("tree", run_id=demo.bad_run_id)
    assert top["run"]["status"] == "failed" and top["next"] is None
    steps = {n["name"]: n for n in top["nodes"] if n["kind"] == "step"}
    assert steps["account"]["children"] == 2
    kids = page.data("tree", run_id=demo.bad_run_id[:-2], parent=steps["account"]["id"])
    lookup = next(n for n in kids["nodes"] if n["kind"] == "tool_call")
    assert lookup["name"] == "lookup_account" and lookup["children"] == 0

    d = page.data("step", run_id=demo.bad_run_id, seq=lookup["seq"])
    assert json.loads(d["inputs"]["arguments"]["text"]) == {"account_id": "ACME-1042"}
    assert json.loads(d["outputs"]["result"]["text"])["source"] == "cache"
    grant = store.grant("crm-reader")
    assert grant is not None and grant.fingerprint
    assert d["governance"]["grant"] == "crm-reader"
    assert d["governance"]["credential"] == grant.fingerprint
    assert d["state"]["changes"][0]["op"] == "add"
    assert d["state"]["changes"][0]["path"] == "/account"
    assert '"plan": "standard"' in d["state"]["changes"][0]["new"]

    # a step that encloses others: the state it changed across its children
    act = page.data("step", run_id=demo.bad_run_id, seq=steps["act"]["seq"])
    assert {c["path"] for c in act["state"]["changes"]} == {"/issue", "/priority"}


def test_a_step_shows_the_approval_decision(page: Page, demo: DemoResult) -> None:
    act = next(n for n in page.data("tree", run_id=demo.bad_run_id)["nodes"]
               if n["kind"] == "step" and n["name"] == "act")
    calls = page.data("tree", run_id=demo.bad_run_id, parent=act["id"])["nodes"]
    issue = next(n for n in calls if n["kind"] == "tool_call" and n["name"] == "create_issue")
    d = page.data("step", run_id=demo.bad_run_id, seq=issue["seq"])
    a = d["approval"]
    assert (a["status"], a["action"], a["decided_by"]) == ("edited", "edit", LEAD)
    assert json.loads(a["edited_arguments"]["text"])["project"] == "ENG"
    assert d["governance"]["grant"] == "jira-writer"
    intent = next(n for n in calls if n["kind"] == "tool_intent")
    assert intent["status"] == "intent"
    shown = page.data("step", run_id=demo.bad_run_id, seq=intent["seq"])
    assert shown["governance"]["grant"] == "jira-writer"
    assert shown["approval"]["id"] == a["id"]
    missing = page.ask("step", run_id=demo.bad_run_id, seq=999)
    assert not missing["ok"] and "has no step 999" in missing["error"]


def test_compare_marks_the_first_divergence(page: Page, demo: DemoResult) -> None:
    c = page.data("compare", a=demo.good_run_id, b=demo.bad_run_id)
    dv = c["divergence"]
    assert (dv["a"], dv["b"]) == ("check_entitlement", "check_entitlement")
    assert [x["tool"] for x in c["differing_results"]] == ["lookup_account"]
    (marked,) = [r for r in c["rows"] if r["diverges"]]
    assert marked["index"] == dv["index"] and marked["a"]["seq"] == dv["a_seq"]
    assert "enterprise" in marked["a"]["summary"] and "standard" in marked["b"]["summary"]
    assert [r["a"]["name"] for r in c["rows"] if r["result_differs"]] == ["lookup_account"]
    same = page.data("compare", a=demo.good_run_id, b=demo.good_run_id)
    assert same["divergence"] is None and same["rows"] == [] and same["resume"] is None
    assert same["compared"] == 6 and same["differing_results"] == []  # its six tool calls


def test_timeline_of_a_short_run_has_every_step(page: Page, demo: DemoResult) -> None:
    t = page.data("timeline", run_id=demo.rejected_run_id)
    assert t["histogram"] is None and t["next"] is None
    statuses = {(row[2], row[3]) for row in t["rows"]}
    assert ("set_priority", "rejected") in statuses and ("set_priority", "denied") in statuses


def test_opened_on_a_run_and_a_comparison(store: SqlStore, demo: DemoResult) -> None:
    w = explore(store, demo.bad_run_id[:-2], compare=demo.good_run_id[:-2])
    assert (w.run_id, w.compare_id) == (demo.bad_run_id, demo.good_run_id)
    assert "explorer.js" not in repr(w) and "RunExplorer" in repr(w)
    with pytest.raises(RunNotFoundError):
        explore(store, "no-such-run")
    with pytest.raises(ConfigError, match="compare= needs run_id="):
        RunExplorer(store, compare=demo.good_run_id)


def test_the_front_end_ships_in_the_package_and_escapes_text() -> None:
    import agentlab.display as display

    here = Path(display.__file__).parent
    js = (here / "explorer.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in js and "import " not in js  # nothing loaded from anywhere
    assert "--jp-" in (here / "explorer.css").read_text()


def test_recorded_secrets_stay_out_of_the_page(store: SqlStore, comms: dict[str, FakeComm]
                                               ) -> None:
    key = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"

    @al.tool
    def call_api(token: str, query: str) -> dict[str, str]:
        return {"echo": token, "query": query}

    with al.record_run("secrets", agent="bot", store=store,
                       grants=[allow_all(store, agent="bot")]) as run:
        call_api(key, "status")
        run.state["seen"] = key
    p = Page(explore(store), comms)
    nodes = p.data("tree", run_id=run.run_id)["nodes"]
    replies = [p.ask("step", run_id=run.run_id, seq=n["seq"]) for n in nodes]
    replies.append(p.ask("timeline", run_id=run.run_id))
    shown = json.dumps(replies)
    assert "status" in shown and key not in shown and key[:20] not in shown


# -- scale: bounded pages on thousands of runs and a run of thousands of steps ------------------

RUNS = 2_000
STEPS = 300  # x 10 calls: a run of 3,000 tool calls (and 3,300 step-like events)


@al.tool
def lookup(i: int) -> dict[str, int]:
    return {"i": i}


@pytest.fixture
def many(store: SqlStore) -> dict[str, str]:
    """RUNS small runs over three workflows, and two long runs that part late."""
    for i in range(RUNS):
        with al.record_run(f"wf{i % 3}", agent=f"bot{i % 2}", agent_version=f"v{i % 4}",
                           store=store, task_id=f"T-{i:05d}") as run:
            lookup(i)
            run.outcome(success=i % 5 != 0)
    ids = {}
    for name, odd in (("long", None), ("long-b", 7)):
        with al.record_run("long", agent="bot", store=store, task_id=name) as run:
            for s in range(STEPS):
                with al.step(f"s{s}"):
                    for j in range(10):
                        lookup(odd if odd is not None and (s, j) == (STEPS - 10, 3) else j)
                        run.state["j"] = j if s % 50 == 0 else 0
        ids[name] = run.run_id
    return ids


def test_pages_stay_bounded_on_a_large_store(store: SqlStore, many: dict[str, str],
                                             comms: dict[str, FakeComm]) -> None:
    p = Page(explore(store), comms)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        d = p.data("runs", after=after, limit=200, filters={"workflow": "wf1"})
        assert len(d["rows"]) <= 200
        seen += [r["run_id"] for r in d["rows"]]
        pages += 1
        after = d["next"]
        if after is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == RUNS // 3 + (RUNS % 3 > 1)
    started = [store.run(r).started_at for r in seen[:: 50]]
    assert started == sorted(started, reverse=True)
    limited = p.data("runs", limit=10_000)
    assert len(limited["rows"]) == 200 and limited["next"] is not None  # the cap
    hit = p.data("runs", filters={"search": "t-01234", "agent": "bot0"})["rows"]
    assert [r["task_id"] for r in hit] == ["T-01234"]

    run_id = many["long"]
    top = p.data("tree", run_id=run_id, limit=50)
    assert len(top["nodes"]) == 50 and top["next"] is not None
    assert top["nodes"][1]["children"] == 20  # ten calls and their ten state writes
    rest = p.data("tree", run_id=run_id, after=top["next"], limit=50)
    assert rest["nodes"][0]["seq"] > top["nodes"][-1]["seq"]
    last_step = p.data("tree", run_id=run_id, after=store.run(run_id).last_seq - 3)["nodes"]
    assert [n["kind"] for n in last_step][-1] == "run_ended"

    t = p.data("timeline", run_id=run_id)
    assert len(t["rows"]) <= TIMELINE_ROWS and t["next"] is not None
    assert sum(c[2] for c in t["histogram"]["counts"]) == store.run(run_id).last_seq
    nxt = p.data("timeline", run_id=run_id, after=t["next"])
    assert nxt["rows"] and min(r[0] for r in nxt["rows"]) > t["next"]

    assert COMPARE_CHUNK < COMPARE_BUDGET < (STEPS - 10) * 10  # beyond one request
    first = p.data("compare", a=run_id, b=many["long-b"])
    assert first["divergence"] is None and first["compared"] == COMPARE_BUDGET
    c = p.data("compare", a=run_id, b=many["long-b"], **{"from": first["resume"]})
    dv = c["divergence"]
    assert dv["index"] == (STEPS - 10) * 10 + 3 and (dv["a"], dv["b"]) == ("lookup", "lookup")
    (marked,) = [r for r in c["rows"] if r["diverges"]]
    assert '"i":3' in marked["a"]["summary"] and '"i":7' in marked["b"]["summary"]
    assert len(c["rows"]) == 11


def test_store_run_page_matches_the_full_listing(store: SqlStore, demo: DemoResult,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # this test compares with the full listing
    everything = [r.run_id for r in store.runs()]
    paged: list[str] = []
    after = None
    while True:
        page = store.run_page(after=after, limit=1)
        paged += [r.run_id for r in page.runs]
        if page.next is None:
            break
        after = page.next
    assert paged == everything
    failed = store.run_page(RunFilter(status="failed", workflow="support-triage")).runs
    assert {r.run_id for r in failed} == {demo.bad_run_id, demo.rejected_run_id}

