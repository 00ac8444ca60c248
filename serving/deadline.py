"""A time limit on a request's work: past it the request is answered 504, not left hanging.

Under gunicorn's sync workers each request runs on the worker's main thread, so a SIGALRM timer
(`setitimer`) can interrupt it: the handler raises `RequestTimeout` at the next Python bytecode
(a C call such as one ONNX run finishes first). `RequestTimeout` is a BaseException so that the
model code's `except Exception` cannot swallow it; the view wrapper turns it into the JSON error
`{"error": {"code": "timeout", ...}}` with status 504. Off the main thread (gthread workers) no
signal can reach the request: there gunicorn's own, larger `timeout` is the only limit.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from serving.errors import ApiError

log = logging.getLogger("serving.deadline")


class RequestTimeout(BaseException):
    """The request's time limit passed."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise RequestTimeout in the block if it runs longer than `seconds` (main thread only)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise RequestTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def time_limited(view: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        try:
            with deadline(seconds):
                return view(*args, **kwargs)
        except RequestTimeout:
            log.warning("request exceeded its time limit of %s s", seconds)
            raise ApiError(
                "timeout",
                f"the request took longer than the server's limit of {seconds} s",
                status=504,
                limit_seconds=seconds,
            ) from None

    return limited


def limit_request_time(app: Flask, seconds: float, endpoints: Iterable[str]) -> None:
    """Wrap the named endpoints' views (already registered on `app`) in the time limit."""
    if seconds <= 0:
        return
    for endpoint in endpoints:
        app.view_functions[endpoint] = time_limited(app.view_functions[endpoint], seconds)
