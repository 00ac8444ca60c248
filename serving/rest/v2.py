"""The Open Inference Protocol (V2) over REST, on the server's own port, through Flask (the
predict lane answers the common infer request below Flask: serving.rest.predict_lane).

    GET  /v2                                   the server's metadata
    GET  /v2/health/live, /v2/health/ready     200, or 400 while no model is loaded
    GET  /v2/models/{name}[/versions/{v}]      the model's metadata (every loaded version)
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer

The protocol itself (tensors, answers, metadata, one inference) is serving.v2; errors have its
shape, `{"error": "..."}` (serving.rest.dialects). A body with Triton's binary tensor data
carries the JSON header's length in `Inference-Header-Content-Length`.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from serving.errors import ApiError
from serving.jsonio import loads_allowing_nan
from serving.metrics import Recorder
from serving.rest.errors import json_response
from serving.rest.hooks import READ_SECONDS
from serving.rest.requests import reads_as_json
from serving.stores import Stores
from serving.v2.answers import server_metadata
from serving.v2.infer import infer, metadata, pick_store, ready_model
from serving.v2.tensors import bad

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_TYPE = "application/octet-stream"
INFER_RULE = "/v2/models/<name>/infer"  # the metrics' endpoint label of every infer request


def split_body(raw: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary tensor data after it (none without the header)."""
    if header_length is None:
        return raw, memoryview(b"")
    if not header_length.strip().isdigit() or int(header_length) > len(raw):
        raise bad(f"{HEADER_LENGTH} {header_length[:20]!r} is not a length within the body")
    length = int(header_length)
    return raw[:length], memoryview(raw)[length:]


def decode_header(raw: bytes) -> object:
    if not raw.strip():
        raise bad('the request body is empty; send an infer request: {"inputs": [...]}')
    try:
        return loads_allowing_nan(raw)
    except ValueError as exc:
        raise bad(f"the request body is not valid JSON: {exc}") from None


def v2_blueprint(stores: Stores, max_rows: int, recorder: Recorder) -> Blueprint:
    v2 = Blueprint("v2", __name__)

    @v2.get("/v2")
    def server() -> Response:
        return json_response(server_metadata())

    @v2.get("/v2/health/live")
    def live() -> Response:
        return json_response({"live": True})

    @v2.get("/v2/health/ready")
    def ready() -> Response:
        model = stores.default.ensure()
        if model is None:
            return json_response({"ready": False, "reason": stores.default.reason}, 400)
        return json_response({"ready": True})

    @v2.get("/v2/models/<name>")
    @v2.get("/v2/models/<name>/versions/<version>")
    def model_metadata(name: str, version: str | None = None) -> Response:
        store = pick_store(stores, name, version)
        return json_response(metadata(stores, store))

    @v2.get("/v2/models/<name>/ready")
    @v2.get("/v2/models/<name>/versions/<version>/ready")
    def model_ready(name: str, version: str | None = None) -> Response:
        store = pick_store(stores, name, version)
        model = store.ensure()
        answer = {"name": name, "ready": model is not None}
        if model is None:
            return json_response({**answer, "reason": store.reason}, 400)
        return json_response({**answer, "version": model.info.version})

    @v2.post("/v2/models/<name>/infer")
    @v2.post("/v2/models/<name>/versions/<version>/infer")
    def infer_view(name: str, version: str | None = None) -> Response:
        req = request._get_current_object()
        if not (reads_as_json(req.mimetype) or req.mimetype == BINARY_TYPE):
            raise ApiError(
                "unsupported_media_type",
                f"cannot read Content-Type {req.content_type!r}; send an infer request as "
                f"JSON (application/json), or {BINARY_TYPE} with {HEADER_LENGTH}",
                status=415,
            )
        raw = req.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413
        store = pick_store(stores, name, version)
        model = g.model = ready_model(store)
        began = time.perf_counter()
        header, binary = split_body(raw, req.headers.get(HEADER_LENGTH))
        body = decode_header(header)
        decoded = time.perf_counter()
        done = infer(model, body, max_rows, binary)
        g.rows, g.predicted = len(done.labels), done.labels
        if done.unknown:
            recorder.out_of_domain(INFER_RULE, done.unknown)
        encoding = time.perf_counter()
        answer = json_response(done.answer)
        stages = (decoded - began, *done.stages, time.perf_counter() - encoding)
        recorder.stages(INFER_RULE, done.version, (req.environ.get(READ_SECONDS), *stages))
        return answer

    return v2
