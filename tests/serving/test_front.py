"""serving/rest/front.py through its ASGI adapter, in-process: the body read whole within its
limits (413 from Content-Length, 413 on a chunked body, 408 past the body timeout), the lane on
the event loop and in the pool with the same answer as Flask, and the 504 past the time limit."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from serving.config import Settings
from serving.rest.app import build_app
from serving.rest.asgi import Asgi
from serving.rest.front import Front
from tests.conftest import CONTRACT_REQUEST

BODY = CONTRACT_REQUEST.read_bytes()


def make_front(store, registered_model, **overrides) -> Front:
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri, **overrides)
    app, lane = build_app(settings, store)
    return Front(app.wsgi_app, lane, store, settings)


def call(
    front: Front,
    method: str,
    path: str,
    chunks: list[bytes] | None = None,
    headers: dict[str, str] | None = None,
    stall: bool = False,
) -> tuple[int, dict, bytes]:
    """One request through the ASGI adapter; `stall`: the body never finishes."""
    chunks = list(chunks or [b""])
    path, _, query = path.partition("?")
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("127.0.0.1", 5000), "client": ("127.0.0.1", 40000),
    }  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or stall}
        await asyncio.sleep(3600)  # a client that sends nothing more
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(Asgi(front)(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_the_lane_on_the_loop_and_in_the_pool_answer_as_flask_does(store, registered_model):
    front = make_front(store, registered_model)
    json_type = {"Content-Type": "application/json"}
    inline = call(front, "POST", "/predict", [BODY], json_type)
    flask = call(front, "POST", "/predict?proba=false", [BODY], json_type)
    assert inline[0] == flask[0] == 200 and inline[2] == flask[2]
    rows = json.loads(BODY)
    big = {c: {str(i): next(iter(v.values())) for i in range(300)} for c, v in rows.items()}
    raw = json.dumps(big).encode()
    assert len(raw) > 16 * 1024  # scored in the pool
    status, _, answer = call(front, "POST", "/predict", [raw[:5000], raw[5000:]], json_type)
    assert status == 200 and len(json.loads(answer)["prediction"]) == 300


def test_a_body_over_the_limit_is_refused_before_or_while_it_is_read(store, registered_model):
    front = make_front(store, registered_model, max_body_bytes=1000)
    status, headers, body = call(front, "POST", "/predict", [BODY * 10],
                                 {"Content-Length": str(len(BODY) * 10)})  # fmt: skip
    error = json.loads(body)["error"]
    assert status == 413 and error["limit_bytes"] == 1000 and "--max-body-bytes" in error["message"]
    assert headers["connection"] == "close"
    status, _, body = call(front, "POST", "/predict", [BODY[:800], BODY[800:]] * 3)  # chunked
    assert status == 413


def test_a_stalled_body_gets_a_408_after_the_body_timeout(store, registered_model):
    front = make_front(store, registered_model, body_timeout=0.5)
    status, headers, body = call(front, "POST", "/predict", [BODY[:10]],
                                 {"Content-Length": str(len(BODY))}, stall=True)  # fmt: skip
    assert status == 408 and json.loads(body)["error"]["code"] == "body_timeout"
    assert headers["connection"] == "close"


def test_prediction_work_over_the_time_limit_gets_a_504(store, registered_model):
    front = make_front(store, registered_model, request_timeout=1e-6)
    csv = b"Pclass,Sex\n" + b"3,male\n" * 5000
    status, headers, body = call(front, "POST", "/invocations", [csv],
                                 {"Content-Type": "text/csv"})  # fmt: skip
    error = json.loads(body)  # MLflow's shape on /invocations
    assert status == 504 and error["error_code"] == "DEADLINE_EXCEEDED"
    assert "x-request-id" in headers
    assert "--request-timeout" in error["message"]
    assert call(front, "GET", "/health")[0] == 200  # the worker lives on


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_content_length_that_is_no_number_is_a_400(store, registered_model, length):
    front = make_front(store, registered_model)
    status, _, body = call(front, "POST", "/predict", [BODY], {"Content-Length": length})
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("path", "encoding"),
    [("/predict", "gzip"), ("/invocations", "deflate"), ("/v2/models/titanic/infer", "br")],
)
def test_a_compressed_body_is_a_415_naming_its_encoding(store, registered_model, path, encoding):
    front = make_front(store, registered_model)
    body = gzip.compress(BODY)
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    status, _, answer = call(front, "POST", path, [body], headers)
    assert status == 415, answer
    assert encoding in answer.decode() and "Content-Encoding" in answer.decode()
    identity = {"Content-Type": "application/json", "Content-Encoding": "identity"}
    assert call(front, "POST", "/predict", [BODY], identity)[0] == 200


def test_a_transfer_coding_other_than_chunked_is_a_415_naming_it(store, registered_model):
    front = make_front(store, registered_model)
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "gzip, chunked"}
    status, _, answer = call(front, "POST", "/predict", [BODY], headers)
    assert status == 415 and "Transfer-Encoding" in answer.decode() and "gzip" in answer.decode()
    chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    assert call(front, "POST", "/predict", [BODY], chunked)[0] == 200
