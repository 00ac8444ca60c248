"""What an operator reads, against real server processes: every line the server writes is one
JSON object and none carries what a client sent; a healthy start logs no warning; the retry
delays logged are the ones used; the command line's refusals are one clear line."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import subprocess
import time
import uuid

import pytest
import requests

from serving.store import ModelStore
from serving.watcher import Watcher
from tests.conftest import CONTRACT_REQUEST
from tests.processes import VENV_BIN, free_port, venv_env
from training.config import REPO_ROOT

pytestmark = pytest.mark.slow


def secret() -> str:
    return f"zz{uuid.uuid4().hex}"


def test_every_line_is_json_and_no_request_content_reaches_the_log(serve, registered_model):
    secrets: list[str] = []

    def mark() -> str:
        secrets.append(secret())
        return secrets[-1]

    with serve(registered_model.tracking_uri) as server:
        url = server.url
        body = json.loads(CONTRACT_REQUEST.read_bytes())
        body[mark()] = {"53": mark(), "111": mark()}  # an extra column: its key and values
        body["Name"] = {"53": mark(), "111": mark()}
        assert requests.post(url + "/predict", json=body, timeout=10).status_code == 200
        assert requests.post(url + "/predict?proba=true", json=body, timeout=10).ok
        bad = {"Pclass": {"0": mark()}, "Sex": {"0": mark()}}
        assert requests.post(url + "/predict", json=bad, timeout=10).status_code == 422
        assert requests.post(url + "/predict", data=mark().encode(), timeout=10).status_code == 400
        split = {"columns": ["Pclass", "Sex", mark()], "data": [[3, "male", mark()]]}
        answer = requests.post(url + "/invocations", json={"dataframe_split": split}, timeout=30)
        assert answer.status_code == 200, answer.text
        csv = f"Pclass,Sex,{mark()}\n3,male,{mark()}\n".encode()
        answer = requests.post(url + "/invocations", data=csv, timeout=30,
                               headers={"Content-Type": "text/csv"})  # fmt: skip
        assert answer.status_code == 200
        records = [{"Pclass": 1, "Sex": "female", mark(): mark()}]
        assert requests.post(url + "/invocations", json={"inputs": records}, timeout=30).ok
        assert requests.post(url + "/invocations", json={mark(): 1}, timeout=30).status_code == 400
        assert requests.post(url + "/admin/reload", data=mark(), timeout=10).status_code == 404
        time.sleep(0.5)  # the last access lines are written
    text = server.log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)  # raises on any line that is not one JSON object
        assert isinstance(record, dict) and "level" in record, line
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{len(leaked)} of {len(secrets)} client strings are in the log"


def test_a_healthy_start_logs_no_warning(serve, registered_model):
    with serve(registered_model.tracking_uri) as server:
        assert requests.get(server.url + "/ready", timeout=10).status_code == 200
    levels = [json.loads(line)["level"] for line in server.log.read_text().splitlines() if line]
    assert levels and not {"warning", "error", "critical"} & set(levels), levels


def test_the_retry_delays_logged_are_the_ones_used(registered_model, caplog):
    store = ModelStore("models:/titanic@not-yet", registered_model.tracking_uri)
    polled: list[float] = []
    poll = store.poll

    def timed_poll(*args, **kwargs) -> str:
        polled.append(time.monotonic())
        return poll(*args, **kwargs)

    store.poll = timed_poll  # type: ignore[method-assign]
    watcher = Watcher(store, None, reload_interval=0, retry_seconds=0.3, retry_max_seconds=1.2)
    with caplog.at_level(logging.INFO, logger="serving.watcher"):
        watcher.start()
        time.sleep(3.6)
        watcher.stop()
    said = [float(r.getMessage().split("next attempt in ")[1].split(" s")[0])
            for r in caplog.records if "next attempt in" in r.getMessage()]  # fmt: skip
    assert said[:4] == [0.3, 0.6, 1.2, 1.2]
    gaps = [later - earlier for earlier, later in itertools.pairwise(polled)]
    for delay, gap in zip(said, gaps, strict=False):
        assert abs(gap - delay) < 0.3, (said, gaps)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "serving", *args],
        cwd=REPO_ROOT, env=venv_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--log-level", "loud"], "invalid choice: 'loud'"),
        (["--max-rows", "0"], "--max-rows (SERVING_MAX_ROWS) must be at least 1"),
        (["--header-timeout", "0"], "--header-timeout (SERVING_HEADER_TIMEOUT)"),
        (["--reload-interval", "-1"], "--reload-interval (SERVING_RELOAD_INTERVAL)"),
    ],
)
def test_a_bad_flag_is_one_usage_line_naming_the_flag(args, said):
    done = run_cli(*args)
    assert done.returncode == 2 and said in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_fails_at_once_before_the_agent_starts():
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        started = time.monotonic()
        done = run_cli("--port", str(port))
    assert done.returncode == 1 and time.monotonic() - started < 10
    assert done.stderr.strip().splitlines()[-1] == (
        f"serving: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "serving.registry.agent" not in done.stderr and "Traceback" not in done.stderr
