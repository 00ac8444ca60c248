"""The front (serving.rest.front) as an RSGI application, Granian's own interface: `Rsgi(front)`.

RSGI hands over the request head as an object and takes the answer in one call, which costs
less per request than ASGI's message dicts (measured in `make bench`). A body of known length
is read in one await; a chunked one chunk by chunk, within the byte limit. A body that breaks off
is an IncompleteBody, never a shorter request: one that ends before its Content-Length (the
transport closes), or a chunked one whose encoding fails or that ends without its last chunk.
Granian gives such a failure as an empty chunk, as it gives the end (and trailers, which are
refused with it: they cannot be told apart).
"""

from __future__ import annotations

from typing import Any

from serving.rest.front import BodyTooLarge, Front, IncompleteBody, Request


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def asgi_scope(scope: Any) -> dict[str, Any]:
    """The ASGI scope of an RSGI request (what a2wsgi builds the WSGI environ from)."""
    return {
        "type": "http",
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "query_string": scope.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in scope.headers.items()
        ],
        "server": _address(scope.server),
        "client": _address(scope.client),
    }


class Rsgi:
    def __init__(self, front: Front):
        self.front = front

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers
        length_text = headers.get("content-length")
        length = None
        bad = False
        if length_text is not None:
            if length_text.strip().isdigit():
                length = int(length_text)
            else:
                bad = True
        chunked = "chunked" in (headers.get("transfer-encoding") or "").lower()
        request = Request(
            method=scope.method,
            path=scope.path,
            query=scope.query_string,
            content_type=headers.get("content-type") or "",
            content_length=length,
            bad_length=bad,
            request_id=headers.get("x-request-id") or "",
            scope=lambda: asgi_scope(scope),
            header=headers.get,
        )

        async def read(limit: int) -> bytes:
            try:
                if not chunked:
                    return await proto()  # at most Content-Length bytes, checked by the front
                chunks, size, ended = [], 0, False
                async for chunk in proto:
                    if ended:  # Granian's stream ends with one empty chunk; more: it broke off
                        raise IncompleteBody
                    ended = not chunk
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge
                    chunks.append(chunk)
                return b"".join(chunks)
            except (BodyTooLarge, IncompleteBody, TimeoutError):
                raise
            except RuntimeError as exc:  # RSGIProtocolClosed: the body ended before its length
                raise IncompleteBody from exc

        reply = await self.front.respond(request, read)
        if reply is None:
            return
        try:
            proto.response_bytes(reply.status, reply.headers, reply.body)
        except RuntimeError:  # closed meanwhile
            return
        if reply.done is not None:
            reply.done()

    def __rsgi_del__(self, loop: Any) -> None:
        self.front.close()
