"""agentlab's own log lines never carry a secret the process has resolved."""

from __future__ import annotations

import logging

import pytest

from agentlab.identity import default_redactor, scrubbed_logger


def test_agentlab_loggers_scrub_what_they_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "tok-3f9a7c1e2d4b6a8f"
    default_redactor().add_secret(secret)
    log = scrubbed_logger("agentlab.record")
    assert scrubbed_logger("agentlab.record") is log and len(log.filters) == 1
    with caplog.at_level(logging.WARNING, logger="agentlab"):
        log.warning("commit failed (%s); queued", f"auth {secret} refused")
        try:
            raise ConnectionError(f"Bearer {secret}")
        except ConnectionError:
            log.exception("writer error")
    text = caplog.text
    assert "commit failed" in text and "writer error" in text
    assert secret not in text
    assert "[REDACTED" in text
