"""The request time limit on the prediction views: past it the answer is a 504 JSON error.

The timer itself (SIGALRM on the worker's main thread, held back inside ONNX Runtime's run) is
serving.deadline; this module wraps Flask views in it and names the error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from serving.deadline import RequestTimeout, deadline
from serving.errors import ApiError

log = logging.getLogger("serving.rest.limits")


def timeout_error(seconds: float) -> ApiError:
    """The 504 a request over its time limit gets (logged as a warning)."""
    log.warning("request exceeded its time limit of %s s", seconds)
    return ApiError(
        "timeout",
        f"the request took longer than the server's limit of {seconds} s",
        status=504,
        limit_seconds=seconds,
    )


def time_limited(view: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        try:
            with deadline(seconds):
                return view(*args, **kwargs)
        except RequestTimeout:
            raise timeout_error(seconds) from None

    return limited


def limit_request_time(app: Flask, seconds: float, endpoints: Iterable[str]) -> None:
    """Wrap the named endpoints' views (already registered on `app`) in the time limit."""
    if seconds <= 0:
        return
    for endpoint in endpoints:
        app.view_functions[endpoint] = time_limited(app.view_functions[endpoint], seconds)
