"""The CLI through click's runner and once as a real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import agentlab as al
from agentlab.cli import LAZY_COMMANDS, cli

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()


def commands() -> list[str]:
    return cli.list_commands(click.Context(cli))


def command(name: str) -> click.Command:
    found = cli.get_command(click.Context(cli), name)
    assert found is not None, name
    return found


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_and_docs(name: str) -> None:
    cmd = command(name)
    assert cmd.help and len(cmd.help) > 20, f"{name} has no help text"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert f"## `agentlab {name}" in DOCS, f"docs/cli.md has no section for {name}"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


def test_lazy_commands_list_their_own_help_and_load_only_on_use() -> None:
    """`agentlab --help` shows the table's one-line help for commands not loaded yet: it
    must be the command's own, and listing them must not load the store or the analysis."""
    for name, (module, short) in LAZY_COMMANDS.items():
        cmd = command(name)
        assert cmd.callback is not None and cmd.callback.__module__ == module, name
        assert short == cmd.get_short_help_str(1000), f"LAZY_COMMANDS[{name!r}] drifted"
    code = ("import sys\nfrom agentlab.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = ('sqlalchemy', 'pydantic', 'agentlab.store', 'agentlab.analysis',"
            " 'agentlab.cli._analysis')\n"
            "print('loaded:', ','.join(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "loaded: \n" in out, out
    assert "  explain " in out and "Explain a run: ranked culprit steps" in out
    helped = CliRunner().invoke(cli, ["--help"]).output
    assert all(f"  {name} " in helped for name in commands())


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[str, str]:
    db = str(tmp_path / "cli.db")
    store = al.open_store(db)

    @al.tool
    def lookup(account_id: str) -> dict[str, str]:
        return {"plan": "standard"}

    with al.record_run("triage", agent="bot", store=store, task_id="T1") as run:
        run.state["ticket"] = {"id": "T1"}
        lookup("A1")
        run.outcome(success=True)
    store.close()
    return db, run.run_id


def test_explain_loads_only_what_an_explanation_needs(recorded: tuple[str, str]) -> None:
    """`agentlab explain RUN` reads the store and ranks: recovery (counterfactual forks),
    governance and recording are loaded only when forks are asked for."""
    db, run_id = recorded
    code = ("import sys\nfrom agentlab.cli import cli\n"
            "try:\n    cli(sys.argv[1:])\nexcept SystemExit as exc:\n    assert not exc.code\n"
            "heavy = ('agentlab.recovery', 'agentlab.approval', 'agentlab.identity',"
            " 'agentlab.record', 'agentlab.display', 'pandas')\n"
            "print('loaded:', ','.join(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, "explain", run_id, "--store", db],
                         capture_output=True, text=True, check=True).stdout
    assert f"run {run_id}" in out and "Can it be replayed" in out, out
    assert out.rstrip().endswith("loaded:"), out


def test_runs_show_verify(recorded: tuple[str, str]) -> None:
    db, run_id = recorded
    runner = CliRunner()
    out = runner.invoke(cli, ["runs", "--store", db])
    assert out.exit_code == 0 and run_id[:8] in out.output and "succeeded" in out.output
    out = runner.invoke(cli, ["runs", "--store", db, "--json"])
    assert json.loads(out.output)[0]["run_id"] == run_id
    out = runner.invoke(cli, ["runs", "--store", db, "--status", "failed"])
    assert run_id[:8] not in out.output
    out = runner.invoke(cli, ["show", run_id[:10], "--store", db])
    assert out.exit_code == 0 and "tool lookup" in out.output and "state writes ticket" in out.output
    shown = json.loads(runner.invoke(cli, ["show", run_id, "--store", db, "--json"]).output)
    assert [e["kind"] for e in shown["events"]] == [
        "run_started", "checkpoint", "tool_call", "run_ended"]
    out = runner.invoke(cli, ["verify", "--store", db])
    assert out.exit_code == 0 and "1 of 1 runs intact" in out.output


def test_show_full_writes_payloads_whole(tmp_path: Path) -> None:
    db = str(tmp_path / "full.db")
    store = al.open_store(db)
    long_note = "the customer says " + "exports fail again; " * 12 + "END-OF-NOTE"

    @al.tool
    def read_ticket(ticket_id: str) -> dict[str, str]:
        return {"id": ticket_id, "note": long_note}

    with al.record_run("triage", agent="bot", store=store) as run:
        read_ticket("T1")
    store.close()
    runner = CliRunner()
    short = runner.invoke(cli, ["show", run.run_id, "--store", db]).output
    full = runner.invoke(cli, ["show", run.run_id, "--store", db, "--full"])
    assert "END-OF-NOTE" not in short and "…" in short  # the line holds an excerpt
    assert full.exit_code == 0 and f'"note": "{long_note}"' in full.output
    assert '"ticket_id": "T1"' in full.output  # the arguments, whole, under the call


def test_verify_exits_nonzero_on_a_broken_chain(recorded: tuple[str, str]) -> None:
    import sqlite3

    db, run_id = recorded
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agentlab_events SET body = replace(body, 'A1', 'A2') WHERE seq = 3")
    conn.commit()
    conn.close()
    out = CliRunner().invoke(cli, ["verify", "--store", db])
    assert out.exit_code == 1
    assert f"BROKEN  {run_id}  at seq 3" in out.output
    assert "agentlab: error: 1 run(s) failed verification" in out.output


def test_export_import_roundtrip_and_idempotence(recorded: tuple[str, str], tmp_path: Path) -> None:
    db, run_id = recorded
    runner = CliRunner()
    target = str(tmp_path / "other.db")
    path = tmp_path / "run.jsonl"
    assert runner.invoke(cli, ["export", run_id, "--store", db, "-o", str(path)]).exit_code == 0
    out = runner.invoke(cli, ["import", str(path), "--store", target, "--json"])
    assert json.loads(out.output) == {"imported": [run_id], "skipped": [], "failed": []}
    out = runner.invoke(cli, ["import", str(path), "--store", target, "--json"])
    assert json.loads(out.output) == {"imported": [], "skipped": [run_id], "failed": []}
    assert runner.invoke(cli, ["verify", "--store", target]).exit_code == 0
    # gzip-compressed, the same file imports as the same run
    import gzip

    zipped = tmp_path / "run.jsonl.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    out = runner.invoke(cli, ["import", str(zipped), "--store", str(tmp_path / "z.db"), "--json"])
    assert json.loads(out.output) == {"imported": [run_id], "skipped": [], "failed": []}


def test_errors_are_one_line_and_nonzero(tmp_path: Path, recorded: tuple[str, str]) -> None:
    db, _ = recorded
    runner = CliRunner()
    out = runner.invoke(cli, ["show", "ffffffffff", "--store", db])
    assert out.exit_code == 1
    assert out.output.strip().startswith("agentlab: error: no run with id 'ffffffffff'")
    assert len(out.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "event"}\n')
    out = runner.invoke(cli, ["import", str(bad), "--store", db])
    assert out.exit_code == 1 and "line 1: not a valid agentlab line" in out.output
    out = runner.invoke(cli, ["runs", "--store", "mysql://x/y"])
    assert out.exit_code == 1 and "unsupported store URL" in out.output


def test_store_from_environment(recorded: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    db, run_id = recorded
    monkeypatch.setenv("AGENTLAB_STORE", db)
    out = CliRunner().invoke(cli, ["runs", "--json"])
    assert json.loads(out.output)[0]["run_id"] == run_id


def test_schema_command_prints_json_schema() -> None:
    out = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(out.output)
    assert "EventLine" in schema["$defs"] and "ToolCallEvent" in schema["$defs"]


def test_console_script_runs(recorded: tuple[str, str]) -> None:
    db, run_id = recorded
    proc = subprocess.run([sys.executable, "-m", "agentlab", "verify", run_id, "--store", db],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "chain intact" in proc.stdout


# -- read-only commands never create a store ------------------------------------------------

READ_ONLY = [
    pytest.param(["runs"], id="runs"),
    pytest.param(["show", "abc"], id="show"),
    pytest.param(["verify"], id="verify"),
    pytest.param(["export", "abc"], id="export"),
]


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command (and check nothing else was printed)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentlab: error: ")
    return lines[0]


@pytest.mark.parametrize("args", READ_ONLY)
@pytest.mark.parametrize("form", ["path", "url", "default"])
def test_read_only_commands_refuse_a_missing_store(
    args: list[str], form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    typo = tmp_path / "nodir" / "typo.db"
    store = {"path": ["--store", str(typo)], "url": ["--store", f"sqlite:///{typo}"],
             "default": []}[form]
    line = one_line_error(CliRunner().invoke(cli, [*args, *store]))
    missing = tmp_path / "agentlab.db" if form == "default" else typo
    assert f"no store at {missing}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READ_ONLY)
def test_read_only_commands_leave_a_foreign_database_alone(
    args: list[str], tmp_path: Path
) -> None:
    import sqlite3

    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()
    line = one_line_error(CliRunner().invoke(cli, [*args, "--store", str(db)]))
    assert "holds no agentlab store" in line
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["notes"]


def test_demo_and_import_create_the_store(recorded: tuple[str, str], tmp_path: Path) -> None:
    db, run_id = recorded
    runner = CliRunner()
    path = tmp_path / "run.jsonl"
    assert runner.invoke(cli, ["export", run_id, "--store", db, "-o", str(path)]).exit_code == 0
    fresh = tmp_path / "new" / "imported.db"
    out = runner.invoke(cli, ["import", str(path), "--store", str(fresh), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout) == {"imported": [run_id], "skipped": [], "failed": []}
    demo_db = tmp_path / "demo.db"
    out = runner.invoke(cli, ["demo", "--auto-approve", "--store", str(demo_db), "--json"])
    assert out.exit_code == 0 and demo_db.exists()


# -- where the store comes from without --store ---------------------------------------------

def test_store_help_shows_the_default() -> None:
    out = CliRunner().invoke(cli, ["runs", "--help"], terminal_width=200)
    assert "AGENTLAB_STORE, else [tool.agentlab] store in pyproject.toml, else the nearest " \
        "agentlab.db in this folder or above, else ./agentlab.db" \
        in " ".join(out.output.split())


def test_store_argument_beats_environment(
    recorded: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, run_id = recorded
    monkeypatch.setenv("AGENTLAB_STORE", str(tmp_path / "elsewhere.db"))
    out = CliRunner().invoke(cli, ["runs", "--json", "--store", db])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["run_id"] == run_id
    assert not (tmp_path / "elsewhere.db").exists()


def write_pyproject(folder: Path, store: str) -> None:
    (folder / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.agentlab]\n'
                                           f'store = "{store}"\n')


def test_store_from_pyproject(
    recorded: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, run_id = recorded
    project = tmp_path / "project"
    project.mkdir()
    write_pyproject(project, db)
    monkeypatch.chdir(project)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["runs", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["run_id"] == run_id
    assert runner.invoke(cli, ["verify", run_id]).exit_code == 0
    assert not (project / "agentlab.db").exists()


def test_environment_beats_pyproject(
    recorded: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, run_id = recorded
    write_pyproject(tmp_path, str(tmp_path / "from-pyproject.db"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTLAB_STORE", db)
    out = CliRunner().invoke(cli, ["runs", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["run_id"] == run_id
    assert not (tmp_path / "from-pyproject.db").exists()


def test_default_store_is_agentlab_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTLAB_STORE", raising=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["demo", "--auto-approve"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "agentlab.db").exists()
    assert "check the hash chains with `agentlab verify`" in out.stdout
    with al.open_store(tmp_path / "agentlab.db") as store:
        stored = len(store.runs())
    assert f"{stored} of {stored} runs intact" in runner.invoke(cli, ["verify"]).stdout


# -- export never leaves a partial or half file ---------------------------------------------

def test_failed_export_leaves_no_files(recorded: tuple[str, str], tmp_path: Path) -> None:
    db, run_id = recorded
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "out.jsonl"
    runner = CliRunner()
    for ids in (["ffffffffff"], [run_id, "ffffffffff"]):  # second: fails after writing lines
        line = one_line_error(runner.invoke(cli, ["export", *ids, "--store", db,
                                                  "-o", str(target)]))
        assert "no run with id 'ffffffffff'" in line
        assert list(out_dir.iterdir()) == []


def test_failed_export_keeps_an_existing_file(recorded: tuple[str, str], tmp_path: Path) -> None:
    db, _ = recorded
    target = tmp_path / "out.jsonl"
    target.write_text("previous export\n")
    one_line_error(CliRunner().invoke(cli, ["export", "ffffffffff", "--store", db,
                                            "-o", str(target)]))
    assert target.read_text() == "previous export\n"
    assert not target.with_name("out.jsonl.partial").exists()


def test_export_to_a_missing_directory_is_one_line(
    recorded: tuple[str, str], tmp_path: Path
) -> None:
    db, run_id = recorded
    target = tmp_path / "nodir" / "out.jsonl"
    line = one_line_error(CliRunner().invoke(cli, ["export", run_id, "--store", db,
                                                   "-o", str(target)]))
    assert "No such file or directory" in line and "out.jsonl.partial" in line


# -- database errors are one line; bugs keep their traceback ---------------------------------

@pytest.mark.parametrize("command", ["runs", "demo"])
def test_unreachable_postgres_is_one_line(command: str) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://postgres@127.0.0.1:5499/test"
    line = one_line_error(CliRunner().invoke(cli, [command, "--store", url]))
    assert "cannot open the store at" in line and "5499" in line


def test_database_error_after_open_is_one_line(
    recorded: tuple[str, str], tmp_path: Path
) -> None:
    import sqlite3

    db, run_id = recorded
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE agentlab_events")
    conn.commit()
    conn.close()
    runner = CliRunner()
    for args in (["show", run_id], ["verify"], ["export", run_id, "-o", str(tmp_path / "x")]):
        line = one_line_error(runner.invoke(cli, [*args, "--store", db]))
        assert "database error (OperationalError): no such table: agentlab_events" in line
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_raw_driver_error_is_one_line(
    recorded: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from agentlab.store import SqlStore

    db, _ = recorded

    def broken(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error\nsecond line")

    monkeypatch.setattr(SqlStore, "runs", broken)
    line = one_line_error(CliRunner().invoke(cli, ["runs", "--store", db]))
    assert line == "agentlab: error: database error (OperationalError): disk I/O error"


def test_programming_errors_keep_their_traceback(
    recorded: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlab.store import SqlStore

    db, _ = recorded

    def buggy(*_args: object, **_kwargs: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(SqlStore, "runs", buggy)
    out = CliRunner().invoke(cli, ["runs", "--store", db])
    assert isinstance(out.exception, ValueError)
    assert "agentlab: error" not in out.output


def test_diff_between_points_of_a_run_and_between_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "diff.db")
    store = al.open_store(db)
    with al.record_run("w", agent="a", store=store) as good:
        good.state["account"] = {"plan": "enterprise"}
        good.state["priority"] = "urgent"
    with al.record_run("w", agent="a", store=store) as bad:
        bad.state["account"] = {"plan": "standard"}
        bad.state["priority"] = "normal"
    cps = store.checkpoints(good.run_id)
    store.close()
    runner = CliRunner()
    out = runner.invoke(cli, ["diff", good.run_id, bad.run_id, "--store", db])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [
        '~ /account/plan: "enterprise" -> "standard"', '~ /priority: "urgent" -> "normal"']
    out = runner.invoke(cli, ["diff", good.run_id, "--from", str(cps[0].seq), "--store", db,
                              "--json"])
    assert json.loads(out.output) == [
        {"op": "add", "path": "/priority", "old": None, "new": "urgent"}]
    out = runner.invoke(cli, ["diff", good.run_id, bad.run_id, "--to", "3", "--store", db])
    assert out.exit_code == 1 and "--from/--to apply to one run" in out.output


def test_a_store_that_is_not_a_store_is_named_and_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    folder = tmp_path / "runs"
    folder.mkdir()
    runner = CliRunner()
    for args in (["runs"], ["demo", "--auto-approve"], ["verify"]):
        out = runner.invoke(cli, [*args, "--store", str(notes)])
        assert out.exit_code == 1 and "Traceback" not in out.output, out.output
        assert f"{notes} is not an agentlab store: it is not a SQLite database" in out.output
        out = runner.invoke(cli, [*args, "--store", str(folder)])
        assert out.exit_code == 1 and f"{folder} is a directory" in out.output, out.output
    assert notes.read_text() == "remember the milk\n"  # never written
    assert list(folder.iterdir()) == []
    with pytest.raises(al.StoreError, match="not a SQLite database"):
        al.open_store(notes)


def test_diff_refuses_reversed_and_out_of_range_points(recorded: tuple[str, str]) -> None:
    db, run_id = recorded
    runner = CliRunner()
    last = al.open_store(db).run(run_id).last_seq
    for args, says in ((["--from", "3", "--to", "2"], "--from 3 is after --to 2"),
                       (["--from", "50"], f"--from 50 is outside run {run_id}"),
                       (["--to", str(last + 1)], f"numbered 1 to {last}")):
        out = runner.invoke(cli, ["diff", run_id, *args, "--store", db])
        assert out.exit_code == 1 and says in out.output, out.output
    assert runner.invoke(cli, ["diff", run_id, "--from", "0", "--to", str(last),
                               "--store", db]).exit_code == 0


@pytest.mark.parametrize("fmt", [None, "agentlab", "tau-bench", "who-and-when", "swe-agent"])
def test_every_import_format_refuses_deep_json_and_says_0_runs_on_an_empty_file(
        tmp_path: Path, fmt: str | None) -> None:
    """A file nested past any real trace is a one-line error naming the file (not a
    RecursionError), and an empty file, plain or gzip, imports nothing and says so."""
    import gzip

    db = str(tmp_path / "imp.db")
    fmt_args = [] if fmt is None else ["--format", fmt]
    deep = tmp_path / "deep.json"
    deep.write_text('{"history": ' + "[" * 5000 + "]" * 5000 + "}")
    out = CliRunner().invoke(cli, ["import", str(deep), "--store", db, *fmt_args])
    assert out.exit_code == 1, out.output
    assert out.output.startswith("agentlab: error: ") and "deep" in out.output, out.output
    assert "Traceback" not in out.output and "RecursionError" not in out.output
    for empty in (tmp_path / "empty.json", tmp_path / "empty.json.gz"):
        empty.write_bytes(gzip.compress(b"\n") if empty.suffix == ".gz" else b"  \n")
        out = CliRunner().invoke(cli, ["import", str(empty), "--store", db, *fmt_args])
        assert out.exit_code == 0, out.output
        assert f"0 runs: {empty} is empty, nothing to import" in out.output
    assert al.open_store(db).runs() == []


def test_otlp_export_and_import_from_the_cli(recorded: tuple[str, str], tmp_path: Path) -> None:
    """`export --format otlp` writes the run as OTLP JSON spans; `import` tells the format
    from the content and brings the same steps back, once."""
    db, run_id = recorded
    spans = tmp_path / "run.otlp.json"
    out = CliRunner().invoke(cli, ["export", run_id, "--format", "otlp", "-o", str(spans),
                                   "--store", db])
    assert out.exit_code == 0 and "spans, to" in out.output, out.output
    assert b'"resourceSpans"' in spans.read_bytes()
    other = str(tmp_path / "other.db")
    first = CliRunner().invoke(cli, ["import", str(spans), "--store", other])
    assert first.exit_code == 0 and "as --format otlp" in first.output, first.output
    again = CliRunner().invoke(cli, ["import", str(spans), "--store", other])
    assert "skipped" in again.output and "imported" not in again.output, again.output
    [copy] = al.open_store(other).runs()
    original = al.open_store(db)
    assert [(e.kind, getattr(e, "tool", None)) for e in al.open_store(other).events(copy.run_id)
            if e.kind == "tool_call"] == [
        (e.kind, getattr(e, "tool", None)) for e in original.events(run_id)
        if e.kind == "tool_call"]
