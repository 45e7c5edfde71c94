"""Structured logs: one JSON object per line, for log shippers. Only what the service chooses to
put in a record is written: messages never interpolate request bodies, so no patient value, age or
identifier can reach a log line (tests/test_observability.py checks this on real requests)."""
from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, UTC

import orjson
from typing import Any
from collections.abc import Iterable

# Attributes every LogRecord has; anything else on a record was passed as `extra` and is written.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def entry(created: float, level: str, logger: str, message: str, fields: Iterable[tuple[str, Any]] = ()) -> bytes:
    """One log line's JSON: {"ts", "level", "logger", "pid", "message", ...fields}. The request log
    (service/ops/per_request.py) writes it without a LogRecord; every other line comes through
    JsonFormatter."""
    line: dict[str, Any] = {"ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
                            "level": level, "logger": logger, "pid": os.getpid(), "message": message}
    line.update(fields)
    return orjson.dumps(line, default=str)


class JsonFormatter(logging.Formatter):
    """`entry` of a LogRecord, with its `extra` fields; exceptions by type only."""

    def format(self, record: logging.LogRecord) -> str:
        fields = [(k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")]
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception's text or traceback locals may quote a patient value.
            fields.append(("exception", record.exc_info[0].__name__))
        return entry(record.created, record.levelname.lower(), record.name, record.getMessage(), fields).decode()


def log_level() -> str:
    """LABINTERP_LOG_LEVEL (debug, info, warning, error); info by default."""
    level = os.environ.get("LABINTERP_LOG_LEVEL", "info").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"LABINTERP_LOG_LEVEL must be debug, info, warning or error, not {level.lower()!r}")
    return level


def configure(logger: logging.Logger) -> None:
    """One JSON handler on stderr for the service's logger (gunicorn configures only its own)."""
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(log_level())
