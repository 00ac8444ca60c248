"""The wire between the workers and the shadow scorer process: what a worker's evidence thread
sends (serving.evidence.hook) and what the scorer reads (serving.server.shadow_scorer).

Under `python -m serving --shadow ALIAS` the shadow version scores in a process of its own, so
that its work never holds a worker's GIL (scored in the worker, it cost a tenth of the one-row
rate and a third more on its p99 at 32 connections). A worker sends each round's requests to it
as datagrams on a Unix socket in the run directory: orjson of ``[[live_version, rows, labels],
...]``, the rows typed as the contract typed them, at most DATAGRAM_ROWS rows a datagram (a
larger request is split; the scorer counts its parts as one request each).

Sending never blocks a worker. Rows the scorer cannot take (its socket's queue is full, it is
not listening, it is restarting) are handed back to the caller, which counts them as dropped.
The scorer drains its socket into a bounded queue of its own at once, and counts what does not
fit there as dropped too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("serving.evidence.relay")

SOCKET_NAME = "shadow.sock"  # in the run directory
DATAGRAM_ROWS = 256  # rows per datagram: ~80 KB (the kernel queues few datagrams: 10 by default)
BUFFER = 4 * 1024 * 1024  # bytes of datagrams a socket may have in flight (the kernel may cap it)
MAX_DATAGRAM = 4 * 1024 * 1024  # the largest datagram the scorer reads
WARN_EVERY = 60.0  # seconds between two warnings that the scorer is not taking rows

Item = tuple[str, Sequence[dict[str, Any]], Sequence[Any]]  # live version, rows, live labels
"""A request to score in shadow: what the evidence thread collects, the wire carries and
serving.evidence.shadow scores."""


def encode(items: Sequence[Item], rows: int = DATAGRAM_ROWS) -> Iterator[tuple[bytes, list[Item]]]:
    """The datagrams of `items`, each with the items (or parts of one) it carries."""
    held: list[Item] = []
    count = 0
    for version, batch, labels in items:
        for start in range(0, len(batch), rows):
            part = (version, batch[start : start + rows], labels[start : start + rows])
            if held and count + len(part[1]) > rows:
                yield _datagram(held), held
                held, count = [], 0
            held.append(part)
            count += len(part[1])
    if held:
        yield _datagram(held), held


def _datagram(items: list[Item]) -> bytes:
    return orjson.dumps([[version, list(rows), list(labels)] for version, rows, labels in items])


def decode(datagram: bytes) -> list[Item]:
    """A datagram's items; ValueError if it is not one `encode` wrote."""
    try:
        items = orjson.loads(datagram)
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [(str(version), rows, labels) for version, rows, labels in items]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not a shadow datagram: {exc}") from None


class Relay:
    """A worker's end: `send(items)` returns the items the scorer did not take."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _buffer(self._socket, socket.SO_SNDBUF)
        self._socket.setblocking(False)
        self._warned = 0.0

    def send(self, items: Sequence[Item]) -> list[Item]:
        dropped: list[Item] = []
        for datagram, carried in encode(items):
            try:
                self._socket.sendto(datagram, self.path)
            except OSError as exc:  # full (EAGAIN), not listening, too large: never wait
                dropped += carried
                self._warn(exc)
        return dropped

    def _warn(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning("the shadow scorer did not take rows (counted as dropped): %s", exc)


def listen(path: str | Path) -> socket.socket:
    """The scorer's end: a datagram socket bound at `path` (any old one replaced)."""
    Path(path).unlink(missing_ok=True)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    _buffer(receiver, socket.SO_RCVBUF)
    receiver.bind(str(path))
    return receiver


def _buffer(end: socket.socket, option: int) -> None:
    with contextlib.suppress(OSError):  # the kernel's own limit then
        end.setsockopt(socket.SOL_SOCKET, option, BUFFER)
