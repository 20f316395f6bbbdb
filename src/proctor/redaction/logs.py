"""Log records redacted before any handler writes them.

Attach :class:`RedactingFilter` to a handler (the CLI and ``proctor serve`` attach it to
theirs): a filter on a handler sees every record that handler writes, from any logger,
which a filter on one logger would not (records of its children skip it).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from proctor.redaction.redactor import Redactor


class RedactingFilter(logging.Filter):
    """Replaces a record's message with its redacted text; never drops a record."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or Redactor({}, key=b"")

    def filter(self, record: logging.LogRecord) -> bool:
        # Message and arguments each, so formatters that read the arguments (uvicorn's
        # access log does) keep working.
        text = self._redactor.text
        if isinstance(record.msg, str):
            record.msg = text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Exception text often quotes the values that failed: format it now, redacted.
            record.exc_text = self._redactor.text(
                logging.Formatter().formatException(record.exc_info)
            )
        elif record.exc_text:
            record.exc_text = self._redactor.text(record.exc_text)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with every handler redacting, and proctor's own
    records (``proctor.*``) written by the same handler."""
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": f"{__name__}.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["loggers"]["proctor"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def install(handler: logging.Handler, redactor: Redactor | None = None) -> None:
    """Redact every record ``handler`` writes (idempotent)."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter(redactor))
