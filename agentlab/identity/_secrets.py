"""Where a grant's secret comes from, resolved at call time and never stored.

A grant records a *reference* (``env:JIRA_TOKEN``, ``file:/run/secrets/jira``); a running
agent may instead supply a callable (a vault client). Every resolved secret is added to the
process's redactor before it is returned, so it cannot reach the store, a log or an export.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from agentlab.errors import SecretError
from agentlab.identity._redact import default_redactor

__all__ = ["SecretSource", "describe_source", "resolve_secret"]

SecretSource = str | Callable[[], str]
"""``"env:NAME"``, ``"file:PATH"``, or a function returning the secret."""


def describe_source(source: SecretSource | None) -> str | None:
    """What may be stored about a source: the reference, or 'callable'."""
    if source is None:
        return None
    if callable(source):
        return "callable"
    _check_reference(source)
    return source


def _check_reference(ref: str) -> None:
    if not ref.startswith(("env:", "file:")) or len(ref.split(":", 1)[1]) == 0:
        raise SecretError(
            f"secret reference {ref[:12]!r}... is not 'env:NAME' or 'file:PATH'; pass a "
            "callable for other sources (never the secret itself)"
        )


def resolve_secret(source: SecretSource) -> str:
    """The secret now. Raises SecretError (without the value) when it cannot be had."""
    if callable(source):
        try:
            value = source()
        except Exception as exc:
            raise SecretError(
                f"the secret callable raised {type(exc).__name__}; check the credential source"
            ) from None
        where = "the secret callable"
    else:
        _check_reference(source)
        kind, _, name = source.partition(":")
        if kind == "env":
            value = os.environ.get(name)  # type: ignore[assignment]
            if value is None:
                raise SecretError(f"environment variable {name} is not set (secret {source})")
        else:
            try:
                value = Path(name).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretError(f"cannot read secret file {name}: {exc.strerror}") from None
        where = source
    if not isinstance(value, str) or not value:
        raise SecretError(f"{where} gave an empty or non-string secret")
    try:
        default_redactor().add_secret(value)
    except ValueError:
        raise SecretError(
            f"{where} gave a secret too short to redact safely; real credentials are longer"
        ) from None
    return value
