"""Secret canaries: plant at least 50 secrets across environment, headers, URLs, arguments,
results, prompts, exceptions and state; record, export and display; scan the raw bytes of
the database, its -wal file and the exports: 0 found.

Every canary is a fresh random string, long enough that finding it (or any 12 characters
of it) anywhere is a leak, never chance. Two kinds:

* known secrets: credentials of the run's grants (three ``env:`` references, a ``file:``
  one, and a callable passed to ``record_run`` that hands out a fresh token on every call,
  as a vault does). The grants are issued before the secrets exist, as when ``agentlab
  grant`` ran elsewhere, so the recording process learns each secret only when a tool call
  resolves it. Tools then leak them every way a careless tool would.
* secret-shaped strings never registered anywhere, in the shapes the default patterns of
  :mod:`agentlab.identity._redact` claim: ``Bearer`` headers, ``user:password@`` URLs,
  ``api_key=`` query strings, ``password=...`` and ``"client_secret": "..."`` assignments,
  mapping entries such as ``{"X-Api-Key": ...}``, OpenAI, Anthropic, GitHub, Slack, AWS and
  Google keys, JWTs and private key blocks.

Then every byte agentlab wrote is scanned: the SQLite file, its ``-wal`` and ``-shm`` while
the store is open and the file again after closing (on PostgreSQL: every value of every
agentlab table), every blob decompressed, the portable export (API and CLI), ``agentlab
show`` (text and JSON), ``approvals``, ``diff`` and ``runs``, and the log lines of the
``agentlab`` logger behind :class:`~agentlab.identity.ScrubbedLogFilter`. The test also
checks that the redaction markers and ``redacted`` pointers are there, so it cannot pass by
recording nothing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import re
import secrets
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

import agentlab as al
from agentlab.approval import ApprovalManager
from agentlab.cli import cli
from agentlab.identity import MARKER_PREFIX, ScrubbedLogFilter, resolve_secret
from agentlab.model import ApprovalRequest
from agentlab.store import SqlStore, normalise_url, open_store

AGENT = "canary-bot"
WORKFLOW = "canary-wf"
WINDOW = 12  # a leak of this many consecutive characters of a canary counts
MIN_CANARIES = 50


def _fresh(n: int = 12) -> str:
    return f"cnry{secrets.token_hex(n)}"


# Each shape: (name, the marker the default patterns put in its place, needle, text).
def _shapes() -> dict[str, tuple[str, Callable[[], tuple[str, str]]]]:
    def fill(template: str, make: Callable[[], str] = _fresh) -> Callable[[], tuple[str, str]]:
        def build() -> tuple[str, str]:
            needle = make()
            return needle, template.format(needle)

        return build

    return {
        "bearer header": ("bearer", fill("Authorization: Bearer {}")),
        "url password": ("url-password", fill("https://svc-user:{}@api.example.com/v1/items?page=2")),
        "api_key query": ("assignment",
                          fill("https://api.example.com/v1/search?q=shoes&api_key={}&page=2")),
        "password=": ("assignment", fill("password={}")),
        "passwd:": ("assignment", fill("passwd: {}")),
        "json client_secret": ("assignment", fill('{{"client_secret": "{}", "scope": "read"}}')),
        "accessToken:": ("assignment", fill("accessToken: {}")),
        "basic auth": ("assignment", fill("Authorization: Basic {}")),
        "openai key": ("openai-key", fill("sk-proj-{}")),
        "anthropic key": ("anthropic-key", fill("sk-ant-api03-{}")),
        "github token": ("github-token", fill("ghp_{}", lambda: _fresh(16))),  # 36 characters
        "github pat": ("github-token", fill("github_pat_{}")),
        "slack token": ("slack-token", fill("xoxb-{}")),
        "aws key id": ("aws-access-key-id", fill("AKIA{}", lambda: secrets.token_hex(8).upper())),
        "google key": ("google-api-key", fill("AIza{}", lambda: _fresh(16)[:35])),
        "jwt": ("jwt", fill("eyJhbGciOiJIUzI1NiJ9.eyJ{}.c2lnbmF0dXJlX29mX3RoZV90b2tlbg")),
        "private key": ("private-key", fill(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA{}\n-----END RSA PRIVATE KEY-----")),
    }


SHAPES = _shapes()


@dataclass
class Canaries:
    """Every planted canary: what it is, and each channel it was planted in."""

    labels: dict[str, str] = field(default_factory=dict)
    """needle -> what it is (a shape, or which credential)."""
    uses: list[tuple[str, str]] = field(default_factory=list)
    """(channel, needle), one per planting."""
    markers: set[str] = field(default_factory=set)
    """Markers the planted shapes must leave in the record."""

    def known(self, what: str, *, special: bool = False) -> str:
        """A new credential value (handed out by env, file or callable); ``special`` puts
        characters in it that JSON escapes or encodes as several bytes, as passwords have."""
        needle = _fresh()
        if special:
            needle = f'{needle}"p\\w+é/={secrets.token_hex(12)}'
        self.labels[needle] = f"known secret ({what})"
        return needle

    def leak(self, channel: str, value: str) -> str:
        """A known secret planted once more, in ``channel``."""
        assert value in self.labels
        self.uses.append((channel, value))
        return value

    def shaped(self, channel: str, shape: str) -> str:
        """A never-registered secret in one of the shapes the default patterns claim."""
        marker, build = SHAPES[shape]
        needle, text_ = build()
        self.labels[needle] = f"{shape} shape"
        self.uses.append((channel, needle))
        self.markers.add(marker)
        return text_

    def entry(self, channel: str, key: str) -> str:
        """A never-registered secret as the value of the mapping entry ``key``."""
        needle = _fresh()
        self.labels[needle] = f"mapping entry {key!r}"
        self.uses.append((channel, needle))
        self.markers.add("assignment")
        return needle

    def by_channel(self) -> Counter[str]:
        return Counter(channel for channel, _ in self.uses)


_BASE64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def _b64(run: bytes) -> bytes | None:
    try:
        return base64.b64decode(run[: len(run) - len(run) % 4] if not run.endswith(b"=") else run)
    except ValueError:
        return None


@dataclass
class Scanner:
    """Looks for every canary (whole, or any ``WINDOW`` characters of it) in bytes.

    A canary with characters that JSON or a terminal may escape (quotes, backslashes,
    non-ASCII) is looked for by the letter-and-digit runs between them.
    """

    canaries: Canaries
    scanned: Counter[str] = field(default_factory=Counter)
    leaks: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    """(needle, where) -> [occurrences, first offset, context]."""
    _regex: re.Pattern[bytes] | None = None
    _owner: dict[bytes, str] = field(default_factory=dict)

    def _compile(self) -> re.Pattern[bytes]:
        for needle in self.canaries.labels:
            for run in re.findall(rb"[A-Za-z0-9]{%d,}" % WINDOW, needle.encode()):
                run = run.lower()
                for i in [*range(0, len(run) - WINDOW + 1, 4), len(run) - WINDOW]:
                    self._owner[run[i : i + WINDOW]] = needle
        assert len(self._owner) >= len(self.canaries.labels)
        return re.compile(b"|".join(map(re.escape, self._owner)), re.IGNORECASE)

    def scan(self, where: str, data: bytes, *, decode: bool = True) -> None:
        """Scan ``data``, and (``decode``) what every base64-looking run in it decodes to:
        agentlab stores a ``bytes`` value as base64 text."""
        if self._regex is None:
            self._regex = self._compile()
        self.scanned[where.split(" ", 1)[0] if decode else "base64-decoded"] += len(data)
        if decode:
            decoded = [_b64(m.group()) for m in _BASE64.finditer(data)]
            self.scan(where + " (base64-decoded)", b"\n".join(d for d in decoded if d),
                      decode=False)
        for m in self._regex.finditer(data):
            found = self.leaks.get((self._owner[m.group().lower()], where))
            if found is not None:
                found[0] += 1
                continue
            context = data[max(0, m.start() - 60) : m.end() + 20].decode("utf-8", "replace")
            self.leaks[(self._owner[m.group().lower()], where)] = [1, m.start(), context]

    def report(self) -> str:
        """One paragraph per leaked canary: what it is, where it was planted, where found."""
        places: dict[str, list[str]] = {}
        for (needle, where), (count, offset, context) in self.leaks.items():
            places.setdefault(needle, []).append(
                f"{where}: {count} hit(s), first at byte {offset}: ...{context!r}")
        parts = []
        for needle, found in places.items():
            channels = sorted({c for c, n in self.canaries.uses if n == needle})
            parts.append(f"{self.canaries.labels[needle]} {needle[:10]}..., planted in "
                         f"{channels}, found in {len(found)} place(s):\n    "
                         + "\n    ".join(found[:12])
                         + (f"\n    ... and {len(found) - 12} more" if len(found) > 12 else ""))
        return (f"{len(places)} of {len(self.canaries.labels)} canaries leaked:\n  "
                + "\n  ".join(parts))

    def check(self) -> None:
        if self.leaks:
            pytest.fail(self.report(), pytrace=False)


# ---------------------------------------------------------------------------------------------
# Recording


class ApiClient:
    """What a careless tool returns instead of data: its client, the token in its repr."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"ApiClient(base='https://api.example.com', token={self.token})"


