"""POST /predict's common case, answered below Flask.

Flask's request and response objects, contexts, routing and hooks cost about as much per request
as the model itself on the fast path. `PredictLane` wraps the app's WSGI callable: a POST
/predict with no query string, a plain JSON content type, a plain Content-Length within the
limit, a body that parses into a batch, and a loaded model is answered here with the same answer
(serving.rest.answers), headers, access-log line and metrics (serving.rest.hooks.account) that
Flask's view would give it. Anything else (another path, a query string such as `?proba=true`,
chunked bodies, no model yet, any parse error) goes to Flask, with the body already read put
back: every error answer is Flask's own, from one code path.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson

from serving.contract import parse_batch
from serving.deadline import RequestTimeout, deadline
from serving.errors import ApiError
from serving.metrics import Recorder, show_model
from serving.request_log import request_id
from serving.rest.answers import answer_headers, predict_answer
from serving.rest.hooks import account
from serving.rest.limits import timeout_error
from serving.rest.requests import PLAIN_JSON_HEADERS
from serving.store import ModelStore

PATH = "/predict"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PredictLane:
    def __init__(
        self,
        app: WSGIApp,
        store: ModelStore,
        recorder: Recorder,
        max_rows: int,
        max_body_bytes: int,
        request_timeout: float,
    ):
        self.app, self.store, self.recorder = app, store, recorder
        self.max_rows, self.max_body_bytes = max_rows, max_body_bytes
        self.request_timeout = request_timeout

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("CONTENT_TYPE", "") not in PLAIN_JSON_HEADERS
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return self.app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        model = self.store.current
        if not length.isdigit() or not 0 < int(length) <= self.max_body_bytes or model is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        raw = environ["wsgi.input"].read(int(length))
        try:
            batch = parse_batch(orjson.loads(raw), model.spec, self.max_rows)
        except (orjson.JSONDecodeError, ApiError):
            return self._to_flask(environ, start_response, raw)
        show_model(model.info)
        version = model.info.version
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        try:
            with deadline(self.request_timeout):
                labels, _ = model.predict(batch.rows)
        except RequestTimeout:
            error = timeout_error(self.request_timeout)
            return self._answer(
                start_response, error.status, error.body(), rid, version, started, error.code
            )
        answer = predict_answer(labels, batch.index, version)
        return self._answer(start_response, 200, answer, rid, version, started, None, labels)

    def _to_flask(self, environ: dict[str, Any], start_response: Any, raw: bytes) -> Any:
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        return self.app(environ, start_response)

    def _answer(
        self,
        start_response: Callable[..., Any],
        status: int,
        payload: dict[str, Any],
        rid: str,
        version: str | None,
        started: float,
        error: str | None,
        labels: list[int] | None = None,
    ) -> list[bytes]:
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *answer_headers(rid, version),
        ]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        account(
            self.recorder,
            endpoint=PATH,
            method="POST",
            path=PATH,
            status=status,
            started=started,
            rid=rid,
            version=version,
            rows=len(labels) if labels is not None else None,  # None unless answered 200
            error=error,
            predicted=labels,
        )
        return [body]
