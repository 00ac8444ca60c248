"""bench/noop_app.py in-process: each interface's no-op app reads the whole body and answers the
same fixed JSON; and every factory the front matrix names exists."""

from __future__ import annotations

import asyncio
import importlib
from types import SimpleNamespace

from bench.fronts import NOOP, TARGETS
from bench.noop_app import ANSWER, READY, create_app, create_asgi, create_rsgi


def test_the_flask_app_reads_the_body_and_answers_the_fixed_json():
    client = create_app().test_client()
    answer = client.post("/predict", data=b'{"Pclass": {"0": 3}}', content_type="application/json")
    assert (answer.status_code, answer.data, answer.mimetype) == (200, ANSWER, "application/json")
    assert client.get("/ready").data == READY


def asgi(scope: dict, messages: list[dict]) -> list[dict]:
    """Run the ASGI no-op on `scope` with `messages` to receive; what it sent."""
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(create_asgi()(scope, receive, send))
    return sent


def test_the_asgi_app_reads_every_body_message_before_it_answers():
    messages = [
        {"type": "http.request", "body": b'{"Pclass": ', "more_body": True},
        {"type": "http.request", "body": b'{"0": 3}}', "more_body": False},
    ]
    start, body = asgi({"type": "http", "method": "POST", "path": "/predict"}, messages)
    assert messages == []  # all read
    assert start["status"] == 200 and body["body"] == ANSWER
    assert dict(start["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": str(len(ANSWER)).encode(),
    }
    [start, body] = asgi({"type": "http", "method": "GET", "path": "/ready"}, [{"type": "x"}])
    assert body["body"] == READY


def test_the_asgi_app_acknowledges_the_lifespan():
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    assert [m["type"] for m in asgi({"type": "lifespan"}, messages)] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


class Proto:
    """An RSGI HTTP protocol object: the body in one await, the answer in one call."""

    def __init__(self, body: bytes) -> None:
        self.body, self.read, self.answer = body, False, None

    async def __call__(self) -> bytes:
        self.read = True
        return self.body

    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.answer = (status, headers, body)


def test_the_rsgi_app_reads_the_body_and_answers_in_one_call():
    proto = Proto(b'{"Pclass": {"0": 3}}')
    scope = SimpleNamespace(proto="http", method="POST", path="/predict")
    asyncio.run(create_rsgi().__rsgi__(scope, proto))
    assert proto.read
    assert proto.answer == (200, [("content-type", "application/json")], ANSWER)


def test_every_factory_the_front_matrix_runs_exists_and_the_no_op_ones_build():
    for app, targets in TARGETS.items():
        for target in targets.values():
            module, _, name = target.partition(":")
            factory = getattr(importlib.import_module(module), name)
            assert callable(factory)
            if app == NOOP:
                assert factory() is not None