@dataclass
class ServiceConfig:
    url: str
    api_key: str


@dataclass
class Recorded:
    run_ids: list[str]
    logs: str
    approvals: list[ApprovalRequest]


def _issue_grants(store: SqlStore, tmp_path: Path) -> None:
    """Grants whose secrets do not exist yet: each is learnt when a call resolves it."""
    refs = {
        "jira": ("env:AL_CANARY_JIRA_TOKEN", ["jira:read", "jira:write:SUP"]),
        "crm": ("env:AL_CANARY_CRM_KEY", ["crm:read"]),
        "mail": ("env:AL_CANARY_MAIL_PASSWORD", ["mail:send"]),
        "vault-file": (f"file:{tmp_path / 'vault-secret'}", ["files:read"]),
        "payments": (None, ["pay:charge"]),  # the callable comes with record_run
    }
    for name, (ref, scopes) in refs.items():
        al.issue_grant(store, name, principal=AGENT, owner="canary-team", workflow=WORKFLOW,
                       scopes=scopes, expires_in=timedelta(hours=1), secret=ref)


def _record(store: SqlStore, cn: Canaries, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Recorded:
    _issue_grants(store, tmp_path)
    jira_token = cn.known("env:AL_CANARY_JIRA_TOKEN")
    crm_key = cn.known("env:AL_CANARY_CRM_KEY")
    mail_password = cn.known("env:AL_CANARY_MAIL_PASSWORD", special=True)
    file_secret = cn.known("file: vault-secret")
    monkeypatch.setenv("AL_CANARY_JIRA_TOKEN", jira_token)
    monkeypatch.setenv("AL_CANARY_CRM_KEY", crm_key)
    monkeypatch.setenv("AL_CANARY_MAIL_PASSWORD", mail_password)
    (tmp_path / "vault-secret").write_text(file_secret + "\n", encoding="utf-8")
    # The rest of the environment, never registered as a credential.
    monkeypatch.setenv("AL_CANARY_SERVICE_API_KEY", cn.entry("environment", "SERVICE_API_KEY"))
    monkeypatch.setenv("AL_CANARY_DATABASE_URL",
                       cn.shaped("environment", "url password").replace("https", "postgresql"))
    monkeypatch.setenv("AL_CANARY_GH", cn.shaped("environment", "github token"))

    vault_tokens: list[str] = []

    def vault() -> str:  # a vault handing out a short-lived token per call
        vault_tokens.append(cn.known(f"callable token #{len(vault_tokens) + 1}"))
        return vault_tokens[-1]

    log_buffer = io.StringIO()
    handler = logging.StreamHandler(log_buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(ScrubbedLogFilter())
    agentlab_log = logging.getLogger("agentlab")
    old_level = agentlab_log.level
    agentlab_log.addHandler(handler)
    agentlab_log.setLevel(logging.DEBUG)
    try:
        run_ids = _governed_run(store, cn, vault)
        run_ids.append(_plain_run(store, cn, jira_token))
        run_ids.append(_errored_run(store, cn, vault_tokens[0]))
    finally:
        agentlab_log.removeHandler(handler)
        agentlab_log.setLevel(old_level)
    return Recorded(run_ids, log_buffer.getvalue(),
                    [a for rid in run_ids for a in store.approvals(run_id=rid)])


def _governed_run(store: SqlStore, cn: Canaries, vault: Callable[[], str]) -> list[str]:
    """Grants, a policy with approvals and a denial, and tools leaking their credentials."""
    tool_log = logging.getLogger("agentlab.canary.tools")

    @al.tool(scope="jira:read")
    def fetch_ticket(ticket_id: str) -> dict[str, Any]:
        token = al.credential().secret
        assert token is not None
        tool_log.info("fetched %s with token %s", ticket_id, cn.leak("log line arg", token))
        return {
            "id": ticket_id,
            "auth": {"token_used": cn.leak("result", token)},
            "request_headers": {"Authorization": f"Bearer {cn.leak('header', token)}",
                                "X-Api-Key": cn.entry("header", "X-Api-Key")},
            "links": [cn.shaped("URL", "url password"), cn.shaped("URL", "api_key query")],
            "debug": [f"GET /tickets/{ticket_id} with {cn.leak('result', token)}",
                      cn.shaped("result", "basic auth")],
        }

    @al.tool(scope="crm:read")
    def crm_lookup(account: str, *, url: str, headers: dict[str, str]) -> dict[str, Any]:
        key = al.credential().secret
        assert key is not None
        return {"account": account, "api_key_used": cn.leak("result", key), "next": url,
                "echo": headers}

    @al.tool(scope="files:read")
    def read_vault_file(name: str) -> str:
        return f"contents of {name}; signed with {cn.leak('result', al.credential().secret or '')}"

    @al.tool(scope="jira:read")
    def fail_with_token(ticket_id: str) -> None:
        token = al.credential().secret or ""
        try:
            raise KeyError(f"upstream said {cn.shaped('exception', 'bearer header')}")
        except KeyError as inner:
            err = PermissionError(f"401 from jira for {ticket_id} using token "
                                  f"{cn.leak('exception', token)}")
            err.add_note(f"hint: {cn.shaped('exception', 'password=')}")
            raise err from inner

    attempts: list[int] = []

    @al.tool(scope="crm:read", retries=1)
    def flaky_sync(account: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise TimeoutError(f"timed out with key {cn.leak('exception (retry)', al.credential().secret or '')} "
                               f"and {cn.shaped('exception (retry)', 'accessToken:')}")
        return "synced"

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def create_issue(project: str, title: str, body: str) -> dict[str, Any]:
        token = al.credential().secret or ""
        return {"key": f"{project}-1", "created_with": cn.leak("result", token), "title": title}

    @al.tool(side_effect=True, scope="jira:write:{project}")
    def delete_project(project: str, confirm_token: str) -> None:
        raise AssertionError("the policy denies deletes")

    @al.tool(side_effect=True, scope="pay:charge")
    def charge(amount: int, note: str) -> dict[str, Any]:
        token = al.credential().secret or ""
        return {"amount": amount, "auth": f"Bearer {cn.leak('result', token)}", "note": note}

    @al.tool(side_effect=True, scope="mail:send")
    def send_mail(to: str, subject: str) -> str:
        password = al.credential().secret or ""
        return f"sent to {to} as smtp://mailer:{cn.leak('URL', password)}@smtp.example.com"

    @al.tool
    def dump_env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith("AL_CANARY_")}

    @al.tool(scope="crm:read")
    async def async_lookup(account: str, api_key: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"account": account, "used": cn.leak("result (async)", al.credential().secret or "")}

    @al.tool(scope="crm:read")
    def session_info(account: str) -> dict[str, Any]:
        key = al.credential().secret or ""
        return {"sessions": {cn.leak("result (mapping key)", key): "valid"},
                "client": ApiClient(cn.leak("result (object repr)", key)),
                "config": ServiceConfig(url=cn.shaped("result (dataclass)", "url password"),
                                        api_key=cn.entry("result (dataclass)", "api_key"))}

    @al.tool(scope="jira:read")
    def raw_response(path: str) -> bytes:
        token = al.credential().secret or ""
        return (f"HTTP/1.1 200 OK\r\n{cn.shaped('result (bytes)', 'bearer header')}\r\n"
                f"X-Token: {cn.leak('result (bytes)', token)}\r\n\r\n{{}}").encode()

    @al.tool(side_effect=True, scope="jira:write:{project}",
             idempotency_key=lambda a: f"webhook:{a['project']}:{a['url']}")
    def register_webhook(project: str, url: str) -> dict[str, Any]:
        return {"project": project, "registered": True}

    @al.tool(scope="files:read")
    def fetch_report(name: str) -> str:
        # Large enough that the result lives in a (compressed) blob.
        lines = [f"line {i}: all quiet on {name}" for i in range(400)]
        lines[123] = f"line 123: {cn.leak('result (blob)', al.credential().secret or '')}"
        lines[321] = f"line 321: {cn.shaped('result (blob)', 'openai key')}"
        return "\n".join(lines)

    edits: list[str] = []

    def approver(request: ApprovalRequest, manager: ApprovalManager) -> None:
        if request.tool == "create_issue" and not edits:
            edits.append(request.id)
            manager.edit(request.id, {"project": "SUP",
                                      "title": cn.shaped("edited arguments", "password="),
                                      "body": "edited by a human"},
                         by="canary-tester", channel="test", reason="tidy the title")
        else:
            manager.approve(request.id, by="canary-tester", channel="test")

    policy = al.Policy([
        al.Rule("no-deletes", "deny", tool="delete_*"),
        al.Rule("jira-writes-need-a-human", "approve", tool="create_issue"),
        al.Rule("mail-needs-a-human", "approve", tool="send_mail"),
        al.Rule("webhooks-need-a-human", "approve", tool="register_webhook"),
    ])
    task_input = {
        "ticket": "T-1",
        "reporter_note": f"my login is {cn.shaped('task_input', 'password=')}",
        "callback": cn.shaped("task_input", "url password"),
        "headers": {"Authorization": cn.shaped("task_input", "bearer header").split(": ", 1)[1]},
        "password": cn.entry("task_input", "password"),
    }
    metadata = {"db": cn.shaped("metadata", "url password"),
                "api_key": cn.entry("metadata", "api_key"),
                "ci": cn.shaped("metadata", "github pat")}
    with al.record_run(WORKFLOW, agent=AGENT, store=store, task_input=task_input,
                       metadata=metadata, tags=[cn.shaped("tags", "slack token")],
                       grants=["jira", "crm", "mail", "vault-file", "payments"],
                       secrets={"payments": vault}, policy=policy, approver=approver) as run:
        ticket = fetch_ticket("T-1")
        jira_token = ticket["auth"]["token_used"]  # the agent has the real token now

        account = crm_lookup(
            "acme",
            url=cn.shaped("URL", "url password"),
            headers={"Authorization": cn.shaped("header", "bearer header").split(": ", 1)[1],
                     "X-Jira-Token": cn.leak("arguments", jira_token),
                     "Proxy-Authorization": cn.shaped("header", "basic auth").split(": ", 1)[1]},
        )
        crm_key = account["api_key_used"]
        signed = read_vault_file("policy.txt")
        file_secret = signed.rsplit(" ", 1)[1]
        with pytest.raises(PermissionError):
            fail_with_token("T-1")
        assert flaky_sync("acme") == "synced"
        env = dump_env()
        for name in ("AL_CANARY_JIRA_TOKEN", "AL_CANARY_CRM_KEY", "AL_CANARY_MAIL_PASSWORD"):
            cn.leak("environment", env[name])
        assert session_info("acme")["sessions"]
        assert raw_response("/me").startswith(b"HTTP/1.1 200")
        report = fetch_report("weekly")
        assert file_secret in report
        assert asyncio.run(async_lookup("acme", api_key=cn.entry("arguments (async)", "api_key")))

        # Prompts and responses.
        run.llm_call(
            "gpt-4o",
            messages=[
                {"role": "system", "content": "You triage tickets. Jira token: "
                 f"{cn.leak('prompt', jira_token)}; CRM key {cn.leak('prompt', crm_key)}."},
                {"role": "user", "content": f"My key is {cn.shaped('prompt', 'openai key')}, "
                 f"and the deploy key {cn.shaped('prompt', 'aws key id')} leaked."},
                {"role": "tool", "content": json.dumps({"api_key": cn.entry("prompt", "api_key")})},
                {"role": "user", "content": cn.shaped("prompt", "private key")},
            ],
            response={"role": "assistant",
                      "content": f"Send {cn.shaped('LLM response', 'bearer header')} and "
                                 f"{cn.leak('LLM response', file_secret)}",
                      "tool_calls": [{"function": {"name": "crm", "arguments": json.dumps(
                          {"password": cn.entry("LLM response", "password")})}}]},
            input_tokens=120, output_tokens=40,
        )
        run.llm_call(
            "claude-sonnet",
            messages=[{"role": "user", "content": f"{cn.shaped('prompt', 'anthropic key')} "
                       f"and {cn.shaped('prompt', 'slack token')}"}],
            error=RuntimeError(f"provider refused key {cn.shaped('LLM error', 'anthropic key')}"),
        )

        # State: nested values, a JWT, a large value (a blob).
        run.state["session"] = {
            "cookies": [{"name": "sid", "token": cn.entry("state", "token")}],
            "auth": {"headers": {"Authorization": cn.shaped("state", "bearer header")}},
            "history": [f"used {cn.leak('state', jira_token)}",
                        ["nested", {"deep": cn.leak("state", crm_key)}]],
        }
        run.state["jwt"] = cn.shaped("state", "jwt")
        run.state["google"] = {"key": cn.shaped("state", "google key")}
        run.state[f"token-cache:{cn.leak('state key', jira_token)}"] = {"valid": True}
        run.state[cn.shaped("state key", "url password")] = "fetched"
        run.state["raw_request"] = f"{cn.shaped('state (bytes)', 'password=')}".encode()
        run.llm_call("gpt-4o", messages=[{"role": "user", "content": [
            {"type": "text", "text": "what does this file say?"},
            {"type": "file", "data": f"api_key={cn.entry('prompt (bytes)', 'api_key')}".encode()},
        ]}], response="it holds a key", input_tokens=10, output_tokens=4)
        run.state["notes"] = "\n".join(
            [f"note {i}: nothing to see" for i in range(300)]
            + [f"vault file says {cn.leak('state (blob)', file_secret)}",
               cn.shaped("state (blob)", "json client_secret")])

        # Governed side effects: approved, edited by the approver, denied, with credentials.
        create_issue("SUP", f"Leaked {cn.shaped('arguments (approval)', 'passwd:')}",
                     f"token {cn.leak('arguments (approval)', jira_token)}")
        create_issue("SUP", "Another", cn.shaped("arguments (approval)", "github token"))
        with pytest.raises(al.ToolDeniedError):
            delete_project("SUP", confirm_token=cn.entry("arguments (denied)", "confirm_token"))
        register_webhook("SUP", cn.shaped("arguments (idempotency key)", "url password"))
        receipts = [charge(100 + i, f"order {i}") for i in range(10)]
        previous = receipts[-1]["auth"].split(" ", 1)[1]
        charge(1, f"refund using {cn.leak('arguments', previous)}")
        mail = send_mail("ops@example.com", f"creds {cn.shaped('arguments (approval)', 'aws key id')}")
        mail_password = mail.rsplit(":", 1)[1].split("@", 1)[0]

        # Steps and handled errors.
        with al.step(f"sync {cn.shaped('step name', 'url password')}") as s:
            s.output = {"summary": f"used {cn.leak('step output', crm_key)}",
                        "google": cn.shaped("step output", "google key"),
                        "mail": cn.leak("step output", mail_password)}
        with pytest.raises(ValueError), al.step("explode"):
            raise ValueError(f"step failed: {cn.shaped('exception (step)', 'password=')} "
                             f"{cn.leak('exception (step)', file_secret)}")
        run.error(ConnectionError(f"could not reach {cn.shaped('run.error', 'url password')} "
                                  f"with key {cn.leak('run.error', file_secret)}"))
        try:
            raise OSError(f"mail login failed for {cn.leak('log traceback', mail_password)}")
        except OSError:
            tool_log.exception("while sending %s", cn.shaped("log line arg", "slack token"))
        tool_log.warning(f"retrying with {cn.shaped('log line', 'github pat')}")
        run.outcome(success=True)
    return [run.run_id]


def _plain_run(store: SqlStore, cn: Canaries, jira_token: str) -> str:
    """No policy: unscoped read-only tools take the recorder's fast path."""

    @al.tool
    def http_get(url: str, headers: dict[str, str]) -> dict[str, Any]:
        return {"status": 200, "request": {"url": url, "headers": headers},
                "body": f"your key: {cn.shaped('result (fast path)', 'openai key')}"}

    @al.tool
    def parse_config(text_: str) -> dict[str, Any]:
        raise ValueError(f"bad config near {cn.shaped('exception (fast path)', 'passwd:')} "
                         f"({cn.leak('exception (fast path)', jira_token)})")

    with al.record_run(WORKFLOW, agent=AGENT, store=store,
                       task_input={"q": cn.shaped("task_input", "api_key query")}) as run:
        http_get(cn.shaped("URL (fast path)", "url password"),
                 {"Authorization": cn.shaped("header (fast path)", "bearer header").split(": ", 1)[1],
                  "X-Token": cn.leak("header (fast path)", jira_token)})
        http_get(cn.shaped("URL (fast path)", "api_key query"), {})
        with pytest.raises(ValueError):
            parse_config(cn.shaped("arguments (fast path)", "password="))
        run.state["plain"] = [cn.leak("state", jira_token), cn.shaped("state", "aws key id")]
        run.outcome(success=True)
    return run.run_id


def _errored_run(store: SqlStore, cn: Canaries, vault_token: str) -> str:
    """A run that ends with an exception carrying secrets."""
    recorder = al.record_run(WORKFLOW, agent=AGENT, store=store)
    with pytest.raises(RuntimeError), recorder:
        raise RuntimeError(f"agent crashed holding {cn.leak('exception (run end)', vault_token)} "
                           f"and {cn.shaped('exception (run end)', 'slack token')}")
    return recorder.run_id


# ---------------------------------------------------------------------------------------------
# Scanning


def _scan_engine(url: str, schema: str | None) -> Any:
    connect_args = {} if schema is None else {"options": f"-csearch_path={schema}"}
    return create_engine(normalise_url(url), poolclass=NullPool, connect_args=connect_args)


def _scan_tables(scanner: Scanner, url: str, schema: str | None) -> str:
    """Every value of every agentlab table (blobs also decompressed); returns the text of
    event bodies and blobs, for the marker checks."""
    texts: list[str] = []
    engine = _scan_engine(url, schema)
    try:
        with engine.connect() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t.startswith("agentlab_")]
            assert {"agentlab_events", "agentlab_blobs", "agentlab_approvals"} <= set(tables)
            for table in tables:
                for row in conn.execute(text(f"SELECT * FROM {table}")).mappings():
                    for column, value in row.items():
                        where = f"table {table}.{column}"
                        if isinstance(value, str):
                            scanner.scan(where, value.encode("utf-8"))
                            if table == "agentlab_events" and column == "body":
                                texts.append(value)
                        elif isinstance(value, bytes | bytearray | memoryview):
                            data = bytes(value)
                            scanner.scan(where, data)
                            try:
                                data = zlib.decompress(data)
                                scanner.scan(where + " (decompressed)", data)
                            except zlib.error:
                                pass
                            texts.append(data.decode("utf-8", "replace"))
    finally:
        engine.dispose()
    return "\n".join(texts)


def _scan_sqlite_files(scanner: Scanner, path: Path, when: str) -> list[str]:
    found = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(f"{path}{suffix}")
        if f.exists():
            found.append(f.name)
            scanner.scan(f"file {f.name} ({when})", f.read_bytes())
    return found


def _cli(scanner: Scanner, args: list[str], where: str) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, f"agentlab {' '.join(args)} failed: {result.output}"
    scanner.scan(f"display {where}", result.stdout_bytes + result.stderr_bytes)
    return result.stdout


def _scan_exports_and_display(scanner: Scanner, store: SqlStore, cli_url: str,
                              run_ids: list[str], tmp_path: Path) -> dict[str, str]:
    """Scan the exports and what the CLI shows; returns the displays by command."""
    buffer = io.BytesIO()
    lines = store.export_runs(run_ids, buffer)
    assert lines > 3 * len(run_ids)
    scanner.scan("export store.export_runs", buffer.getvalue())

    out = tmp_path / "export.jsonl"
    _cli(scanner, ["export", *run_ids, "--store", cli_url, "-o", str(out)], "export -o")
    scanner.scan("export agentlab export -o", out.read_bytes())
    assert out.read_bytes().count(b"\n") == lines
    shown = {"export": _cli(scanner, ["export", *run_ids, "--store", cli_url], "export (stdout)")}
    for rid in run_ids:
        for args in (["show", rid], ["show", rid, "--json"], ["diff", rid],
                     ["diff", rid, "--json"]):
            shown[" ".join(args)] = _cli(scanner, [*args, "--store", cli_url], " ".join(args))
    for args in (["runs", "--json"], ["approvals", "--all"], ["approvals", "--all", "--json"]):
        shown[" ".join(args)] = _cli(scanner, [*args, "--store", cli_url], " ".join(args))
    return shown


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.fixture
def recording_store(store_url: tuple[str, str | None]) -> Iterator[tuple[SqlStore, str]]:
    """A store (closed by the test itself, to scan the file after closing) and the URL the
    CLI reaches the same data with."""
    url, schema = store_url
    store = open_store(url, schema=schema)
    cli_url = url if schema is None else f"{url}?options=-csearch_path%3D{schema}"
    try:
        yield store, cli_url
    finally:
        store.close()


def test_no_planted_secret_reaches_the_store_an_export_or_a_display(
    recording_store: tuple[SqlStore, str], store_url: tuple[str, str | None],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's check: all channels, all shapes, every byte written or shown."""
    store, cli_url = recording_store
    url, schema = store_url
    cn = Canaries()
    rec = _record(store, cn, tmp_path, monkeypatch)
    scanner = Scanner(cn)

    # Enough canaries, in every channel the issue names.
    assert len(cn.labels) >= MIN_CANARIES, f"only {len(cn.labels)} canaries planted"
    channels = cn.by_channel()
    for wanted in ("environment", "header", "URL", "arguments", "result", "prompt",
                   "exception", "state"):
        assert any(c.startswith(wanted) for c in channels), f"no canary planted in {wanted}"

    # Every run recorded completely, and verifies.
    governed = rec.run_ids[0]
    assert [store.run(r).status for r in rec.run_ids] == ["succeeded", "succeeded", "errored"]
    for rid in rec.run_ids:
        report = store.verify(rid)[0]
        assert report.ok, report
    summary = store.run(governed)
    assert summary.denied_count == 1 and summary.retry_count == 1
    assert summary.approval_count == 4 and summary.override_count == 1

    # The database: files while open (WAL present), every table value, blobs decompressed.
    sqlite_path = None if schema is not None else Path(url)
    if sqlite_path is not None:
        files = _scan_sqlite_files(scanner, sqlite_path, "store open")
        assert f"{sqlite_path.name}-wal" in files, f"no WAL file to scan: {files}"
    stored_text = _scan_tables(scanner, url, schema)

    # Exports and displays, then the log lines.
    shown = _scan_exports_and_display(scanner, store, cli_url, rec.run_ids, tmp_path)
    scanner.scan("logs agentlab logger", rec.logs.encode("utf-8"))

    store.close()
    if sqlite_path is not None:
        _scan_sqlite_files(scanner, sqlite_path, "store closed")

    print(f"{len(cn.labels)} canaries ("
          f"{sum(v.startswith('known') for v in cn.labels.values())} known secrets), "
          f"{len(cn.uses)} plantings, by channel {dict(sorted(channels.items()))}; "
          f"bytes scanned {dict(scanner.scanned)}")
    scanner.check()

    # The redaction happened (so the scan found nothing because there is nothing to find).
    missing = sorted(m for m in {*cn.markers, "secret"} if f"[REDACTED:{m}]" not in stored_text)
    assert not missing, f"no [REDACTED:...] marker in the store for: {missing}"
    for command in ("export", "approvals --all --json",
                    *(f"show {rid}" for rid in rec.run_ids),
                    *(f"show {rid} --json" for rid in rec.run_ids)):
        assert MARKER_PREFIX in shown[command], f"agentlab {command} shows no redaction marker"
    assert "[REDACTED:secret]" in rec.logs and "[REDACTED:github-token]" in rec.logs, rec.logs
    with open_store(url, schema=schema) as again:
        _check_redacted_pointers(again, rec)


def _check_redacted_pointers(store: al.RunStore, rec: Recorded) -> None:
    """Each kind of event a canary went into lists what was scrubbed, and the values that
    carried a canary are still there, as markers."""
    governed, plain, errored = rec.run_ids
    kinds_with_pointers: dict[str, set[str]] = {}
    for rid in rec.run_ids:
        for e in store.events(rid):
            if e.redacted:
                kinds_with_pointers.setdefault(rid, set()).add(e.kind)
    assert {"run_started", "tool_call", "tool_intent", "llm_call", "checkpoint", "step",
            "error", "retry"} <= kinds_with_pointers.get(governed, set()), kinds_with_pointers
    assert {"run_started", "tool_call", "checkpoint"} <= kinds_with_pointers.get(plain, set())
    assert {"error", "run_ended"} <= kinds_with_pointers.get(errored, set())

    events = store.events(governed)
    fetch: Any = next(e for e in events if e.kind == "tool_call" and e.tool == "fetch_ticket")
    assert fetch.result["auth"]["token_used"] == "[REDACTED:secret]"
    assert "/result/auth/token_used" in fetch.redacted
    started: Any = next(e for e in events if e.kind == "run_started")
    assert started.task_input["password"] == "[REDACTED:assignment]"
    state = store.state_at(governed)
    assert state["session"]["history"][0] == "used [REDACTED:secret]"
    assert state["jwt"] == "[REDACTED:jwt]"
    denied: Any = next(e for e in events if e.kind == "tool_call" and e.status == "denied")
    assert denied.arguments["confirm_token"] == "[REDACTED:assignment]"
    assert all(MARKER_PREFIX in json.dumps(a.arguments) for a in rec.approvals), rec.approvals
    edited = [a.edited_arguments for a in rec.approvals if a.edited_arguments is not None]
    assert edited == [{"project": "SUP", "title": "password=[REDACTED:assignment]",
                       "body": "edited by a human"}], edited


# ---------------------------------------------------------------------------------------------
# One test per leak path found, each planting only what goes down that path


def _known_now(cn: Canaries, what: str) -> str:
    """A credential this process has resolved (and so must never record)."""
    value = cn.known(what)
    assert resolve_secret(lambda: value) == value
    return value


def _state_keys(store: SqlStore, cn: Canaries) -> list[str]:
    """State keys are recorded too: a cache keyed by a token, or by a URL with a password."""
    token = _known_now(cn, "resolved token")
    with al.record_run(WORKFLOW, agent=AGENT, store=store) as run:
        run.state[f"token-cache:{cn.leak('state key', token)}"] = {"valid": True}
        run.state[cn.shaped("state key", "url password")] = {"fetched": True}
        run.state["nested"] = {f"by-token:{cn.leak('state nested key', token)}": 1}
    return [run.run_id]


def _idempotency_key(store: SqlStore, cn: Canaries) -> list[str]:
    """An idempotency key built from the arguments, of a call that waits for approval: it
    becomes the approval request's ``call_key``."""
    al.issue_grant(store, "hooks", principal=AGENT, owner="canary-team", workflow=WORKFLOW,
                   scopes=["hooks:write"], expires_in=timedelta(hours=1))

    @al.tool(side_effect=True, scope="hooks:write", idempotency_key=lambda a: f"hook:{a['url']}")
    def register_webhook(url: str) -> bool:
        return True

    policy = al.Policy([al.Rule("hooks-need-a-human", "approve", tool="register_webhook")])
    with al.record_run(WORKFLOW, agent=AGENT, store=store, grants=["hooks"], policy=policy,
                       approver=al.auto_approve("canary-tester")) as run:
        register_webhook(cn.shaped("arguments (idempotency key)", "url password"))
    return [run.run_id]


def _bytes_payloads(store: SqlStore, cn: Canaries) -> list[str]:
    """``bytes`` results, state values and message parts (a raw HTTP response, a file)."""
    token = _known_now(cn, "resolved token")

    @al.tool
    def raw_response(path: str) -> bytes:
        return (f"HTTP/1.1 200 OK\r\n{cn.shaped('result (bytes)', 'bearer header')}\r\n"
                f"X-Token: {cn.leak('result (bytes)', token)}\r\n\r\n").encode()

    with al.record_run(WORKFLOW, agent=AGENT, store=store) as run:
        raw_response("/me")
        run.state["raw_request"] = cn.shaped("state (bytes)", "password=").encode()
        run.llm_call("gpt-4o", messages=[{"role": "user", "content": [
            {"type": "file", "data": cn.shaped("prompt (bytes)", "openai key").encode()}]}])
    return [run.run_id]


def _decision_reasons(store: SqlStore, cn: Canaries) -> list[str]:
    """Reasons stored with a decision: a rejection quoting what it refused, and the error
    of an approver that failed."""
    token = _known_now(cn, "resolved token")
    al.issue_grant(store, "mailer", principal=AGENT, owner="canary-team", workflow=WORKFLOW,
                   scopes=["mail:send"], expires_in=timedelta(hours=1))

    @al.tool(side_effect=True, scope="mail:send")
    def send_mail(to: str, body: str) -> bool:
        return True

    def approver(request: ApprovalRequest, manager: ApprovalManager) -> None:
        if request.arguments["to"] == "a@example.com":
            manager.reject(request.id, by="canary-tester",
                           reason=f"never mail {cn.shaped('rejection reason', 'password=')}")
        else:
            raise ConnectionError(f"approval service refused {cn.leak('approver error', token)}")

    policy = al.Policy([al.Rule("mail-needs-a-human", "approve", tool="send_mail")])
    with al.record_run(WORKFLOW, agent=AGENT, store=store, grants=["mailer"], policy=policy,
                       approver=approver) as run:
        for to in ("a@example.com", "b@example.com"):
            with pytest.raises(al.ToolDeniedError):
                send_mail(to, "hello")
    return [run.run_id]


def _scope_from_argument(store: SqlStore, cn: Canaries) -> list[str]:
    """A scope filled from an argument that holds a credential, on a call that waits for
    approval: it becomes the approval request's ``scope``."""
    token = _known_now(cn, "resolved token")
    al.issue_grant(store, "vault", principal=AGENT, owner="canary-team", workflow=WORKFLOW,
                   scopes=["vault:rotate:*"], expires_in=timedelta(hours=1))

    @al.tool(side_effect=True, scope="vault:rotate:{token}")
    def rotate(token: str) -> bool:
        return True

    policy = al.Policy([al.Rule("rotation-needs-a-human", "approve", tool="rotate")])
    with al.record_run(WORKFLOW, agent=AGENT, store=store, grants=["vault"], policy=policy,
                       approver=al.auto_approve("canary-tester")) as run:
        rotate(cn.leak("arguments (scope)", token))
    return [run.run_id]


def _grant_secret_before_first_use(store: SqlStore, cn: Canaries) -> list[str]:
    """The run is given a grant whose secret is in the environment; the agent records it
    (in its task input) before the first call that needs the grant. The grant was issued
    before the secret existed here, as when ``agentlab grant`` ran on another machine."""
    al.issue_grant(store, "deploy", principal=AGENT, owner="canary-team", workflow=WORKFLOW,
                   scopes=["deploy:read"], expires_in=timedelta(hours=1),
                   secret="env:AL_CANARY_DEPLOY_TOKEN")
    token = cn.known("env:AL_CANARY_DEPLOY_TOKEN")
    os.environ["AL_CANARY_DEPLOY_TOKEN"] = token

    @al.tool(scope="deploy:read")
    def status() -> str:
        return "green"

    try:
        with al.record_run(WORKFLOW, agent=AGENT, store=store, grants=["deploy"],
                           task_input={"env": {"DEPLOY": cn.leak("task_input (environment)",
                                                                 token)}}) as run:
            run.flush()  # what the background writer does within 0.2 s anyway
            status()
    finally:
        del os.environ["AL_CANARY_DEPLOY_TOKEN"]
    return [run.run_id]


LEAK_PATHS = {
    "state-keys": _state_keys,
    "idempotency-key": _idempotency_key,
    "bytes-payloads": _bytes_payloads,
    "decision-reasons": _decision_reasons,
    "scope-from-argument": _scope_from_argument,
    "grant-secret-before-first-use": _grant_secret_before_first_use,
}


@pytest.mark.parametrize("path", list(LEAK_PATHS))
def test_leak_path_is_closed(path: str, recording_store: tuple[SqlStore, str],
                             store_url: tuple[str, str | None], tmp_path: Path) -> None:
    """Each leak path on its own, so a fix can be checked path by path (the test above
    plants the same channels among all the others)."""
    store, cli_url = recording_store
    url, schema = store_url
    cn = Canaries()
    run_ids = LEAK_PATHS[path](store, cn)
    assert cn.uses, "the scenario planted nothing"
    assert all(store.verify(rid)[0].ok for rid in run_ids)
    scanner = Scanner(cn)
    if schema is None:
        _scan_sqlite_files(scanner, Path(url), "store open")
    _scan_tables(scanner, url, schema)
    _scan_exports_and_display(scanner, store, cli_url, run_ids, tmp_path)
    scanner.check()
