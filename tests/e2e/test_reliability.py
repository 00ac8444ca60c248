"""Reliability over HTTP against the real server: hot model swap under load, a refused version, an
operator reload, the registry down at start and later, a SIGKILLed worker, the 504 time limit.

Every test uses its own copy of the session registry (sqlite), where it registers two more
versions of the champion's logged model: `good` (the same artifacts, a new registry version) and
`broken` (a copy of the artifacts whose skops file is garbage: it cannot load).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
import requests
from mlflow import MlflowClient

from tests.conftest import CONTRACT_REQUEST
from tests.processes import (
    free_port,
    mlflow_server_command,
    running,
    server_roles,
    venv_env,
    wait_for_http,
)
from training.config import REPO_ROOT

pytestmark = pytest.mark.slow

INTERVAL = 1  # --reload-interval of the servers here (seconds)
TOKEN = "e2e-admin-token-5f3a"
BODY = CONTRACT_REQUEST.read_bytes()
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Registry:
    root: Path
    db: Path
    uri: str
    name: str
    original: str  # the session champion's version
    good: str  # a new version of the same logged model
    broken: str  # a version whose artifacts cannot load

    def move(self, version: str) -> float:
        MlflowClient(tracking_uri=self.uri).set_registered_model_alias(
            self.name, "champion", version
        )
        return time.monotonic()


def copy_registry(registered_model, root: Path) -> Registry:
    db = root / "mlflow.db"
    shutil.copy(registered_model.root / "mlflow.db", db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    name = registered_model.name
    original = client.get_model_version_by_alias(name, "champion")
    artifacts = Path(urlparse(client.get_model_version_download_uri(name, original.version)).path)
    good = client.create_model_version(name, str(artifacts), run_id=original.run_id)
    broken_dir = root / "broken-model"
    shutil.copytree(artifacts, broken_dir)
    skops = list(broken_dir.rglob("*.skops"))
    assert skops, f"no skops file under {broken_dir}"
    for path in skops:
        path.write_bytes(b"this is not a model")
    broken = client.create_model_version(name, str(broken_dir), run_id=original.run_id)
    versions = (str(v.version) for v in (original, good, broken))
    return Registry(root, db, uri, name, *versions)


@pytest.fixture(scope="module")
def registry(registered_model, tmp_path_factory) -> Registry:
    return copy_registry(registered_model, tmp_path_factory.mktemp("reliability-registry"))


@pytest.fixture(scope="module")
def server(serve, registry):
    with serve(registry.uri, reload_interval=INTERVAL, load_retry_seconds=0.5,
               load_retry_max_seconds=2) as server:  # fmt: skip
        yield server


@dataclass
class Load:
    """`connections` threads, each POSTing /predict back to back over its own Session."""

    url: str
    connections: int = 8
    results: list[tuple[float, str, str | None]] = field(default_factory=list)  # t, status, ver
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                answer = session.post(self.url + "/predict", data=BODY, headers=JSON, timeout=30)
                status, version = str(answer.status_code), answer.headers.get("X-Model-Version")
            except requests.RequestException as exc:
                status, version = type(exc).__name__, None
            self.results.append((time.monotonic(), status, version))

    def __enter__(self) -> Load:
        for _ in range(self.connections):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def failures(self) -> list[tuple[float, str, str | None]]:
        return [r for r in self.results if r[1] != "200"]


def versions_seen(url: str, asks: int = 8) -> set[str]:
    """The versions a few /version answers report (the requests spread over the workers)."""
    return {requests.get(url + "/version", timeout=10).json()["version"] for _ in range(asks)}


def wait_all_serve(
    url: str, version: str, timeout: float = 60, still_loading_ok: bool = False
) -> float:
    """Seconds until 8 answers in a row (so: every worker) carry X-Model-Version `version`.

    Every answer must be a 200, except, with `still_loading_ok`, a 503 `model_not_ready` from a
    worker whose own first load has not finished yet (each worker loads for itself).
    """
    started = time.monotonic()
    streak = 0
    while time.monotonic() - started < timeout:
        answer = requests.post(url + "/predict", data=BODY, headers=JSON, timeout=10)
        if still_loading_ok and answer.status_code == 503:
            assert answer.json()["error"]["code"] == "model_not_ready", answer.text
            streak = 0
            time.sleep(0.05)
            continue
        assert answer.status_code == 200, answer.text
        streak = streak + 1 if answer.headers["X-Model-Version"] == version else 0
        if streak >= 8:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not every worker serves version {version} after {timeout} s")


def log_lines(log: Path, text: str) -> list[dict]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and text in line:
            lines.append(json.loads(line))
    return lines


def worker_pids(server) -> set[int]:
    """The server's live workers: the master's children but the model agent."""
    return {worker.pid for worker in server_roles(server.process.pid)[1]}


# -- 1. hot swap ------------------------------------------------------------------------------


def test_hot_swap_under_load_fails_no_request_and_a_broken_version_is_refused(server, registry):
    assert versions_seen(server.url) == {registry.original}
    with Load(server.url) as load:
        started = time.monotonic()
        time.sleep(3)
        moved_good = registry.move(registry.good)
        time.sleep(9)
        moved_broken = registry.move(registry.broken)
        time.sleep(max(0.0, started + 20 - time.monotonic()))
    results = load.results
    assert load.failures() == [], f"{len(load.failures())} of {len(results)} requests failed"
    last_old = max(t for t, _, version in results if version == registry.original)
    first_new = min(t for t, _, version in results if version == registry.good)
    switch = last_old - moved_good
    # every worker serves the new version within a few intervals (a load takes ~1-3 s here)
    assert first_new > moved_good and switch < 3 * INTERVAL + 10
    assert {v for t, _, v in results if t > last_old} == {registry.good}
    after_broken = [v for t, _, v in results if t > moved_broken + 0.5]
    assert after_broken and set(after_broken) == {registry.good}
    print(
        f"\nhot swap: {len(results)} requests over {results[-1][0] - started:.1f} s with 8 "
        f"connections, {len(load.failures())} failed; alias moved -> first answer from "
        f"v{registry.good} after {first_new - moved_good:.2f} s, last answer from "
        f"v{registry.original} after {switch:.2f} s"
    )

    # the refused version: the old model keeps serving and /ready says so; /version says why
    time.sleep(3 * INTERVAL)  # several polls of both workers with the alias on the broken one
    assert requests.get(server.url + "/ready", timeout=10).status_code == 200
    for _ in range(4):
        answer = requests.get(server.url + "/version", timeout=10).json()
        assert answer["version"] == registry.good
        refused = answer["reload"]["refused"]
        assert refused["version"] == registry.broken
        assert "not a zip file" in refused["reason"]  # the garbage skops file
    refusals = log_lines(server.log, '"event":"model_refused"')
    # one refusal per worker, not one per poll (plus at most one from a replaced worker)
    assert 1 <= len(refusals) <= 2, refusals
    assert all(line["version"] == registry.broken for line in refusals)

    # rolling back is moving the alias back
    moved_back = registry.move(registry.original)
    rollback = wait_all_serve(server.url, registry.original)
    print(f"rollback: every worker serves v{registry.original} {rollback:.2f} s after the move")
    assert time.monotonic() - moved_back < 3 * INTERVAL + 15


# -- 1b. operator reload ----------------------------------------------------------------------


def test_admin_reload_needs_the_token_and_reaches_every_worker(serve, registered_model, tmp_path):
    registry = copy_registry(registered_model, tmp_path)
    # no polling: only the operator's reload can move this server
    with pytest.MonkeyPatch.context() as patch, _admin_server(serve, registry, patch) as server:
        url = server.url + "/admin/reload"
        assert requests.post(url, timeout=10).status_code == 401
        wrong = requests.post(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"

        registry.move(registry.good)
        time.sleep(2)
        assert versions_seen(server.url) == {registry.original}  # polling is off
        started = time.monotonic()
        ok = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"] == "swapped" and ok.json()["version"] == registry.good
        every = wait_all_serve(server.url, registry.good, timeout=20)
        print(f"\nadmin reload: every worker serves v{registry.good} {every:.2f} s after the call")
        assert time.monotonic() - started < 20

        registry.move(registry.broken)
        refused = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert refused.status_code == 422 and refused.json()["result"] == "refused"
        assert refused.json()["refused"]["version"] == registry.broken
        # The refused version is served nowhere: every worker keeps the good one.
        assert versions_seen(server.url) == {registry.good}
    assert TOKEN not in server.log.read_text(errors="replace")


@contextmanager
def _admin_server(serve, registry: Registry, patch: pytest.MonkeyPatch) -> Iterator:
    patch.setenv("SERVING_ADMIN_TOKEN", TOKEN)  # the server's env: never a flag
    with serve(registry.uri, reload_interval=0) as server:
        yield server


# -- 2. registry faults -----------------------------------------------------------------------


def test_registry_down_at_start_then_back_then_down_again(serve, registered_model, tmp_path):
    registry = copy_registry(registered_model, tmp_path)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with serve(uri, ready_path="/health", reload_interval=INTERVAL, load_retry_seconds=0.5,
               load_retry_max_seconds=2) as server:  # fmt: skip
        # until the agent's first poll, the worker says it waits for the agent; then, why
        reasons = []
        for _ in range(60):
            down = requests.get(server.url + "/ready", timeout=10)
            assert down.status_code == 503
            reasons.append(down.json()["reason"])
            if "unreachable" in reasons[-1]:
                break
            time.sleep(0.25)
        assert "the registry is unreachable" in reasons[-1], reasons
        assert all("waiting for the model agent" in r for r in reasons[:-1]), reasons
        time.sleep(4)  # a few retries: the server stays up, no crash loop
        assert server.process.poll() is None
        assert requests.get(server.url + "/health", timeout=10).status_code == 200

        command = mlflow_server_command(f"sqlite:///{registry.db}", tmp_path / "artifacts", port)
        env = venv_env(MLFLOW_TRACKING_URI=None)
        mlflow_log = tmp_path / "mlflow-server.log"
        with running(command, f"{uri}/health", log=mlflow_log, env=env, cwd=tmp_path, timeout=120):
            registry_up, registry_up_wall = time.monotonic(), time.time()
            wait_for_http(server.url + "/ready", timeout=30, process=server.process)
            to_ready = time.monotonic() - registry_up
            every = wait_all_serve(server.url, registry.original, timeout=30, still_loading_ok=True)
            print(
                f"\nregistry back: /ready 200 {to_ready:.2f} s after the registry answered, "
                f"every worker serving {every:.2f} s later (retry cap 2 s)"
            )
            loads = log_lines(server.log, '"loaded models:/')
            load_seconds = max(float(line["message"].split()[-2]) for line in loads)
            print(f"registry back: the load itself took {load_seconds:.1f} s")
            assert to_ready < 2 + load_seconds + 3  # within one capped retry, plus the load
        # the registry is gone again: keep serving, log the failed polls once per streak
        with Load(server.url, connections=2) as load:
            time.sleep(6 * INTERVAL)
        assert load.results and load.failures() == []
        assert requests.get(server.url + "/ready", timeout=10).status_code == 200
        answer = requests.get(server.url + "/version", timeout=10).json()
        assert answer["reload"]["registry"]["reachable"] is False
        assert answer["reload"]["registry"]["failed_polls"] >= 3
        failed = [
            line
            for line in log_lines(server.log, '"event":"registry_unreachable"')
            if line["ts"] >= registry_up_wall  # this streak only, not the one at start
        ]
        assert 1 <= len(failed) <= 2, failed  # once per worker, not once per poll
        print(
            f"registry down again: {len(load.results)} requests in 6 s, 0 failed; "
            f"{len(failed)} 'registry poll failed' lines for "
            f"{answer['reload']['registry']['failed_polls']}+ failed polls"
        )


# -- 3. worker faults -------------------------------------------------------------------------


def test_a_sigkilled_worker_is_replaced_while_the_others_answer(server, registry):
    registry.move(registry.original)
    wait_all_serve(server.url, registry.original)
    before = worker_pids(server)
    assert len(before) == 2
    victim, survivor = sorted(before)
    with Load(server.url, connections=2) as load:
        time.sleep(1)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(worker_pids(server) - before) < 1:
            time.sleep(0.1)
        replaced = time.monotonic() - killed
        time.sleep(1)
    (replacement,) = worker_pids(server) - before
    answered_meanwhile = [r for r in load.results if r[0] > killed and r[1] == "200"]
    # what fails is what the killed worker held as it died: each client's request in flight, and
    # a retry that reached the dying worker's own socket before it closed (a few ms)
    failures = load.failures()
    assert len(failures) <= 4, failures
    assert all(killed <= at < killed + 0.1 for at, _, _ in failures), failures
    assert answered_meanwhile
    # the replacement serves: with the survivor stopped, every answer comes from it (each worker
    # listens on a socket of its own, so the stopped one's share of new connections waits)
    os.kill(survivor, signal.SIGSTOP)
    try:
        answers = []
        for _ in range(12):
            try:
                answers.append(requests.post(server.url + "/predict", data=BODY,
                                             headers=JSON, timeout=2))  # fmt: skip
            except requests.Timeout:
                continue
        assert answers, "no request was answered with the survivor stopped"
        assert {(a.status_code, a.headers["X-Model-Version"]) for a in answers} == {
            (200, registry.original)
        }
    finally:
        os.kill(survivor, signal.SIGCONT)
    assert psutil.pid_exists(replacement)
    print(
        f"\nSIGKILL: replacement worker up {replaced:.2f} s after the kill; "
        f"{len(load.results)} requests, {len(load.failures())} failed"
    )


def test_a_request_over_the_time_limit_gets_a_504_and_the_worker_lives_on(serve, registry):
    test_csv = (REPO_ROOT / "data" / "raw" / "test.csv").read_bytes()  # 418 rows
    with serve(registry.uri, workers=1, request_timeout=0.0005, reload_interval=0) as server:
        pids = worker_pids(server)
        started = time.monotonic()
        answer = requests.post(
            server.url + "/invocations", data=test_csv, headers={"Content-Type": "text/csv"},
            timeout=30,
        )  # fmt: skip
        assert answer.status_code == 504, answer.text
        error = answer.json()  # MLflow's shape on /invocations
        assert error["error_code"] == "DEADLINE_EXCEEDED" and "0.0005" in error["message"]
        assert time.monotonic() - started < 10
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
        assert requests.get(server.url + "/ready", timeout=10).status_code == 200
        assert worker_pids(server) == pids  # the same worker answered: not killed, not hung
    with serve(registry.uri, workers=1, reload_interval=0) as server:
        answer = requests.post(
            server.url + "/invocations", data=test_csv, headers={"Content-Type": "text/csv"},
            timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 418
