"""Shared fixtures: a store on a real SQLite file and, when configured, on real PostgreSQL.

PostgreSQL tests need ``AGENTLAB_TEST_PG_URL`` (``.ci/run`` sets it to the local server,
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema, dropped after.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import agentlab
from agentlab.store import SqlStore, open_store

# CI runs the property tests derandomized (HYPOTHESIS_PROFILE=ci in .ci/run), so a landing
# never depends on the luck of the draw; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Fingerprints and approval MACs need a signing key: a fresh one for the session, in a temp
# folder (child processes inherit it), never the user's ~/.config/agentlab/key.
os.environ.setdefault("AGENTLAB_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="agentlab-key-"), "key"))

# Runs written by others, vendored with their licences (sample_traces/README.md). Tests read
# them from inside the repository only; missing data is a failure, never a skip.
THIRD_PARTY = Path(__file__).resolve().parents[1] / "sample_traces" / "third_party"

PG_URL = os.environ.get("AGENTLAB_TEST_PG_URL")
PG_SKIP = (
    "PostgreSQL tests are off: set AGENTLAB_TEST_PG_URL="
    "postgresql://postgres@127.0.0.1:5432/test to run them (make test does)"
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def drop_pg_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from agentlab.store import normalise_url

    assert PG_URL is not None
    eng = create_engine(normalise_url(PG_URL), poolclass=NullPool)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) for the parametrized backend; the schema is dropped afterwards."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield str(tmp_path / "agentlab.db"), None
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield PG_URL, schema
    finally:
        drop_pg_schema(schema)


def _opened(store_url: tuple[str, str | None]) -> Iterator[SqlStore]:
    url, schema = store_url
    s = open_store(url, schema=schema)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def store(store_url: tuple[str, str | None]) -> Iterator[SqlStore]:
    yield from _opened(store_url)


@pytest.fixture
def second_store(store_url: tuple[str, str | None]) -> Iterator[SqlStore]:
    """Another store object on the data of ``store``: another process, as far as what a
    store keeps in memory goes."""
    yield from _opened(store_url)


@pytest.fixture
def store_cli_url(store_url: tuple[str, str | None]) -> str:
    """The parametrized store as one URL, for the CLI or a child process (a PostgreSQL
    schema goes on the connection's search path)."""
    url, schema = store_url
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def child_store(store_cli_url: str, store: SqlStore) -> tuple[str, SqlStore]:
    """The URL child processes open, and the test's own store on the same data."""
    return store_cli_url, store


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment of a child process that imports the agentlab this test imports (a
    checkout's, not another installed one)."""
    here = str(Path(agentlab.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [here, *filter(None, [os.environ.get("PYTHONPATH")])])}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``store`` or ``store_url`` runs on each backend (unless marked
    ``sqlite_only``)."""
    if "store_url" in metafunc.fixturenames:
        sqlite_only = any(m.name == "sqlite_only" for m in metafunc.definition.iter_markers())
        metafunc.parametrize("store_url", BACKENDS[:1] if sqlite_only else BACKENDS,
                             indirect=True)


@pytest.fixture(scope="session")
def third_party() -> Path:
    """The folder of vendored third-party runs (sample_traces/third_party)."""
    assert THIRD_PARTY.is_dir(), f"{THIRD_PARTY} is missing: the repository is incomplete"
    return THIRD_PARTY


@pytest.fixture(scope="session")
def airline_subset(third_party: Path) -> Path:
    """48 tau-bench airline runs (12 tasks x 4 trials), gzipped JSON as vendored."""
    return third_party / "tau-bench" / "gpt-4o-airline.subset.json.gz"


# A skip hides coverage. Only two may happen, each for something outside the repository that
# its message says how to provide: the PostgreSQL URL, and Debian's Chromium for the browser
# tests (which `.ci/run` installs). Any other skip (missing data, a missing extra) fails.
ALLOWED_SKIPS = ("AGENTLAB_TEST_PG_URL", "Debian Chromium is not at")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not any(allowed in reason for allowed in ALLOWED_SKIPS):
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} skipped ({reason}); only the PostgreSQL and "
                               "browser tests may skip: provide what it needs instead")
