"""The errors a request gets for breaking one of the server's limits, each naming the limit and
the flag (and environment variable) that sets it."""

from __future__ import annotations

import logging

from serving.errors import ApiError

log = logging.getLogger("serving.rest.limits")


def timeout_error(seconds: float) -> ApiError:
    """504: the request's work took longer than --request-timeout (logged as a warning)."""
    log.warning("request exceeded its time limit of %s s", seconds)
    return ApiError(
        "timeout",
        f"the request took longer than the server's limit of {seconds} s "
        "(--request-timeout, SERVING_REQUEST_TIMEOUT)",
        status=504,
        limit_seconds=seconds,
    )


def body_timeout_error(seconds: float) -> ApiError:
    """408: the client did not send its whole body within --body-timeout."""
    return ApiError(
        "body_timeout",
        f"the request body did not arrive within {seconds} s "
        "(--body-timeout, SERVING_BODY_TIMEOUT)",
        status=408,
        limit_seconds=seconds,
    )


def body_too_large_error(limit: int) -> ApiError:
    """413: the body is larger than --max-body-bytes."""
    return ApiError(
        "payload_too_large",
        f"the request body is larger than the server's limit of {limit} bytes "
        "(--max-body-bytes, SERVING_MAX_BODY_BYTES)",
        status=413,
        limit_bytes=limit,
    )
