"""Structured logs: one JSON line per request (never the payload), and JSON for other records."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("serving.access")


class JsonFormatter(logging.Formatter):
    """A record -> one JSON object; `extra={"fields": {...}}` adds keys to it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["trace"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "info") -> None:
    """Our loggers write JSON lines to stderr (called by the CLI, not at import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("serving")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def log_request(
    *,
    method: str,
    path: str,
    status: int,
    started: float,
    request_id: str,
    model_version: str | None,
    rows: int | None = None,
    error: str | None = None,
) -> None:
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "model_version": model_version,
        "request_id": request_id,
    }
    if rows is not None:
        fields["rows"] = rows
    if error is not None:
        fields["error"] = error
    ACCESS.info("request", extra={"fields": fields})
