"""Log records without secrets: a filter for any handler, and agentlab's own loggers.

A filter on the logger that makes a record runs before any handler sees it, so every
message agentlab logs (an exception text with a token in it, say) is scrubbed whatever
handlers the application configures.
"""

from __future__ import annotations

import logging

from agentlab.identity._patterns import _ERROR_MARK
from agentlab.identity._redact import Redactor, default_redactor

__all__ = ["ScrubbedLogFilter", "scrubbed_logger"]


def scrubbed_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the secret-scrubbing filter attached (once)."""
    log = logging.getLogger(name)
    if not any(isinstance(f, ScrubbedLogFilter) for f in log.filters):
        log.addFilter(ScrubbedLogFilter())
    return log


class ScrubbedLogFilter(logging.Filter):
    """Scrubs a log record's message, arguments and traceback, so no log line carries a
    secret. Never drops a record. Attach it to handlers: a logger's filters do not see
    records propagated from its children.

    >>> logging.getLogger().handlers[0].addFilter(ScrubbedLogFilter())  # doctest: +SKIP
    """

    def __init__(self, *, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self._redactor if self._redactor is not None else default_redactor()
        try:
            _scrub_record(r, record)
        except Exception:
            record.msg, record.args = _ERROR_MARK, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _scrub_record(r: Redactor, record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
        formatted = True
    except Exception:  # a bad format string: logging would print msg and args raw
        message, formatted = f"{record.msg} {record.args!r}", False
    scrubbed = r.scrub_text(message)
    if scrubbed != message or not formatted:
        record.msg, record.args = scrubbed, None
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text when it is set, so format the traceback once, here.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        text = r.scrub_text(record.exc_text)
        if text != record.exc_text:
            # Handlers that render exc_info themselves would show the secret again.
            record.exc_text, record.exc_info = text, None
    if record.stack_info:
        record.stack_info = r.scrub_text(record.stack_info)
