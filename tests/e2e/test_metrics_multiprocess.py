"""/metrics under the real server with two workers: every scrape sums all workers, survives a killed
worker, and the CLI's private PROMETHEUS_MULTIPROC_DIR lives exactly as long as the server."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import CONTRACT_REQUEST
from tests.e2e.evidence import scrape, total

pytestmark = pytest.mark.slow

REQUESTS = 40


def value(samples: dict, metric: str, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def metrics_dir(log: Path) -> Path:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and "multiprocess dir" in line:
            return Path(re.search(r"multiprocess dir (\S+)", json.loads(line)["message"])[1])
    raise AssertionError("the server did not log its metrics dir")


def worker_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"Spawning worker-\d+ with PID: (\d+)", log.read_text())]


def predict(url: str, path: str = "/predict") -> requests.Response:
    body = CONTRACT_REQUEST.read_bytes()
    headers = {"Content-Type": "application/json", "Connection": "close"}
    return requests.post(url + path, data=body, headers=headers, timeout=30)


def test_metrics_add_up_across_workers_and_a_killed_worker(serve, registered_model):
    with serve(registered_model.tracking_uri, workers=2) as server:
        directory = metrics_dir(server.log)
        assert directory.is_dir() and directory.name.startswith("serving-metrics-")
        assert oct(directory.stat().st_mode & 0o777) == "0o700"

        for _ in range(REQUESTS):
            assert predict(server.url).status_code == 200
        assert requests.get(server.url + "/no/such/path", timeout=10).status_code == 404

        # Whichever worker answers the scrape, it reports every worker's counts.
        for _ in range(6):
            samples = scrape(server.url)
            ok = dict(endpoint="/predict", method="POST", status="200")
            assert value(samples, "serving_requests_total", **ok) == REQUESTS
            latency = value(samples, "serving_request_duration_seconds_count", endpoint="/predict")
            assert latency == REQUESTS
            assert (
                value(samples, "serving_rows_predicted_total", endpoint="/predict") == 2 * REQUESTS
            )
            assert total(samples, "serving_predictions_total", endpoint="/predict") == 2 * REQUESTS
            assert total(samples, "serving_requests_total", endpoint="unmatched", status="404") == 1
            assert value(samples, "serving_model_loads_total", kind="load") >= 1
            info = dict(name="titanic", version=registered_model.version, alias="champion",
                        inference="onnx")  # fmt: skip
            assert value(samples, "serving_model_info", **info) == 1
        pids = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")}
        assert len(set(worker_pids(server.log)) & pids) == 2, "both workers served requests"

        # A killed worker's counts stay; its replacement serves and counts on.
        os.kill(worker_pids(server.log)[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(worker_pids(server.log)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(4):
            assert predict(server.url).status_code == 200
        samples = scrape(server.url)
        assert value(samples, "serving_requests_total", **ok) == REQUESTS + 4
        info_samples = [
            v for (n, labels), v in samples.items() if n == "serving_model_info" and v == 1
        ]
        assert info_samples == [1.0]  # one model, served by the live workers

    assert not directory.exists(), "the private metrics dir outlived the server"
