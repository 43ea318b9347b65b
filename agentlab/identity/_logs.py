"""agentlab's own loggers, each scrubbing secrets from what it logs.

A filter on the logger that makes a record runs before any handler sees it, so every
message agentlab logs (an exception text with a token in it, say) is scrubbed whatever
handlers the application configures.
"""

from __future__ import annotations

import logging

from agentlab.identity._redact import ScrubbedLogFilter

__all__ = ["scrubbed_logger"]


def scrubbed_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the secret-scrubbing filter attached (once)."""
    log = logging.getLogger(name)
    if not any(isinstance(f, ScrubbedLogFilter) for f in log.filters):
        log.addFilter(ScrubbedLogFilter())
    return log
