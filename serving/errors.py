"""The one error a request can be answered with, and how a failure is named in one line.

    {"error": {"code": "missing_column", "message": "required column 'Sex' is missing", ...}}

`ApiError` carries that answer: a stable machine-readable `code`, a `message` that names the
problem for a human, optional details (`column`, `row`, `limit_rows`, ...) that locate it, and
the HTTP status. No answer ever carries a stack trace. This module imports no web framework:
the model, the contract and the batch engines raise `ApiError`, and `serving.rest` renders it.
"""

from __future__ import annotations

from typing import Any

MAX_REASON = 500  # characters of an exception message kept in a reason or a refusal


class ApiError(Exception):
    """A client error we detected: HTTP status, stable code, message and location details."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


def describe_error(exc: BaseException) -> str:
    """`Type: message`, cut to MAX_REASON characters: what refusals and reasons report."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."
