"""Who&When group chats: imported faithfully, labels kept apart, secrets scrubbed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import agentlab as al
from agentlab.analysis import explain
from agentlab.errors import ImportFormatError
from agentlab.integrations import import_who_and_when, who_and_when_labels

KEY = "sk-proj-" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"


def _chat(path: Path) -> Path:
    path.write_text(json.dumps({
        "question": "What is 6 times 7?", "ground_truth": "42", "question_ID": "q-1",
        "mistake_agent": "Math_Expert", "mistake_step": "0", "mistake_reason": "guessed",
        "history": [
            {"name": "Math_Expert", "role": "assistant",
             "content": f"Let's assume the key is {KEY}.\n```python\nprint(6*7 - 1)\n```"},
            {"name": "Computer_terminal", "role": "user",
             "content": "exitcode: 0 (execution succeeded)\nCode output: 41\n"},
            {"name": "Checker_Expert", "role": "user", "content": "The answer is 41. TERMINATE"},
        ]}))
    return path


def test_a_group_chat_imports_with_steps_agents_and_no_secret(tmp_path: Path) -> None:
    chat = _chat(tmp_path / "1.json")
    store = al.open_store(tmp_path / "ww.db")
    [run_id] = import_who_and_when(chat, store)
    events = store.events(run_id)
    assert [(e.kind, e.source, e.agent) for e in events if e.source] == [
        ("message", "history[0]", "Math_Expert"),
        ("tool_call", "history[1]", "Math_Expert"),  # the terminal ran Math_Expert's code
        ("message", "history[2]", "Checker_Expert")]
    stored = json.dumps([e.model_dump(mode="json") for e in events])
    assert KEY not in stored and "REDACTED" in stored
    assert import_who_and_when(chat, store) == [run_id]  # re-import adds nothing
    assert len(store.events(run_id)) == len(events)
    # the labels stay out of the store; the explanation names the code's author
    [label] = who_and_when_labels(chat)
    assert (label["run_id"], label["step"], label["agent"]) == (run_id, "history[0]",
                                                                "Math_Expert")
    assert "mistake" not in stored
    ex = explain(store, run_id)
    assert ex.culprit is not None and ex.culprit.agent == "Math_Expert"
    assert all(KEY not in ev.detail for c in ex.culprits for ev in c.evidence)


def test_a_folder_is_checked_whole_and_timed_in_file_order(tmp_path: Path) -> None:
    folder = tmp_path / "chats"
    folder.mkdir()
    for n in (1, 2, 10):
        _chat(folder / f"{n}.json")
        data = json.loads((folder / f"{n}.json").read_text())
        data["question_ID"] = f"q-{n}"  # distinct content, distinct runs
        (folder / f"{n}.json").write_text(json.dumps(data))
    bad = json.loads((folder / "2.json").read_text())
    bad["history"][1] = {"name": "Computer_terminal"}
    (folder / "3.json").write_text(json.dumps(bad))
    store = al.open_store(tmp_path / "ww.db")
    with pytest.raises(ImportFormatError) as caught:
        import_who_and_when(folder, store)
    assert caught.value.at == "$.history[1]" and caught.value.file == str(folder / "3.json")
    assert "no 'content'" in str(caught.value) and store.runs() == []
    (folder / "3.json").unlink()
    ids = import_who_and_when(folder, store)
    starts = [store.run(i).started_at for i in ids]
    assert starts == sorted(starts) and len(set(starts)) == 3
    assert [store.run(i).task_id for i in ids] == [
        "who-and-when:q-1", "who-and-when:q-2", "who-and-when:q-10"]
    first = store.events(ids[0], kinds=["run_started"])[0]
    assert first.metadata["synthetic_times"] is True
    store.close()
