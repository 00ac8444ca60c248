"""bench/stall.py against a tiny local server in a thread: the stalled clients send part of a
request and nothing more, one the server closes is replaced by one of its kind, and every socket
is closed on the way out."""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bench.stall import Stalled, partial_requests

BODY = b'{"Pclass": {"0": 3}, "Name": {"0": "Kelly, Mr. James"}}'


class Holder:
    """Accepts every connection on loopback and keeps what each sends, until told to close
    some; counts the connections whose client hung up."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()
        self.received: dict[socket.socket, bytes] = {}
        self.accepted = self.hung_up = 0
        self.lock = threading.Lock()
        self.to_close = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        while not self.done.is_set():
            for key, _ in selector.select(timeout=0.01):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    selector.register(conn, selectors.EVENT_READ)
                    with self.lock:
                        self.received[conn], self.accepted = b"", self.accepted + 1
                    continue
                conn = key.fileobj
                data = conn.recv(65536)
                with self.lock:
                    if data:
                        self.received[conn] += data
                        continue
                    self.hung_up += 1
                    del self.received[conn]
                selector.unregister(conn)
                conn.close()
            with self.lock:
                while self.to_close and self.received:
                    conn = next(iter(self.received))
                    del self.received[conn]
                    selector.unregister(conn)
                    conn.close()
                    self.to_close -= 1
        for conn in self.received:
            conn.close()
        selector.close()

    def close(self, count: int) -> None:
        with self.lock:
            self.to_close += count

    def sent(self) -> list[bytes]:
        with self.lock:
            return list(self.received.values())


@contextmanager
def holder() -> Iterator[Holder]:
    server = Holder()
    server.thread.start()
    try:
        yield server
    finally:
        server.done.set()
        server.thread.join()
        server.listener.close()


def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_two_partial_requests_stop_in_the_head_and_half_way_through_the_body():
    sent = partial_requests(BODY)
    assert b"\r\n\r\n" not in sent["head"] and sent["head"].startswith(b"POST /predict HTTP/1.1")
    head, _, part = sent["body"].partition(b"\r\n\r\n")
    assert f"Content-Length: {len(BODY)}".encode() in head
    assert part == BODY[: len(BODY) // 2]


def test_stalled_clients_send_part_of_a_request_and_are_all_closed_on_the_way_out():
    before = open_fds()
    with holder() as server:
        with Stalled(server.address, 10, BODY, interval=0.01) as stalled:
            stalled.wait_open(timeout=5)
            eventually(lambda: len([d for d in server.sent() if d]) == 10)
            sent = server.sent()
            assert sorted(sent) == sorted(list(partial_requests(BODY).values()) * 5)
            time.sleep(0.05)
            assert stalled.seen().open_now == 10 and stalled.seen().closed_by_server == 0
        eventually(lambda: server.hung_up == 10)
        assert stalled.seen().open_now == 0
    assert open_fds() == before


def test_a_connection_the_server_closes_is_replaced_by_one_of_its_kind():
    with holder() as server, Stalled(server.address, 6, BODY, interval=0.01) as stalled:
        stalled.wait_open(timeout=5)
        eventually(lambda: len([d for d in server.sent() if d]) == 6)
        stalled.watch()
        server.close(2)
        eventually(lambda: server.accepted == 8 and len([d for d in server.sent() if d]) == 6)
        seen = stalled.seen()
        assert (seen.opened, seen.closed_by_server, seen.open_now) == (8, 2, 6)
        assert seen.open_min < 6 and seen.open_max == 6  # the gap before the replacement shows
        kinds = [b"\r\n\r\n" in data for data in server.sent()]
        assert kinds.count(True) == kinds.count(False) == 3


def test_a_server_that_is_not_there_is_counted_as_failures_not_raised():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()  # bound, never listening: connections are refused
        with Stalled(address, 3, BODY, interval=0.01) as stalled:
            eventually(lambda: stalled.seen().failed >= 2)
            assert stalled.seen().open_now == 0
