"""Stalled clients for the bench's slow-client case: connections that send part of a request and
then nothing, held open while the bench measures.

`Stalled(address, count, body)` opens `count` connections in a thread of its own: half stop in
the middle of their request head (no blank line), half send a whole head and half of the body
its Content-Length announces. A connection that the server answers or closes (a read timeout, a
408) is closed and replaced by one of the same kind, so the set stays topped up; the thread
counts how many are open, the fewest and most while `watch()`ed, and how many the server
closed. Leaving the `with` block closes every socket.
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

HEAD, BODY = "head", "body"  # where a stalled connection stops


def partial_requests(body: bytes, path: str = "/predict") -> dict[str, bytes]:
    """What each kind of stalled client sends: a POST of `body` to `path` cut short in its head,
    or after its whole head and half of `body`."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    return {HEAD: head, BODY: head + b"\r\n" + body[: len(body) // 2]}


def ensure_fd_limit(needed: int) -> int:
    """Raise this process's soft limit of open files to at least `needed` (children started
    afterwards inherit it); the limit now. Fails if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} open files needed, but ulimit -Hn is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


@dataclass(frozen=True)
class Held:
    """What the stalled set looked like: asked for, open now, the fewest and most open since
    `watch()`, opened in all, closed by the server (and replaced), failed to open."""

    asked: int
    open_now: int
    open_min: int
    open_max: int
    opened: int
    closed_by_server: int
    failed: int


class Stalled:
    """`count` stalled connections to `address`, kept topped up by a thread until closed."""

    def __init__(
        self,
        address: tuple[str, int],
        count: int,
        body: bytes,
        path: str = "/predict",
        interval: float = 0.05,
        connect_timeout: float = 5.0,
    ) -> None:
        self.address = address
        self.count = count
        self.requests = partial_requests(body, path)
        self.interval = interval
        self.connect_timeout = connect_timeout
        self._kinds: dict[socket.socket, str] = {}
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stalled", daemon=True)
        self._watching = False
        self._min = self._max = 0
        self._opened = self._closed = self._failed = 0

    def __enter__(self) -> Stalled:
        ensure_fd_limit(self.count + 256)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def wait_open(self, timeout: float) -> None:
        """Return once all `count` connections are open; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen().open_now >= self.count:
                return
            time.sleep(self.interval)
        raise TimeoutError(f"only {self.seen().open_now} of {self.count} stalled clients open")

    def watch(self) -> None:
        """Count the fewest and most open connections from now on."""
        with self._lock:
            self._watching = True
            self._min = self._max = len(self._kinds)

    def seen(self) -> Held:
        """The set's figures so far."""
        with self._lock:
            now = len(self._kinds)
            return Held(
                asked=self.count,
                open_now=now,
                open_min=self._min if self._watching else now,
                open_max=self._max if self._watching else now,
                opened=self._opened,
                closed_by_server=self._closed,
                failed=self._failed,
            )

    def close(self) -> None:
        """Stop the thread and close every connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            for sock in self._kinds:
                sock.close()
            self._kinds.clear()
        self._selector.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._top_up()
            if not self._kinds:
                self._stop.wait(self.interval)
                continue
            for key, _ in self._selector.select(timeout=self.interval):
                self._drop(key.fileobj)  # type: ignore[arg-type]
            with self._lock:  # sampled after the drops, before their replacements
                if self._watching:
                    self._min = min(self._min, len(self._kinds))
                    self._max = max(self._max, len(self._kinds))

    def _top_up(self) -> None:
        while len(self._kinds) < self.count and not self._stop.is_set():
            heads = sum(1 for kind in self._kinds.values() if kind == HEAD)
            kind = HEAD if heads * 2 < len(self._kinds) + 1 else BODY
            try:
                sock = socket.create_connection(self.address, timeout=self.connect_timeout)
            except OSError:
                with self._lock:
                    self._failed += 1
                self._stop.wait(self.interval)
                return
            try:
                sock.sendall(self.requests[kind])
            except OSError:
                sock.close()
                with self._lock:
                    self._failed += 1
                continue
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
            with self._lock:
                self._kinds[sock] = kind
                self._opened += 1

    def _drop(self, sock: socket.socket) -> None:
        """The server answered or closed `sock`: it is no longer stalled."""
        with contextlib.suppress(OSError):
            sock.recv(65536)
        self._selector.unregister(sock)
        sock.close()
        with self._lock:
            del self._kinds[sock]
            self._closed += 1
