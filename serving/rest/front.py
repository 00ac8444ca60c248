"""The server's front: each request is read whole, within its deadlines, before any code that
computes an answer sees it; then it is answered on the event loop or in the thread pool.

The HTTP server (Granian, serving.server) parses the request head in Rust, within
`--header-timeout`; the adapters (serving.rest.asgi, serving.rest.rsgi) hand the head here and
a way to read the body. The body is awaited without holding a thread, within `--body-timeout`
(408; one watchdog per worker cancels reads past their deadline, so a request pays no timer of
its own) and `--max-body-bytes` (413, refused from Content-Length before a byte is read); a
compressed body (a Content-Encoding, or a Transfer-Encoding other than chunked) is a 415,
before a byte is read. A slow or stalled client therefore costs a coroutine, never a worker.
Then:

- POST /predict's common case, and V2 infer's (serving.rest.predict_lane), is answered on the
  event loop when its body is small (one passenger costs a fraction of a millisecond), or in
  the worker's thread pool when it is large, so a big batch never holds up the worker's other
  connections;
- everything else goes to the Flask app (every endpoint, every error answer) in the thread
  pool, as a WSGI request with the buffered body (the environ is built by a2wsgi).

The prediction endpoints answer 504 past `--request-timeout`; their work then finishes in its
thread and its answer is dropped (a thread cannot be stopped).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from a2wsgi.wsgi import build_environ

from serving.config import Settings
from serving.errors import ApiError
from serving.metrics import UNMATCHED
from serving.request_log import request_id
from serving.rest.answers import answer_headers
from serving.rest.dialects import error_answer
from serving.rest.hooks import ABANDONED, READ_SECONDS, account, rule_of
from serving.rest.limits import body_timeout_error, body_too_large_error, timeout_error
from serving.rest.predict_lane import PredictLane, WSGIApp
from serving.store import ModelStore
from serving.stores import Stores, as_stores

log = logging.getLogger("serving.rest.front")

INLINE_BYTES = 16 * 1024  # a /predict body up to this size is answered on the event loop
TIME_LIMITED = frozenset({"/predict", "/invocations"})
CODINGS = (("Content-Encoding", ""), ("Transfer-Encoding", "chunked"))  # header, coding taken
WATCH_TICK = 0.25  # seconds between the body watchdog's sweeps

Headers = list[tuple[str, str]]
ReadBody = Callable[[int], Awaitable[bytes]]  # read(limit) -> the whole body


def time_limited(path: str) -> bool:
    """The prediction endpoints, V2's infer among them, answer 504 past --request-timeout."""
    return path in TIME_LIMITED or (path.startswith("/v2/models/") and path.endswith("/infer"))


class Disconnected(Exception):
    """The client went away before its body was complete."""


class BodyTooLarge(Exception):
    """An adapter read more than the limit."""


class IncompleteBody(Exception):
    """The body broke off: fewer bytes than its Content-Length, or a broken chunked encoding."""


@dataclass
class Request:
    """A request's head, as the adapters give it."""

    method: str
    path: str
    query: str
    content_type: str = ""
    content_length: int | None = None
    bad_length: bool = False
    request_id: str = ""
    scope: Callable[[], MutableMapping[str, Any]] = field(default=dict)  # ASGI scope, for WSGI
    header: Callable[[str], str | None] = field(default=lambda name: None)  # by lower-case name
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    done: Callable[[], None] | None = None  # its access line and metrics, once it is sent


class BodyWatch:
    """Cancels the body reads of one event loop that pass their deadline."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._reads: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self, read: ReadBody, limit: int) -> bytes:
        task = asyncio.current_task()
        if task is None:  # not in a task: a timer of its own
            try:
                async with asyncio.timeout(self.timeout):
                    return await read(limit)
            except TimeoutError:
                raise body_timeout_error(self.timeout) from None
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            loop.call_later(WATCH_TICK, self._sweep)
        self._reads[task] = loop.time() + self.timeout
        try:
            return await read(limit)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise body_timeout_error(self.timeout) from None
        finally:
            self._reads.pop(task, None)

    def _sweep(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for task, deadline in list(self._reads.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        loop.call_later(WATCH_TICK, self._sweep)


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """Call a WSGI app and collect its whole answer (in a pool thread)."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return chunks.append

    iterable = app(environ, start_response)
    try:
        chunks.extend(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status.split(" ", 1)[0]), headers, b"".join(chunks)


