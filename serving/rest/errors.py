"""JSON answers, and the Flask handlers that give every 4xx/5xx the one error shape.

Whatever goes wrong in a request (an `ApiError` we raised, one of Werkzeug's HTTP errors, a bug)
leaves as `{"error": {"code": ..., "message": ..., ...}}` (see serving.errors); a bug's trace goes
to the server log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from serving.errors import ApiError
from serving.rest.limits import body_too_large_error

log = logging.getLogger("serving.rest.errors")

# werkzeug's HTTP errors -> our codes (anything else: its name in snake_case)
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
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
    def _api_error(exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        headers = dict(exc.get_headers())  # keeps Allow on a 405
        headers.pop("Content-Type", None)
        details: dict[str, Any] = {}
        if status == 405 and "Allow" in headers:
            details["allowed"] = [m.strip() for m in headers["Allow"].split(",")]
        message = exc.description or exc.name
        if status == 413 and app.config.get("MAX_CONTENT_LENGTH"):
            error = body_too_large_error(app.config["MAX_CONTENT_LENGTH"])
            return json_response(error.body(), 413, headers)
        return error_response(code, message, status, headers, **details)

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:
        # Only genuine bugs land here: the trace goes to the server log, never to the client.
        log.exception("unhandled error while serving a request")
        return error_response("internal_error", "internal server error; see the server log", 500)
