"""`python -m serving` runs three kinds of process: the master, the model agent (the only
one that imports MLflow) and the workers, which load the staged version from disk."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import CONTRACT_REQUEST
from tests.processes import server_roles

pytestmark = pytest.mark.slow

HEAVY = ("/sklearn/", "/pandas/", "/scipy/", "/pyarrow/")  # native libraries of the plain stack


def mapped_heavy_libraries(process: psutil.Process) -> set[str]:
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    return {marker for marker in HEAVY if marker in maps}


def predict(url: str) -> requests.Response:
    return requests.post(url + "/predict", data=CONTRACT_REQUEST.read_bytes(), timeout=10)


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not true after {timeout} s")


def test_workers_serve_the_fast_path_without_the_plain_stack_and_the_agent_is_kept_alive(
    serve, registered_model
):
    with serve(registered_model.tracking_uri) as server:
        agents, workers = server_roles(server.process.pid)
        assert len(agents) == 1 and len(workers) == 2
        assert predict(server.url).status_code == 200
        version = requests.get(server.url + "/version", timeout=10).json()
        assert version["inference"]["path"] == "onnx"
        for worker in workers:  # no scikit-learn, pandas, scipy or Arrow in a worker
            assert mapped_heavy_libraries(worker) == set(), worker.pid

        # the agent dies: the workers keep serving and the master starts a new agent
        agents[0].send_signal(signal.SIGKILL)
        assert predict(server.url).status_code == 200
        wait_until(lambda: len(server_roles(server.process.pid)[0]) == 1
                   and server_roles(server.process.pid)[0][0].pid != agents[0].pid)  # fmt: skip
        assert predict(server.url).status_code == 200
        assert "the model agent exited" in server.log.read_text(errors="replace")


def test_once_ready_no_request_meets_a_worker_still_loading(serve, registered_model):
    """Each worker loads what the agent staged; one that has not yet loads it in the request."""
    with serve(registered_model.tracking_uri, reload_interval=0) as server:  # just ready
        answers = [predict(server.url) for _ in range(40)]
        assert [a.status_code for a in answers] == [200] * 40, answers[-1].text
        assert {a.headers["X-Model-Version"] for a in answers} == {registered_model.version}


def test_the_agent_stops_when_the_master_is_gone(serve, registered_model):
    with serve(registered_model.tracking_uri) as server:
        (agent,), _ = server_roles(server.process.pid)
        os.kill(server.process.pid, signal.SIGKILL)  # no graceful stop: the agent must notice
        agent.wait(timeout=10)
        assert not agent.is_running()
