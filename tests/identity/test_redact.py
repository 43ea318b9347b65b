"""The secret redactor: default patterns, known secrets, pointers, the byte pre-check (no
false negatives, checked by property tests), failing closed, logging, threads and fork."""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import os
import re
import signal
import threading
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentlab.identity import (
    DEFAULT_PATTERNS,
    MARKER_PREFIX,
    Redactor,
    ScrubbedLogFilter,
    SecretPattern,
    default_redactor,
)
from agentlab.identity._patterns import MIN_SECRET_LEN
from agentlab.model import canonical, dumps, loads

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ERROR = "[REDACTED:scrubber-error]"
SECRET = "s3cr3t-Value_42"

# Realistic credentials, assembled so that this file itself holds no token-shaped literal.
OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_AbC-dEf" * 2
OPENAI_LEGACY = "sk-" + "T3BlbkFJ" * 6
ANTHROPIC_KEY = "sk-ant-api03-" + "Xy9_Zw8-Vu7tSr6qPo5nMl4kJi3hGf2eDc1bA0" * 2 + "AA"
GITHUB_PAT = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7" + "c0F3i6L9x"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0" + "1234567890_abcdefghijklmnopqrstuvwxyz"
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_TEMP_KEY_ID = "ASIA" + "Y34FZKBOKMUTVV7A"
GOOGLE_KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "\nMIIEowIBAAKCAQEA7bq98Xyz\nq0e1c2d3e4f5g6h7i8j9k0\n"
assert len(GITHUB_PAT) == 40 and len(GOOGLE_KEY) == 39

# (pattern name, text, text after redaction): each default pattern, its context kept.
EXAMPLES = [
    ("bearer", "Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED:bearer]"),
    ("bearer", "curl -H 'authorization: bearer 0a1b2c3d4e5f' https://api.example.com",
     "curl -H 'authorization: bearer [REDACTED:bearer]' https://api.example.com"),
    ("bearer", "sent BEARER\tAbCdEfGhIjKlMnOpQr== to the proxy",
     "sent BEARER\t[REDACTED:bearer] to the proxy"),
    ("url-password", "postgresql://admin:s3cr3t-pw@db.internal:5432/app",
     "postgresql://admin:[REDACTED:url-password]@db.internal:5432/app"),
    ("url-password", "cache at redis://:hunter22@cache:6379/0 is up",
     "cache at redis://:[REDACTED:url-password]@cache:6379/0 is up"),
    ("url-password", "https://bot:p@ss:w0rd@git.example.com/repo.git",
     "https://bot:[REDACTED:url-password]@git.example.com/repo.git"),
    ("openai-key", f"OPENAI_KEY {OPENAI_KEY} (project)",
     "OPENAI_KEY [REDACTED:openai-key] (project)"),
    ("openai-key", f"legacy:{OPENAI_LEGACY}.", "legacy:[REDACTED:openai-key]."),
    ("anthropic-key", f"x-api-header {ANTHROPIC_KEY}", "x-api-header [REDACTED:anthropic-key]"),
    ("github-token", f"git clone with {GITHUB_PAT} now",
     "git clone with [REDACTED:github-token] now"),
    ("github-token", f"GH={GITHUB_FINE}", "GH=[REDACTED:github-token]"),
    ("slack-token", f"slack {SLACK_TOKEN}", "slack [REDACTED:slack-token]"),
    ("aws-access-key-id", f"aws_access_key_id = {AWS_KEY_ID}",
     "aws_access_key_id = [REDACTED:aws-access-key-id]"),
    ("aws-access-key-id", f"temporary {AWS_TEMP_KEY_ID}!",
     "temporary [REDACTED:aws-access-key-id]!"),
    ("google-api-key", f"maps/api/js?key={GOOGLE_KEY}&v=3",
     "maps/api/js?key=[REDACTED:google-api-key]&v=3"),
    ("jwt", f"session {JWT} expired", "session [REDACTED:jwt] expired"),
    ("private-key",
     f"-----BEGIN RSA PRIVATE KEY-----{PEM_BODY}-----END RSA PRIVATE KEY-----\n",
     "-----BEGIN RSA PRIVATE KEY-----[REDACTED:private-key]-----END RSA PRIVATE KEY-----\n"),
    ("private-key", f"-----BEGIN OPENSSH PRIVATE KEY-----{PEM_BODY}",
     "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED:private-key]"),
    ("assignment", "password=hunter2&user=ann", "password=[REDACTED:assignment]&user=ann"),
    ("assignment", 'config {"api_key": "abc 123", "region": "eu"}',
     'config {"api_key": "[REDACTED:assignment]", "region": "eu"}'),
    ("assignment", "CLIENT_SECRET: Zm9vYmFy", "CLIENT_SECRET: [REDACTED:assignment]"),
    ("assignment", "Authorization: Basic dXNlcjpwYXNz",
     "Authorization: Basic [REDACTED:assignment]"),
    ("assignment", "export ACCESS_KEY='q1w2e3r4'", "export ACCESS_KEY='[REDACTED:assignment]'"),
    ("assignment", "accessToken=xyz789;", "accessToken=[REDACTED:assignment];"),
    ("assignment", 'escaped {\\"passwd\\": \\"pa ss\\"}',
     'escaped {\\"passwd\\": \\"[REDACTED:assignment]\\"}'),
    ("assignment", "token: 512", "token: [REDACTED:assignment]"),
]

