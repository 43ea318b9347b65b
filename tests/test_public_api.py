"""The public surface: pinned exports, help and docs for every command, the shipped schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentlab
from agentlab.model import portable_json_schema

ROOT = Path(__file__).resolve().parents[1]


def test_facade_exports_are_pinned_and_sorted() -> None:
    # Sorted as ruff's RUF022 sorts: CONSTANTS, then Classes, then functions.
    def style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert agentlab.__all__ == sorted(agentlab.__all__, key=style)
    assert set(agentlab.__all__) == {
        "AgentlabError", "ConfigError", "ImportFormatError", "IntegrityError",
        "PayloadTooLargeError", "PortabilityError", "RecordingError", "RunFilter",
        "RunNotFoundError", "RunRecorder", "RunState", "RunStore", "SchemaError", "SqlStore",
        "StoreBusyError", "StoreError", "__version__", "current_run", "open_store",
        "record_run", "set_prices", "step", "tool",
        # governance
        "ApprovalError", "ApprovalManager", "ApprovalNotFoundError", "ApprovalRequest",
        "Credential", "GovernanceError", "Grant", "GrantError", "Policy", "Rule",
        "SecretError", "ToolDeniedError", "announce", "auto_approve", "credential",
        "issue_grant", "lint_grants", "revoke_grant", "add_approver", "revoke_approver",
        # recovery
        "NOT_APPLIED", "Agent", "Compensation", "ModelReply", "RecoveryError",
        "ReplayDivergence", "ReplayedError", "ResumeBlockedError", "agent", "fork", "llm",
        "replay", "resume", "rollback",
        # explanation
        "expect", "message",
    }
    for name in agentlab.__all__:
        assert hasattr(agentlab, name), name
    import agentlab.errors as errors

    public_errors = set(errors.__all__) & set(agentlab.__all__)
    assert set(agentlab._LAZY) | public_errors | {"__version__"} == set(agentlab.__all__)


def test_import_agentlab_loads_no_heavy_dependency() -> None:
    """`import agentlab` is the root only: its public names load their modules on first use,
    so a script that imports it to read a version or an error class pays milliseconds."""
    code = ("import sys, agentlab\n"
            "heavy = ('sqlalchemy', 'pydantic', 'orjson', 'agentlab.record', 'agentlab.store',"
            " 'agentlab.analysis', 'agentlab.display', 'IPython')\n"
            "print(','.join(m for m in heavy if m in sys.modules))\n"
            "agentlab.replay, agentlab.RunFilter\n"
            "print('agentlab.recovery' in sys.modules, 'sqlalchemy' in sys.modules)\n"
            "from agentlab import *\n"
            "g = globals()\n"
            "print(sorted(n for n in agentlab.__all__ if n not in g))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.splitlines()
    assert out == ["", "True True", "[]"], out
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        agentlab.nope  # noqa: B018


def test_every_error_derives_from_the_root() -> None:
    import agentlab.errors as errors

    classes = [getattr(errors, name) for name in errors.__all__]
    warnings = [c for c in classes if issubclass(c, Warning)]
    raised = [c for c in classes if not issubclass(c, Warning)]
    assert errors.NewStoreWarning in warnings
    for cls in raised:
        assert issubclass(cls, errors.AgentlabError), cls
    # a warning is shown, never raised as an agentlab error: `except AgentlabError` must not
    # swallow a warning turned into an exception by -W error
    for cls in warnings:
        assert issubclass(cls, UserWarning) and not issubclass(cls, errors.AgentlabError), cls


def test_shipped_schema_matches_the_models() -> None:
    shipped = json.loads((ROOT / "agentlab/model/portable.schema.json").read_text())
    assert shipped == json.loads(json.dumps(portable_json_schema())), (
        "regenerate with: agentlab schema -o agentlab/model/portable.schema.json"
    )
