"""The server's front over raw sockets against a real server: HTTP/1.1 as clients speak it
(chunked bodies, keep-alive, pipelining, Expect: 100-continue, HTTP/1.0), its limits (431, 408,
413), and 1,000 stalled clients that neither slow the others down nor stay open past the read
timeouts."""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import CONTRACT_REQUEST

pytestmark = pytest.mark.slow

BODY = CONTRACT_REQUEST.read_bytes()
TIMEOUT = 3  # the server's header and body timeouts here, in seconds


@pytest.fixture(scope="module")
def server(serve, registered_model) -> Iterator:
    with serve(
        registered_model.tracking_uri, header_timeout=TIMEOUT, body_timeout=TIMEOUT,
        max_header_bytes=16384, reload_interval=0,
    ) as running:  # fmt: skip
        yield running


def address(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(server, raw: bytes, expect: int = 1, timeout: float = 10) -> bytes:
    """Send `raw` on one connection; read until `expect` answers are in or it closes."""
    with socket.create_connection(address(server), timeout=timeout) as sock:
        sock.sendall(raw)
        received = b""
        while received.count(b"HTTP/1.") < expect or not _complete(received, expect):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(received: bytes, expect: int) -> bool:
    """Every one of `expect` answers has its whole body (by its Content-Length)."""
    rest = received
    for _ in range(expect):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")), 0,
        )  # fmt: skip
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def post(body: bytes, *extra: bytes, version: bytes = b"1.1") -> bytes:
    head = [b"POST /predict HTTP/" + version, b"Host: test", b"Content-Type: application/json"]
    return b"\r\n".join([*head, *extra, b"Content-Length: %d" % len(body), b"", body])


def predictions(answer: bytes) -> list:
    return [json.loads(part.split(b"\r\n\r\n", 1)[1][: _length(part)])["prediction"]
            for part in answer.split(b"HTTP/1.")[1:]]  # fmt: skip


def _length(part: bytes) -> int:
    head = part.split(b"\r\n\r\n", 1)[0]
    return next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:"))  # fmt: skip


def test_a_chunked_body_is_read_whole(server):
    chunks = [BODY[:100], BODY[100:]]
    raw = b"\r\n".join([
        b"POST /predict HTTP/1.1", b"Host: test", b"Content-Type: application/json",
        b"Transfer-Encoding: chunked", b"",
        *[b"%x\r\n%s" % (len(c), c) for c in chunks], b"0", b"", b"",
    ])  # fmt: skip
    answer = exchange(server, raw)
    assert answer.startswith(b"HTTP/1.1 200") and predictions(answer) == [[1, 1]]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server):
    one = {k: {"0": v["53"]} for k, v in json.loads(BODY).items()}
    raw = post(BODY) + post(json.dumps(one).encode()) + post(BODY)  # sent at once
    answer = exchange(server, raw, expect=3)
    assert answer.count(b"HTTP/1.1 200") == 3
    assert predictions(answer) == [[1, 1], [1], [1, 1]]


def test_expect_100_continue_is_honoured(server):
    head = post(BODY, b"Expect: 100-continue").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(head)
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(BODY)
        answer = b""
        while not _complete(answer, 1):
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")


def test_an_http_1_0_client_is_answered_and_the_connection_closed(server):
    answer = exchange(server, post(BODY, version=b"1.0"))
    assert answer.split(b" ")[1] == b"200" and predictions(answer) == [[1, 1]]


def test_a_head_over_the_header_limit_gets_a_431(server):
    raw = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert exchange(server, raw).startswith(b"HTTP/1.1 431")


def test_a_stalled_body_gets_a_json_408_and_the_connection_closes(server):
    raw = post(BODY)[:-200]  # the head and part of the body, never the rest
    started = time.monotonic()
    answer = exchange(server, raw, timeout=TIMEOUT + 10)
    assert TIMEOUT - 0.5 < time.monotonic() - started < TIMEOUT + 3
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408")
    error = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "body_timeout" and "--body-timeout" in error["message"]


def test_a_body_over_the_byte_limit_is_refused_from_its_content_length(server):
    answer = requests.post(server.url + "/predict", data=b"x" * (4 * 1024 * 1024 + 1), timeout=30)
    assert answer.status_code == 413 and "--max-body-bytes" in answer.json()["error"]["message"]


ONE = json.dumps([{"Pclass": 1, "Sex": "female"}]).encode()  # valid JSON alone


def cut_short(server, raw: bytes, close: bool) -> tuple[bytes, dict]:
    """Send `raw`, then (if `close`) end the sending side; (status line, JSON error) back."""
    with socket.create_connection(address(server), timeout=TIMEOUT + 10) as sock:
        sock.sendall(raw)
        if close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status, _, rest = received.partition(b"\r\n")
    return status, json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]


@pytest.mark.parametrize(
    ("rest", "close"),
    [(b"zz\r\nmore rows\r\n0\r\n\r\n", False), (b"", True), (b"XX0\r\n\r\n", False)],
    ids=["bad chunk size", "end of stream", "bad chunk end"],
)
def test_a_chunked_body_that_breaks_off_is_a_400_not_a_shorter_request(server, rest, close):
    head = b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    good = b"%x\r\n%s" % (len(ONE), ONE) + (b"" if rest.startswith(b"XX") else b"\r\n")
    status, error = cut_short(server, head + good + rest, close)
    assert status.startswith(b"HTTP/1.1 400") and error["code"] == "incomplete_body", error


def test_a_body_shorter_than_its_content_length_is_a_json_400(server):
    raw = post(ONE).replace(
        b"Content-Length: %d" % len(ONE), b"Content-Length: %d" % (len(ONE) + 50)
    )
    status, error = cut_short(server, raw, close=True)
    assert status.startswith(b"HTTP/1.1 400") and error["code"] == "incomplete_body", error
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def latencies(url: str, count: int) -> list[float]:
    session, seen = requests.Session(), []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.post(url + "/predict", data=BODY, timeout=10)
        assert answer.status_code == 200
        assert session.get(url + "/health", timeout=10).status_code == 200
        seen.append(time.perf_counter() - started)
    return seen


def test_a_thousand_stalled_clients_neither_slow_others_nor_stay_open(server):
    before = latencies(server.url, 50)
    stalled, selector = [], selectors.DefaultSelector()
    for i in range(1000):  # half stall in their head, half in their body
        sock = socket.create_connection(address(server), timeout=10)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\n" if i % 2 else post(BODY)[:-100])
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        stalled.append(sock)
    opened = time.monotonic()
    during = latencies(server.url, 50)
    assert time.monotonic() - opened < TIMEOUT, "the check ran while every client still stalled"
    closed: set[socket.socket] = set()
    while len(closed) < len(stalled) and time.monotonic() - opened < TIMEOUT + 10:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data or b"408" in data:
                closed.add(sock)
                selector.unregister(sock)
    waited = time.monotonic() - opened
    for sock in stalled:
        sock.close()
    p50_before, p50_during = statistics.median(before), statistics.median(during)
    print(f"\n1,000 stalled: p50 {p50_before * 1000:.2f} ms before, {p50_during * 1000:.2f} ms "
          f"during; all closed after {waited:.1f} s")  # fmt: skip
    assert len(closed) == len(stalled), f"{len(stalled) - len(closed)} stalled clients still open"
    assert p50_during < p50_before * 3 + 0.01
    assert max(during) < 1.0