# Left alone by the default patterns; the first group does not even trigger the byte scan.
NOT_SECRET_NO_SCAN = [
    "123e4567-e89b-12d3-a456-426614174000",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ticket SUP-57 reopened",
    "SUP-57",
    "2024-06-03T09:00:00Z",
    "2024-06-03T09:00:00.123456+00:00",
    "01a20b0233aa73ac972920e9253f4400",
    "ACME-1042 on HTTP 503",
    "max_tokens=512",
    "input_tokens: 1200",
    "token_count: 3",
    "passwordless login is enabled",
    "https://example.com/v2/shipments?page=2",
    "ann@example.com",
    "Asia/Tokyo",
    "task-management-system-design-2024",
]
NOT_SECRET = [
    *NOT_SECRET_NO_SCAN,
    "the token count was 512",
    "keep this secret between us",
    "secretary: Ann Lee",
    "the bearer of bad news",
    "use a Bearer Token in the header",
    "password reset requested by the user",
    "authorization failed for user ann",
    "risk-assessment-for-the-new-product-line",
    "eyes on the prize. eyJ alone is not a token",
]


def strings_in(value: Any) -> list[str]:
    """Every string and mapping key in a JSON-like value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []


def body_bytes(value: Any) -> bytes:
    return canonical(value)[0]


# -- default patterns -------------------------------------------------------------------------


def test_every_default_pattern_has_examples() -> None:
    assert {name for name, _, _ in EXAMPLES} == {p.name for p in DEFAULT_PATTERNS}


@pytest.mark.parametrize(("name", "text", "expected"), EXAMPLES)
def test_default_patterns_redact_and_keep_context(name: str, text: str, expected: str) -> None:
    r = Redactor()
    assert r.scrub_text(text) == expected
    assert f"{MARKER_PREFIX}:{name}]" in expected
    assert expected.count(MARKER_PREFIX) == 1
    # Scanned where the writer scans: a string value, a mapping key, deep inside a body.
    for value in (text, {text: 1}, {"messages": [{"content": text}]}):
        assert r.might_contain(body_bytes(value)), value
        out, pointers = r.scrub(value)
        assert pointers
        assert expected in strings_in(out)


@pytest.mark.parametrize("text", NOT_SECRET)
def test_ordinary_text_is_left_alone(text: str) -> None:
    r = Redactor(secrets=[SECRET])
    assert r.scrub_text(text) == text
    assert r.scrub({"q": text}) == ({"q": text}, [])


@pytest.mark.parametrize("text", NOT_SECRET_NO_SCAN)
def test_ordinary_text_does_not_trigger_the_scan(text: str) -> None:
    assert not Redactor(secrets=[SECRET]).might_contain(body_bytes({"q": text, text: 0}))


def test_mapping_entries_read_as_assignments() -> None:
    r = Redactor()
    value = {
        "password": "correct horse battery",
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": "k-123"},
        "apiKey": "abc",
        "max_tokens": 512,  # not a string: left as is
        "token_count": "3",  # not a secret-sounding name
        "secretary": "Ann",
    }
    out, pointers = r.scrub(value)
    assert out == {
        "password": "[REDACTED:assignment]",
        "headers": {"Authorization": "Basic [REDACTED:assignment]",
                    "X-Api-Key": "[REDACTED:assignment]"},
        "apiKey": "[REDACTED:assignment]",
        "max_tokens": 512,
        "token_count": "3",
        "secretary": "Ann",
    }
    assert pointers == ["/password", "/headers/Authorization", "/headers/X-Api-Key", "/apiKey"]
    assert r.might_contain(body_bytes(value))


def test_bearer_header_keeps_its_scheme_inside_a_mapping() -> None:
    out, pointers = Redactor().scrub({"headers": {"Authorization": "Bearer abc.def"}})
    assert out == {"headers": {"Authorization": "Bearer [REDACTED:bearer]"}}
    assert pointers == ["/headers/Authorization"]


# -- known secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [SECRET, 'quo"te\\back', "ünïcødé-sécret", "tab\there\nnewline", "emoji-🔑-key", "ctl\x01\x1f!"],
)
def test_known_secrets_anywhere(secret: str) -> None:
    r = Redactor(secrets=[secret], patterns=())
    value = {
        "args": {"q": f"before {secret} after", "nested": [("t", [secret])]},
        secret: {"k": 1},
        "n": 3,
    }
    out, pointers = r.scrub(value)
    assert out == {
        "args": {"q": "before [REDACTED:secret] after",
                 "nested": [("t", ["[REDACTED:secret]"])]},
        "[REDACTED:secret]": {"k": 1},
        "n": 3,
    }
    assert pointers == ["/args/q", "/args/nested/0/1/0", "/[REDACTED:secret]"]
    data = body_bytes(value)
    assert r.might_contain(data)
    assert r.might_contain(body_bytes(secret))
    assert orjson.dumps(secret)[1:-1] not in body_bytes(out)


def test_overlapping_and_repeated_secrets_leave_no_fragment() -> None:
    r = Redactor(secrets=["abcdef123", "def123xyz"], patterns=())
    assert r.scrub_text("<abcdef123xyz> abcdef123abcdef123") == (
        "<[REDACTED:secret]> [REDACTED:secret]"
    )


def test_longer_secret_wins_over_its_prefix() -> None:
    r = Redactor(secrets=["hunter2!", "hunter2!-and-more"], patterns=())
    assert r.scrub_text("pw hunter2!-and-more.") == "pw [REDACTED:secret]."


def test_a_secret_is_redacted_in_the_form_canonical_json_stores() -> None:
    r = Redactor(secrets=["nul\x00inside"], patterns=())
    data = body_bytes({"q": "nul\x00inside"})  # canonical JSON stores U+FFFD for NUL
    assert r.might_contain(data)
    assert r.scrub(loads(data))[0] == {"q": "[REDACTED:secret]"}


def test_bytes_and_objects_are_scrubbed_in_their_recorded_form() -> None:
    @dataclasses.dataclass
    class Profile:
        user: str
        note: str

    r = Redactor(secrets=[SECRET])
    clean = Profile("ann", "none")
    assert r.scrub(clean) == (clean, [])
    assert r.scrub(clean)[0] is clean
    assert r.scrub({"c": Profile("ann", SECRET)}) == (
        {"c": {"user": "ann", "note": "[REDACTED:secret]"}}, ["/c/note"]
    )
    assert r.scrub(f"raw {SECRET}".encode()) == ("raw [REDACTED:secret]", [""])
    assert r.scrub(b"\xff\xfe binary") == (b"\xff\xfe binary", [])

    class Opaque:
        def __repr__(self) -> str:
            return f"Opaque(token={SECRET})"

    assert r.scrub([Opaque()]) == (["Opaque(token=[REDACTED:secret])"], ["/0"])


def test_add_secret_rejects_short_values_and_is_idempotent() -> None:
    r = Redactor()
    with pytest.raises(ValueError, match=r"5 characters is too short .* at least 6"):
        r.add_secret("abcde")
    with pytest.raises(TypeError):
        r.add_secret(123456)  # type: ignore[arg-type]
    assert MIN_SECRET_LEN == 6
    v = r.version
    r.add_secret("abcdef")
    assert r.version == v + 1
    r.add_secret("abcdef")
    assert r.version == v + 1
    assert r.scrub_text("xabcdefx") == "x[REDACTED:secret]x"


def test_version_counts_changes() -> None:
    r = Redactor(patterns=())
    assert r.version == 0
    r.add_pattern(r"ACME-\d{6}", name="acme")
    r.add_callback(lambda s: None)
    r.add_secret(SECRET)
    assert r.version == 3


def test_repr_never_shows_a_secret() -> None:
    r = Redactor(secrets=[SECRET])
    assert SECRET not in repr(r)
    assert "1 secrets" in repr(r)


# -- pointers, sharing, no mutation -----------------------------------------------------------


def test_pointers_follow_rfc6901_and_walk_order() -> None:
    r = Redactor(secrets=[SECRET])
    value = {
        "a/b": {"c~d": ["x", f"y {SECRET}"]},
        "headers": {"Authorization": "Bearer abc.def"},
        "messages": [{"role": "user", "content": f"key {SECRET}"}],
        f"~/{SECRET}": "v",
    }
    _, pointers = r.scrub(value)
    assert pointers == [
        "/a~1b/c~0d/1",
        "/headers/Authorization",
        "/messages/0/content",
        "/~0~1[REDACTED:secret]",
    ]


def test_keys_that_scrub_alike_stay_distinct() -> None:
    r = Redactor(secrets=["first-secret", "second-secret"], patterns=())
    out, pointers = r.scrub({"first-secret": 1, "second-secret": 2, "[REDACTED:secret]#2": 3})
    assert out == {"[REDACTED:secret]": 1, "[REDACTED:secret]#3": 2, "[REDACTED:secret]#2": 3}
    assert pointers == ["/[REDACTED:secret]", "/[REDACTED:secret]#3"]


def test_input_is_never_mutated_and_clean_subtrees_are_shared() -> None:
    r = Redactor(secrets=[SECRET])
    clean = {"deep": [1, 2, {"x": "y"}]}
    value = {"clean": clean, "dirty": [f"a {SECRET}", ("t", SECRET)], SECRET: [1]}
    before = copy.deepcopy(value)
    out, _ = r.scrub(value)
    assert value == before
    assert out["clean"] is clean
    assert out["dirty"][1] == ("t", "[REDACTED:secret]")
    assert r.scrub(clean)[0] is clean


def test_scrubbing_twice_changes_nothing_more() -> None:
    r = Redactor(secrets=[SECRET])
    value = {"t": [text for _, text, _ in EXAMPLES], "s": SECRET, "password": "x y"}
    once, pointers = r.scrub(value)
    assert pointers
    assert r.scrub(once) == (once, [])


# -- failing closed ---------------------------------------------------------------------------


def test_a_raising_callback_hides_the_whole_string() -> None:
    def boom(text: str) -> str | None:
        if "card" in text:
            raise RuntimeError(text)
        return None

    r = Redactor(callbacks=[boom])
    assert r.might_contain(b'{"a":1}')  # callbacks run on every string: always scan
    out, pointers = r.scrub({"a": "card 4111 1111 1111 1111", "b": "fine"})
    assert out == {"a": ERROR, "b": "fine"}
    assert pointers == ["/a"]
    assert r.scrub_text("my card 4111") == ERROR


def test_callbacks_replace_and_bad_returns_fail_closed() -> None:
    def mask_cards(text: str) -> str | None:
        return re.sub(r"\d{4}", "####", text) if "card" in text else None

    r = Redactor(patterns=(), callbacks=[mask_cards])
    assert r.scrub_text("card 4111 x") == "card #### x"
    r.add_callback(lambda s: 42 if "odd" in s else None)  # type: ignore[arg-type,return-value]
    assert r.scrub_text("an odd value") == ERROR


def test_any_failure_inside_the_walk_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        def model_dump(self, mode: str) -> Any:
            raise RuntimeError(f"cannot dump {SECRET}")

    r = Redactor(secrets=[SECRET])
    with caplog.at_level(logging.WARNING, logger="agentlab.identity"):
        assert r.scrub({"ok": "x", "bad": Exploding()}) == (ERROR, [""])
    assert SECRET not in caplog.text
    loop: list[Any] = []
    loop.append(loop)
    assert r.scrub(loop) == (ERROR, [""])


def test_scrub_json_gives_canonical_bytes_or_none() -> None:
    r = Redactor(secrets=[SECRET])
    assert r.scrub_json(dumps({"kind": "step", "q": "nothing"})) is None
    data = dumps({"kind": "tool_call", "arguments": {"q": SECRET}, "z": None})
    got = r.scrub_json(data)
    assert got is not None
    new, pointers = got
    assert pointers == ["/arguments/q"]
    assert loads(new) == {"kind": "tool_call", "arguments": {"q": "[REDACTED:secret]"}, "z": None}
    assert dumps(loads(new)) == new  # the store's canonical-body check accepts it
    assert r.scrub_json(b"not json " + SECRET.encode()) == (orjson.dumps(ERROR), [""])


# -- custom patterns --------------------------------------------------------------------------


def test_custom_patterns_and_their_triggers() -> None:
    r = Redactor(patterns=())
    r.add_pattern(r"ACME-\d{6}", name="acme-id")
    assert r.scrub_text("order ACME-123456 shipped") == "order [REDACTED:acme-id] shipped"
    assert r.might_contain(body_bytes({"q": "ACME-123456"}))
    assert not r.might_contain(body_bytes({"q": "ACM-123456"}))  # derived trigger: "ACME-"
    assert not r.might_contain(body_bytes({"q": "nothing here"}))

    r.add_pattern(SecretPattern("pin", re.compile(r"(?i)pin (\d{4})"), 1))
    assert r.scrub_text("PIN 1234") == "PIN [REDACTED:pin]"
    # Unicode case folding gives no safe literal trigger: every body is scanned.
    assert r.might_contain(b'{"q":"x"}')


def test_pattern_validation() -> None:
    with pytest.raises(ValueError, match="no group named"):
        SecretPattern("x", re.compile("a(b)"), "nope")
    with pytest.raises(ValueError, match="has no group 2"):
        SecretPattern("x", re.compile("a(b)"), 2)
    with pytest.raises(ValueError, match="cannot go in a marker"):
        SecretPattern("bad]name", re.compile("abc"))
    with pytest.raises(ValueError, match="global flags"):
        SecretPattern("x", re.compile("abc"), 0, (b"(?i)abc",))
    with pytest.raises(ValueError, match="not a valid regular expression"):
        Redactor().add_pattern("a(b", name="broken")
    assert SecretPattern("x", re.compile(r"\bXYZ-\d+")).triggers == (b"XYZ\\-",)
    assert SecretPattern("x", re.compile(r"abc?d")).triggers == ()  # only "ab" is certain


# -- the byte pre-check has no false negatives (properties) -----------------------------------

odd_chars = st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\x0b", "\u2028", "ſ", "\u212a",
                             "\ud800", "é", "/", "~", "\x7f"])
text_chars = st.one_of(st.characters(), odd_chars)
plain_text = st.text(text_chars, max_size=10)
secret_text = st.text(st.one_of(st.characters(exclude_categories=["Cs"]), odd_chars.filter(
    lambda c: c != "\ud800")), min_size=MIN_SECRET_LEN, max_size=16)
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                 st.floats(allow_nan=False), plain_text)
json_values = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(plain_text, inner, max_size=4),
    ),
    max_leaves=15,
)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, Any]:
    """A secret, and a random value with the secret somewhere in a string or a key."""
    secret = draw(secret_text)

    def plant(value: Any) -> Any:
        text = draw(plain_text) + secret + draw(plain_text)
        if isinstance(value, dict) and value and draw(st.booleans()):
            key = draw(st.sampled_from(list(value)))
            new = dict(value)
            if draw(st.booleans()):
                new[text] = new.pop(key)
            else:
                new[key] = plant(value[key])
            return new
        if isinstance(value, list | tuple) and value and draw(st.booleans()):
            items = list(value)
            i = draw(st.integers(0, len(items) - 1))
            items[i] = plant(items[i])
            return type(value)(items)
        if isinstance(value, str):
            cut = draw(st.integers(0, len(value)))
            return value[:cut] + secret + value[cut:]
        return text

    return secret, plant(draw(json_values))


@SETTINGS
@given(planted())
def test_a_planted_secret_is_always_flagged_and_removed(case: tuple[str, Any]) -> None:
    secret, value = case
    r = Redactor(secrets=[secret])
    data = body_bytes(value)
    assert r.might_contain(data)
    for v in (value, loads(data)):
        out, pointers = r.scrub(v)
        assert pointers
        assert not any(secret in s for s in strings_in(out))
        assert orjson.dumps(secret)[1:-1] not in body_bytes(out)
    got = r.scrub_json(data)
    assert got is not None and orjson.dumps(secret)[1:-1] not in got[0]


@SETTINGS
@given(json_values, secret_text)
def test_values_without_secrets_come_back_unchanged(value: Any, secret: str) -> None:
    assume(not any(secret in s for s in strings_in(value)))
    r = Redactor(secrets=[secret])
    out, pointers = r.scrub(value)
    assert pointers == []
    assert out is value


# Pieces of secret-shaped text, in odd spellings and escapes, glued into strings and keys:
# whatever a scrub of the stored value changes, the byte scan must have flagged.
FRAGMENTS = [
    "Bearer ", "bearer\t", "BEARER\n", "Token ", "basic ", "abc.def", "0a1b2c", "x" * 16,
    "password", "PassWord", "passwd", "secret", "SECRET", "token", "Token", "api_key", "Api-Key",
    "apikey", "access_key", "ACCESS-KEY", "accesskey", "authorization", "Authorization", "auth",
    "client_", "max_", "s", ":", "=", ": ", " = ", '"', "'", '\\"', "\\", " ", "\n", "\x0b",
    "://", "https", "user", "@", "/", "?", "sk-", "sk-ant-", "proj-", "ghp_", "github_pat_",
    "xoxb-", "AKIA", "ASIA", "AIza", "eyJ", ".", "-", "_",
    "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", " PRIVATE KEY BLOCK-----",
    "-----BEGIN RSA ", "A1b2C3d4E5f6G7h8I9j0", "ABCDEFGHIJKLMNOP0123", "ſecret", "\u212aey",
    "[REDACTED:secret]", SECRET,
]
fragment_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(text_chars, max_size=3)), max_size=8)
    .map("".join),
    st.sampled_from([text for _, text, _ in EXAMPLES]),
)
fragment_values = st.recursive(
    st.one_of(st.none(), st.integers(), fragment_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(fragment_text, inner, max_size=4)),
    max_leaves=8,
)


@SETTINGS
@given(fragment_values)
def test_the_byte_scan_has_no_false_negatives(value: Any) -> None:
    r = Redactor(secrets=[SECRET])
    data = body_bytes(value)
    _, pointers = r.scrub(loads(data))
    if pointers:
        assert r.might_contain(data)
    assert (r.scrub_json(data) is None) == (not pointers)


# -- logging ----------------------------------------------------------------------------------


def test_log_filter_keeps_secrets_out_of_log_lines() -> None:
    r = Redactor(secrets=[SECRET])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(ScrubbedLogFilter(redactor=r))
    logger = logging.getLogger("tests.identity.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.warning("calling with %s and %r", SECRET, {"auth": f"Bearer {SECRET}"})
        logger.info("plain %d", 3)
        try:
            raise RuntimeError(f"login failed for token {SECRET}")
        except RuntimeError:
            logger.exception("upstream said no")
        logger.error("bad format %d", SECRET)  # the format fails: msg and args are printed raw
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert "calling with [REDACTED:secret]" in out
    assert "INFO plain 3" in out
    assert "RuntimeError: login failed for token [REDACTED:secret]" in out
    assert "bad format" in out


def test_log_filter_uses_the_process_redactor_by_default() -> None:
    default_redactor().add_secret("process-wide-secret-1")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "v=%s", ("process-wide-secret-1",),
                               None)
    assert ScrubbedLogFilter().filter(record) is True
    assert record.getMessage() == "v=[REDACTED:secret]"


# -- threads and fork -------------------------------------------------------------------------


def test_adding_secrets_while_scrubbing_from_threads() -> None:
    r = Redactor()
    secrets = [f"thread-secret-{i:04d}" for i in range(200)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def add(chunk: list[str]) -> None:
        for s in chunk:
            r.add_secret(s)

    def scrub() -> None:
        try:
            while not stop.is_set():
                value = {"q": " ".join(secrets[:50])}
                out, _ = r.scrub(value)
                assert ERROR not in strings_in(out)
                r.might_contain(body_bytes(value))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=scrub) for _ in range(3)]
    writers = [threading.Thread(target=add, args=(secrets[i::4],)) for i in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert r.version == len(secrets) + len(DEFAULT_PATTERNS)
    out, _ = r.scrub(" ".join(secrets))
    assert out == " ".join(["[REDACTED:secret]"] * len(secrets))
    assert r.might_contain(body_bytes(secrets[-1]))


def test_default_redactor_is_one_per_process() -> None:
    assert default_redactor() is default_redactor()
    assert default_redactor().scrub_text("Bearer abc.def") == "Bearer [REDACTED:bearer]"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_can_use_the_redactor_even_if_its_lock_was_held() -> None:
    r = default_redactor()
    r.add_secret("parent-secret-xyz")
    with r._lock:  # as if another thread were adding a secret at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: exit code 0 only if everything works
            code = 1
            try:
                signal.alarm(10)  # a deadlock kills the child instead of hanging the test
                r.add_secret("child-secret-xyz")
                ok = r.scrub_text("parent-secret-xyz child-secret-xyz") == (
                    "[REDACTED:secret] [REDACTED:secret]"
                )
                code = 0 if ok else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
