"""Log formats: text (the default, for `make serve`) or one JSON object per line
(IRIS_LOG_FORMAT=json), for a log platform.

A JSON line has `time` (UTC, ISO 8601), `level`, `logger`, `message`, and when the line is about
a call its `hookInstance`, `service`, `status` and `duration_ms` (`cds_hooks.http` passes them
as the record's extras), and `trace_id` inside a traced call. The redacting filter
(`cds_hooks.logs`) runs before either format; the code never logs a token, a patient id or a
name in the first place.
"""

import datetime
import logging
from typing import Any

import orjson

from iris_prompt.ops.tracing import trace_id

__all__ = ["CALL_FIELDS", "JsonFormatter", "logging_config"]

CALL_FIELDS = ("hookInstance", "service", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CALL_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        current = trace_id()
        if current is not None:
            line["trace_id"] = current
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """One stderr handler for everything (uvicorn included), scrubbing tokens on the way out."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "cds_hooks.logs.RedactingFilter"}},
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "iris_prompt.ops.logs.JsonFormatter"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
