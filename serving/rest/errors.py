"""JSON answers, and the Flask handlers that give every 4xx/5xx its protocol's error shape.

Whatever goes wrong in a request (an `ApiError` we raised, one of Werkzeug's HTTP errors, a bug)
leaves as an `ApiError` in the shape of the path's protocol (serving.rest.dialects): ours,
`{"error": {"code": ..., "message": ..., ...}}` (see serving.errors), MLflow's on /invocations,
the Open Inference Protocol's under /v2. A bug's trace goes to the server log, never to the
client. The error's code is kept in `g.error_code` for the access log.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from serving.errors import ApiError
from serving.rest.dialects import error_answer
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


def api_error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    """`error` in the shape of the request's protocol; its code noted for the access log."""
    g.error_code = error.code
    status, payload = error_answer(error, request.path)
    return json_response(payload, status, headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return api_error_response(exc)

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
            limit = app.config["MAX_CONTENT_LENGTH"]
            return api_error_response(body_too_large_error(limit), headers)
        return api_error_response(ApiError(code, message, status, **details), headers)

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:
        # Only genuine bugs land here: the trace goes to the server log, never to the client.
        log.exception("unhandled error while serving a request")
        error = ApiError("internal_error", "internal server error; see the server log", 500)
        return api_error_response(error)
