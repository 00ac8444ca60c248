"""The one error shape every 4xx/5xx answer has, and the handlers that guarantee it.

    {"error": {"code": "missing_column", "message": "required column 'Sex' is missing", ...}}

`code` is a stable machine-readable name, `message` names the problem for a human, and optional
extra keys (`column`, `row`, `limit`, ...) locate it. No answer ever carries a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger("serving.errors")

# werkzeug's HTTP errors -> our codes (anything else: its name in snake_case)
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


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


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None):
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def error_response(
    code: str, message: str, status: int, headers: dict[str, str] | None = None, **details: Any
) -> Response:
    return json_response({"error": {"code": code, "message": message, **details}}, status, headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return json_response(exc.body(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        headers = dict(exc.get_headers())  # keeps Allow on a 405
        headers.pop("Content-Type", None)
        details: dict[str, Any] = {}
        if status == 405 and "Allow" in headers:
            details["allowed"] = [m.strip() for m in headers["Allow"].split(",")]
        if status == 413 and app.config.get("MAX_CONTENT_LENGTH"):
            details["limit_bytes"] = app.config["MAX_CONTENT_LENGTH"]
        message = exc.description or exc.name
        return error_response(code, message, status, headers, **details)

    @app.errorhandler(Exception)
    def _bug(exc: Exception):
        # Only genuine bugs land here: the trace goes to the server log, never to the client.
        log.exception("unhandled error while serving a request")
        return error_response("internal_error", "internal server error; see the server log", 500)
