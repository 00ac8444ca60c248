"""Readiness before and after a model exists, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import time
from urllib.parse import urlparse

import pytest
import requests
from mlflow import MlflowClient

from tests.conftest import CONTRACT_REQUEST
from tests.processes import wait_for_http

pytestmark = pytest.mark.slow

ALIAS = "e2e-late"  # an alias of our own on the session's registry, set mid-test


def test_a_server_without_its_model_stays_up_and_becomes_ready_once_it_exists(
    serve, registered_model
):
    client = MlflowClient(tracking_uri=registered_model.tracking_uri)
    assert ALIAS not in client.get_registered_model(registered_model.name).aliases
    uri = f"models:/{registered_model.name}@{ALIAS}"
    with serve(
        registered_model.tracking_uri, ready_path="/health", model_uri=uri, load_retry_seconds=1
    ) as server:
        ready = requests.get(server.url + "/ready", timeout=10)
        assert ready.status_code == 503
        assert ALIAS in ready.json()["reason"]
        predict = requests.post(server.url + "/predict", data=CONTRACT_REQUEST.read_bytes())
        assert predict.status_code == 503
        assert predict.json()["error"]["code"] == "model_not_ready"
        assert requests.get(server.url + "/version", timeout=10).status_code == 503

        client.set_registered_model_alias(registered_model.name, ALIAS, registered_model.version)
        try:
            wait_for_http(server.url + "/ready", timeout=90, process=server.process)
            # every worker loads on its own: ask a few times
            for _ in range(6):
                answer = requests.post(server.url + "/predict", data=CONTRACT_REQUEST.read_bytes())
                if answer.status_code == 200:
                    break
                time.sleep(1)
            assert answer.status_code == 200
            assert answer.headers["X-Model-Version"] == registered_model.version
        finally:
            client.delete_registered_model_alias(registered_model.name, ALIAS)


def test_sigterm_lets_the_in_flight_request_finish(serve, registered_model):
    body = CONTRACT_REQUEST.read_bytes()
    with serve(registered_model.tracking_uri, workers=1, graceful_timeout=20) as server:
        address = urlparse(server.url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            head = (
                "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            sock.sendall(head + body[:100])  # the request is in flight: half a body sent
            time.sleep(0.5)
            os.killpg(server.process.pid, signal.SIGTERM)
            time.sleep(1.0)
            assert server.process.poll() is None  # still finishing our request
            sock.sendall(body[100:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"index":["53","111"]' in answer
        assert server.process.wait(timeout=30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/health", timeout=5)
