"""A time limit on a request's work: past it the request is answered 504, not left hanging.

Under gunicorn's sync workers each request runs on the worker's main thread, so a SIGALRM timer
(`setitimer`) can interrupt it: the handler raises `RequestTimeout` at the next Python bytecode
(a C call such as one ONNX run finishes first). `RequestTimeout` is a BaseException so that the
model code's `except Exception` cannot swallow it; the web layer (serving.rest.limits) turns
it into the JSON error `{"error": {"code": "timeout", ...}}` with status 504. Off the main
thread (gthread workers) no signal can reach the request: there gunicorn's own, larger
`timeout` is the only limit.

A limit that passes inside `shielded()` (ONNX Runtime's run) is raised when that block ends:
ONNX Runtime calls back into Python while it converts string inputs, and a Python exception
raised there by the handler crashes the whole process (SIGSEGV), not just the request.

The SIGALRM handler is installed once per process, on the first armed request (installing one
costs more than the rest of the limit together); each request then only starts and stops the
timer. The handler raises only while a limit is armed; any other SIGALRM goes to the Python
handler it replaced, if any, and is otherwise ignored (a timer that fires just as its request
ends must not kill the worker).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_MAIN = threading.main_thread()
# The armed limit (seconds) while a request runs under one, the handler ours replaced, how deep
# in shielded() blocks the request is, and whether its limit passed inside one.
_state: dict[str, Any] = {
    "armed": None,
    "installed": False,
    "previous": None,
    "shielded": 0,
    "pending": False,
}


class RequestTimeout(BaseException):
    """The request's time limit passed."""


def _expired(signum: int, frame: Any) -> None:
    seconds = _state["armed"]
    if seconds is not None:
        if _state["shielded"]:
            _state["pending"] = True  # raised as the shielded block ends
            return
        raise RequestTimeout(seconds)
    previous = _state["previous"]  # not ours: a Python handler we replaced gets it
    if callable(previous):
        previous(signum, frame)


def _arm(seconds: float) -> bool:
    """Start the timer (main thread only); False if no signal can reach this thread."""
    if seconds <= 0 or threading.current_thread() is not _MAIN:
        return False
    if not _state["installed"]:
        _state["previous"] = signal.signal(signal.SIGALRM, _expired)
        _state["installed"] = True
    _state["armed"], _state["pending"] = seconds, False
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    _state["armed"], _state["pending"] = None, False  # a signal on its way is ignored now


class _Shield:
    """Hold back a passing limit until the block ends (see the module's docstring). Only the
    main thread counts: the signal is handled there, and other threads must not race on it."""

    def __enter__(self) -> None:
        if threading.get_ident() == _MAIN.ident:
            _state["shielded"] += 1

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if threading.get_ident() != _MAIN.ident:
            return
        _state["shielded"] -= 1
        if kind is None and not _state["shielded"] and _state["pending"]:
            _state["pending"] = False
            if _state["armed"] is not None:
                raise RequestTimeout(_state["armed"])


def shielded() -> _Shield:
    """A block that a request's limit cannot interrupt; a limit that passed in it is raised
    as it ends. For native calls that must not see a Python exception (ONNX Runtime's run)."""
    return _SHIELD


_SHIELD = _Shield()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise RequestTimeout in the block if it runs longer than `seconds` (main thread only)."""
    if not _arm(seconds):
        yield
        return
    try:
        yield
    finally:
        _disarm()
