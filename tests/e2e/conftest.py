"""Generic end-to-end fixtures: run our server (`python -m serving`) as a real process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.processes import VENV_BIN, free_port, running, venv_env
from training.config import REPO_ROOT


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen
    url: str
    log: Path


ServeFactory = Callable[..., AbstractContextManager[Server]]


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory) -> ServeFactory:
    """`with serve(tracking_uri, ready_path="/ready", **flags) as server:` runs `python -m serving`
    from the repo root on a free port until the block ends (SIGTERM to its process group)."""

    @contextmanager
    def start(
        tracking_uri: str, ready_path: str = "/ready", timeout: float = 120, **flags: object
    ) -> Iterator[Server]:
        port = free_port()
        command = [str(VENV_BIN / "python"), "-m", "serving", "--port", str(port)]
        for name, value in {"workers": 2, **flags}.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        log = tmp_path_factory.mktemp("serving") / "server.log"
        url = f"http://127.0.0.1:{port}"
        env = venv_env(MLFLOW_TRACKING_URI=tracking_uri)
        with running(
            command, url + ready_path, log=log, env=env, cwd=REPO_ROOT, timeout=timeout
        ) as process:
            yield Server(process=process, url=url, log=log)

    return start


@pytest.fixture(scope="module")
def expected(server, raw_test) -> dict:
    """What /predict answers for all of test.csv (labels and probabilities), from the `server`
    fixture of the module that asks (the V2 client tests compare their answers with it)."""
    records = json.loads(raw_test.to_json(orient="records"))
    answer = requests.post(server.url + "/predict?proba=true", json=records, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()
