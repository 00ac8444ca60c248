"""Structured logs: one JSON line per request (never the payload), and JSON for other records.

The access log is the one record every request writes, so when it would end up, unfiltered, in
the JSON handler `configure_logging` installs (the production setup), `log_request` writes that
handler's line itself: the same JSON, under the handler's lock, without building a LogRecord.
Any other setup (a test's capture handler, filters, extra handlers) takes the ordinary logging
path, record and all.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("serving.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


def request_id(sent: str) -> str:
    """The client's X-Request-ID if it is a sane token, else a fresh random one."""
    return sent if REQUEST_ID.match(sent) else os.urandom(16).hex()


INFO = logging.INFO


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


class JsonLineHandler(logging.StreamHandler):
    """A StreamHandler with the JsonFormatter, that can also write an access line directly."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.setFormatter(JsonFormatter())

    def write_access(self, fields: dict[str, Any]) -> None:
        """What `emit` writes for ACCESS.info("request", extra={"fields": fields})."""
        line: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": "info",
            "logger": ACCESS.name,
            "message": "request",
        }
        line.update(fields)
        text = orjson.dumps(line, default=str).decode() + self.terminator
        self.acquire()
        try:
            self.stream.write(text)
            self.flush()
        except Exception:
            self.handleError(ACCESS.makeRecord(ACCESS.name, INFO, "", 0, "request", (), None))
        finally:
            self.release()


# Libraries whose own lines could carry a request's content (MLflow's schema enforcement names
# the client's extra columns): only their errors reach the log.
QUIET = ("mlflow",)


def configure_logging(level: str = "info") -> None:
    """Every line this process writes is one JSON object on stderr (called by the CLIs and each
    worker, never at import): our loggers at `level`, any other library's warnings and errors,
    Python warnings, and uncaught exceptions in any thread."""
    handler = JsonLineHandler(sys.stderr)
    logger = logging.getLogger("serving")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [JsonLineHandler(sys.stderr)]
    root.setLevel(logging.WARNING)
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"  # MLflow must not add its own handler
    for name in QUIET:
        quiet = logging.getLogger(name)
        quiet.handlers.clear()
        quiet.setLevel(logging.ERROR)
        quiet.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value, args.exc_traceback, args.thread
    )


def _log_uncaught(kind: Any, value: Any, trace: Any, thread: Any = None) -> None:
    where = f" in thread {thread.name}" if thread is not None else ""
    logging.getLogger("serving.uncaught").critical(
        f"uncaught {getattr(kind, '__name__', kind)}{where}", exc_info=(kind, value, trace)
    )


def _direct_handler() -> JsonLineHandler | None:
    """The handler an access record would reach, alone and unfiltered, if it is ours."""
    if ACCESS.disabled or ACCESS.handlers or ACCESS.filters or not ACCESS.propagate:
        return None
    parent = ACCESS.parent
    if parent is None or parent.propagate or len(parent.handlers) != 1:
        return None
    handler = parent.handlers[0]
    if type(handler) is not JsonLineHandler or handler.filters or handler.level > INFO:
        return None
    return handler


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
    if not ACCESS.isEnabledFor(INFO):
        return
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
    handler = _direct_handler()
    if handler is None:
        ACCESS.info("request", extra={"fields": fields})
    else:
        handler.write_access(fields)
