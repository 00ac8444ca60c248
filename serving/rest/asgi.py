"""The front (serving.rest.front) as an ASGI application: `Asgi(front)`.

Any ASGI server can run it (the bench runs it under uvicorn too); `python -m serving` runs the
RSGI adapter under Granian (serving.rest.rsgi), which skips ASGI's per-message dicts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.rest.front import BodyTooLarge, Disconnected, Front, Reply, Request

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def request_of(scope: Scope) -> Request:
    content_type, length, rid, bad = "", None, "", False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            text = value.decode("latin-1").strip()
            if text.isdigit():
                length = int(text)
            else:
                bad = True
        elif name == b"x-request-id":
            rid = value.decode("latin-1")
    return Request(
        method=scope["method"],
        path=scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        content_type=content_type,
        content_length=length,
        bad_length=bad,
        request_id=rid,
        scope=lambda: scope,
        header=lambda name: _header(scope, name),
    )


def _header(scope: Scope, name: str) -> str | None:
    """The first value of header `name` (lower case), if sent."""
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key == wanted:
            return value.decode("latin-1")
    return None


class Asgi:
    def __init__(self, front: Front):
        self.front = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            request = request_of(scope)

            async def read(limit: int) -> bytes:
                chunks, size = [], 0
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

            reply = await self.front.respond(request, read)
            if reply is not None:
                await send_reply(send, reply)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.front.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


async def send_reply(send: Send, reply: Reply) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
    except OSError:  # the client is gone
        return
    if reply.done is not None:
        reply.done()
