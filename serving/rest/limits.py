"""The errors a request gets for breaking one of the server's limits, each naming the limit and
the flag (and environment variable) that sets it."""

from __future__ import annotations

import logging
from typing import Any

from serving.config import named
from serving.errors import ApiError

log = logging.getLogger("serving.rest.limits")


def _limit_error(code: str, status: int, broken: str, setting: str, **details: Any) -> ApiError:
    return ApiError(code, f"{broken} ({named(setting)})", status=status, **details)


def timeout_error(seconds: float) -> ApiError:
    """504: the request's work took longer than --request-timeout (logged as a warning)."""
    log.warning("request exceeded its time limit of %s s", seconds)
    broken = f"the request took longer than the server's limit of {seconds} s"
    return _limit_error("timeout", 504, broken, "request_timeout", limit_seconds=seconds)


def body_timeout_error(seconds: float) -> ApiError:
    """408: the client did not send its whole body within --body-timeout."""
    broken = f"the request body did not arrive within {seconds} s"
    return _limit_error("body_timeout", 408, broken, "body_timeout", limit_seconds=seconds)


def body_too_large_error(limit: int) -> ApiError:
    """413: the body is larger than --max-body-bytes."""
    broken = f"the request body is larger than the server's limit of {limit} bytes"
    return _limit_error("payload_too_large", 413, broken, "max_body_bytes", limit_bytes=limit)
