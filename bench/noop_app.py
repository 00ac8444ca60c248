"""The stack's ceilings for `make bench`: one no-op app per interface, each doing the same least
work per request: read the whole body (without parsing it) and answer POST /predict with a fixed
JSON body; GET /ready answers `{}`. What the HTTP server and its interface alone cost, with no
model and no contract.

- `create_app()`: a Flask WSGI app (for gunicorn and Granian's WSGI interface);
- `create_asgi()`: a raw ASGI callable, no framework (Granian's ASGI interface, uvicorn);
- `create_rsgi()`: a raw RSGI application, no framework (Granian's RSGI interface).

Each is a factory (`--factory`, or gunicorn's `'bench.noop_app:create_app()'`): nothing is built
at import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from flask import Flask, Response, request

ANSWER = b'{"prediction":[0]}'
READY = b"{}"
JSON = "application/json"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def route(method: str, path: str) -> tuple[int, bytes]:
    """The status and body every no-op app answers `method` `path` with."""
    if method == "POST" and path == "/predict":
        return 200, ANSWER
    if method == "GET" and path == "/ready":
        return 200, READY
    return 404, b'{"error":"not found"}'


def create_app() -> Flask:
    """The no-op Flask WSGI app."""
    app = Flask("noop")

    @app.post("/predict")
    def predict() -> Response:
        request.get_data()
        return Response(ANSWER, mimetype=JSON)

    @app.get("/ready")
    def ready() -> Response:
        return Response(READY, mimetype=JSON)

    return app


class NoopAsgi:
    """The no-op app as a raw ASGI callable: the body read to its last message, then one answer
    in two messages; lifespan events acknowledged."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                break
        status, body = route(scope["method"], scope["path"])
        headers = [(b"content-type", JSON.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class NoopRsgi:
    """The no-op app as a raw RSGI application: the body in one await, the answer in one call."""

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        await proto()
        status, body = route(scope.method, scope.path)
        proto.response_bytes(status, [("content-type", JSON)], body)


def create_asgi() -> NoopAsgi:
    """The no-op raw ASGI app."""
    return NoopAsgi()


def create_rsgi() -> NoopRsgi:
    """The no-op raw RSGI app."""
    return NoopRsgi()