class Front:
    """`Front(flask_app.wsgi_app, lane, stores, settings)`; the adapters call `respond`."""

    def __init__(
        self, wsgi: WSGIApp, lane: PredictLane, stores: ModelStore | Stores, settings: Settings
    ):
        self.wsgi, self.lane, self.settings = wsgi, lane, settings
        self.stores = as_stores(stores)
        self.pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="serving-request")
        self.watch = BodyWatch(settings.body_timeout)

    async def respond(self, request: Request, read: ReadBody) -> Reply | None:
        """The reply to send, or None if the client is gone (nothing to send)."""
        try:
            body = await self._body(request, read)
        except ApiError as error:
            return self._error(request, error, close=True)
        except Disconnected:
            return None
        read = time.perf_counter() - request.started
        if self.lane.takes(request.method, request.path, request.query, request.content_type):
            alias = request.header("x-model-alias")
            rid, path = request.request_id, request.path
            if len(body) <= INLINE_BYTES:
                answer = self.lane.answer(body, rid, alias, path)
            else:
                answer = await self._in_pool(request, self.lane.answer, body, rid, alias, path)
                if isinstance(answer, Reply):  # timed out
                    return answer
            if answer is not None:
                started = request.started
                return Reply(answer.status, answer.headers, answer.body,
                             lambda: self.lane.account(answer, started, read))  # fmt: skip
        environ = build_environ(request.scope(), io.BytesIO(body))  # type: ignore[arg-type]
        environ["CONTENT_LENGTH"] = str(len(body))
        environ[READ_SECONDS] = read
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is whole now
        result = await self._in_pool(request, self._run_flask, environ)
        if result is None or isinstance(result, Reply):
            return result
        return Reply(*result)

    async def _body(self, request: Request, read: ReadBody) -> bytes:
        limit = self.settings.max_body_bytes
        if request.bad_length:
            raise ApiError("bad_request", "the Content-Length header is not a number")
        for header, taken in CODINGS:
            value = request.header(header.lower())
            if not value:  # the common case: no coding at all
                continue
            codings = value.lower().replace(" ", "").split(",")
            if not set(codings) <= {"", "identity", taken}:
                raise ApiError(
                    f"unsupported_{header.lower().replace('-', '_')}",
                    f"the request body's {header} {','.join(codings)[:50]!r} is not supported; "
                    "send it uncompressed",
                    status=415,
                )
        if request.content_length is not None and request.content_length > limit:
            raise body_too_large_error(limit)
        try:
            return await self.watch.read(read, limit)
        except BodyTooLarge:
            raise body_too_large_error(limit) from None
        except IncompleteBody:
            raise ApiError(
                "incomplete_body",
                "the request body broke off before its end (fewer bytes than its Content-Length, "
                "or a chunked body with a malformed chunk, no last chunk or trailers); "
                "nothing was scored",
            ) from None

    def _run_flask(self, environ: dict[str, Any]) -> tuple[int, Headers, bytes] | None:
        if environ.get(ABANDONED):  # answered 504 while it waited for a thread
            return None
        return run_wsgi(self.wsgi, environ)

    async def _in_pool(self, request: Request, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in the thread pool; past the prediction endpoints' time limit the
        reply is a 504 and the result, when it comes, is dropped."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, function, *args)
        limit = self.settings.request_timeout
        if limit <= 0 or not time_limited(request.path):
            return await future
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(future)
        except TimeoutError:
            if args and isinstance(args[0], dict):
                args[0][ABANDONED] = True
            return self._error(request, timeout_error(limit), close=False)

    def _error(self, request: Request, error: ApiError, close: bool) -> Reply:
        """An error answered here, below Flask, in the same shape, headers, log and metrics."""
        model = self.stores.default.current
        version = model.info.version if model is not None else None
        rid = request_id(request.request_id)
        status, body = error_answer(error, request.path)
        payload = orjson.dumps(body)
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            *answer_headers(rid, version),
        ]
        if close:  # the rest of the body is not read: the connection cannot be reused
            headers.append(("connection", "close"))

        def done() -> None:
            account(
                self.lane.recorder,
                endpoint=self._rule(request),
                method=request.method,
                path=request.path,
                status=status,
                started=request.started,
                rid=rid,
                version=version,
                error=error.code,
            )

        return Reply(status, headers, payload, done)

    def _rule(self, request: Request) -> str:
        """The URL rule the metrics label a request with (as Flask's hooks do)."""
        app = getattr(self.wsgi, "__self__", None)  # Flask.wsgi_app is bound to the app
        url_map = getattr(app, "url_map", None)
        return rule_of(url_map, request.path, request.method) if url_map else UNMATCHED

    def close(self) -> None:
        self.pool.shutdown(wait=False)
