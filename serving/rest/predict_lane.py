"""POST /predict's common case, and the V2 infer request's (POST /v2/models/{name}/infer, JSON
tensors), answered below Flask.

Flask's request and response objects, contexts, routing and hooks cost about as much per request
as the model itself on the fast path. `PredictLane.answer` takes a POST /predict that has no
query string, a plain JSON content type and a complete body of at most `max_body_bytes` (and
optionally the X-Model-Alias header of a served alias); if the body parses into a batch and a
model is loaded, it answers it with the same answer
(serving.rest.answers), headers, access-log line and metrics (serving.rest.hooks.account) that
Flask's view would give it. Anything else (another path, a query string such as `?proba=true`,
no model yet, any parse error) returns None, and the caller hands the request to Flask with its
body: every error answer is Flask's own, from one code path.

The ASGI front (serving.rest.asgi) calls it once it has the whole body; `WsgiLane` puts it in
front of the Flask app for a WSGI server.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from serving.contract import parse_batch
from serving.errors import ApiError
from serving.evidence.hook import observe
from serving.metrics import Recorder, show_model
from serving.request_log import request_id
from serving.rest.answers import answer_headers, predict_answer
from serving.rest.hooks import account
from serving.rest.requests import PLAIN_JSON_HEADERS
from serving.rest.v2 import INFER_RULE
from serving.stores import Stores
from serving.v2.infer import infer, served_name

PATH = "/predict"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Answer:
    """A prediction answer, and what its access-log line and metrics record."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str
    version: str | None
    labels: list[int]
    stages: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # decode..encode, seconds
    endpoint: str = PATH
    path: str = PATH


class PredictLane:
    def __init__(self, stores: Stores, recorder: Recorder, max_rows: int, max_body_bytes: int):
        self.stores, self.recorder = stores, recorder
        self.max_rows, self.max_body_bytes = max_rows, max_body_bytes

    def takes(self, method: str, path: str, query: str | bytes, content_type: str) -> bool:
        """Is this request's head one the lane may answer (the body decides the rest)?"""
        return (
            method == "POST"
            and not query
            and content_type in PLAIN_JSON_HEADERS
            and self.stores.default.current is not None
            and (path == PATH or path == self.v2_path())
        )

    def v2_path(self) -> str:
        """The V2 infer path of the default model (a version path goes to Flask)."""
        return f"/v2/models/{served_name(self.stores)}/infer"

    def answer(
        self, raw: bytes, sent_request_id: str, alias: str | None = None, path: str = PATH
    ) -> Answer | None:
        """The answer to a body the lane takes, or None: Flask answers it."""
        if path != PATH:
            return self._v2(raw, sent_request_id, path)
        try:
            store = self.stores.by_alias(alias)
        except ApiError:
            return None
        model = store.current
        if model is None or not 0 < len(raw) <= self.max_body_bytes:
            return None
        began = time.perf_counter()
        try:
            body = orjson.loads(raw)
            decoded = time.perf_counter()
            batch = parse_batch(body, model.spec, self.max_rows)
        except (orjson.JSONDecodeError, ApiError):
            return None
        if not batch.rows:  # Flask gives the error answer
            return None
        if batch.unknown:
            self.recorder.out_of_domain(PATH, batch.unknown)
        show_model(model.info)
        version = model.info.version
        rid = request_id(sent_request_id)
        validated = time.perf_counter()
        labels, _ = model.predict(batch.rows)
        predicted = time.perf_counter()
        observe(model, batch.rows, labels)  # drift and shadow, off the response path
        payload = orjson.dumps(predict_answer(labels, batch.index, version))
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            *answer_headers(rid, version),
        ]
        stages = (decoded - began, validated - decoded, predicted - validated,
                  time.perf_counter() - predicted)  # fmt: skip
        return Answer(200, headers, payload, rid, version, labels, stages)

    def _v2(self, raw: bytes, sent_request_id: str, path: str) -> Answer | None:
        """A V2 infer request of JSON tensors for the default model (serving.v2.infer)."""
        model = self.stores.default.current
        if model is None or not 0 < len(raw) <= self.max_body_bytes:
            return None
        began = time.perf_counter()
        try:
            body = orjson.loads(raw)  # NaN tokens, binary tensors: Flask reads those
            decoded = time.perf_counter()
            done = infer(model, body, self.max_rows)
        except (orjson.JSONDecodeError, ApiError):
            return None
        except Exception:  # a bug: Flask answers it the same way, a logged JSON 500
            return None
        if done.unknown:
            self.recorder.out_of_domain(INFER_RULE, done.unknown)
        show_model(model.info)
        rid = request_id(sent_request_id)
        encoding = time.perf_counter()
        payload = orjson.dumps(done.answer)
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            *answer_headers(rid, done.version),
        ]
        stages = (decoded - began, *done.stages, time.perf_counter() - encoding)
        return Answer(200, headers, payload, rid, done.version, done.labels, stages,
                      endpoint=INFER_RULE, path=path)  # fmt: skip

    def account(self, answer: Answer, started: float, read: float | None = None) -> None:
        """The access-log line and metrics of an answer that was sent (`read`: the seconds its
        body took to arrive, if known)."""
        account(
            self.recorder,
            endpoint=answer.endpoint,
            method="POST",
            path=answer.path,
            status=answer.status,
            started=started,
            rid=answer.request_id,
            version=answer.version,
            rows=len(answer.labels),
            predicted=answer.labels,
        )
        self.recorder.stages(answer.endpoint, answer.version, (read, *answer.stages))


class WsgiLane:
    """The lane in front of a WSGI app (the Flask app under any WSGI server)."""

    def __init__(self, app: WSGIApp, lane: PredictLane):
        self.app, self.lane = app, lane

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = environ.get("CONTENT_LENGTH", "")
        if (
            not self.lane.takes(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                environ.get("CONTENT_TYPE", ""),
            )
            or "HTTP_TRANSFER_ENCODING" in environ
            or not length.isdigit()
            or not 0 < int(length) <= self.lane.max_body_bytes
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        raw = environ["wsgi.input"].read(int(length))
        read = time.perf_counter() - started
        alias = environ.get("HTTP_X_MODEL_ALIAS") or None
        rid = environ.get("HTTP_X_REQUEST_ID", "")
        answer = self.lane.answer(raw, rid, alias, environ.get("PATH_INFO", PATH))
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            environ["CONTENT_LENGTH"] = str(len(raw))
            return self.app(environ, start_response)
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", answer.headers)
        self.lane.account(answer, started, read)
        return [answer.body]
