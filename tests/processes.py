"""Real processes for end-to-end tests: free ports, start-and-wait, clean shutdown with logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

from training.config import REPO_ROOT

VENV_BIN = REPO_ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_env(**overrides: str | None) -> dict[str, str]:
    """os.environ with the venv's bin first on PATH; a None override removes the variable."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def wait_for_http(
    url: str, timeout: float, process: subprocess.Popen | None = None, status: int = 200
) -> None:
    """Poll `url` until it answers `status`; fail early if `process` dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was up")
        try:
            answer = requests.get(url, timeout=2)
            if answer.status_code == status:
                return
            last = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    raise TimeoutError(f"{url} not answering {status} after {timeout}s ({last})")


@contextmanager
def running(
    command: Sequence[str],
    ready_url: str,
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until `ready_url` answers 200, yield it, then stop its whole group.

    Output goes to `log`; the log's tail is added to any start-up failure.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_http(ready_url, timeout, process)
        except (RuntimeError, TimeoutError) as exc:
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{exc}\n--- {log.name} ---\n{tail}") from None
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM the process group, then SIGKILL it if it has not ended within `timeout`."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def server_roles(master: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(model agents, gunicorn workers) among a `python -m serving` master's live children."""
    agents, workers = [], []
    for child in psutil.Process(master).children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:  # exited, not reaped yet
                continue
            (agents if "serving.registry.agent" in " ".join(child.cmdline()) else workers).append(
                child
            )
        except psutil.Error:  # exited meanwhile
            continue
    return agents, workers


def mlflow_server_command(backend_store_uri: str, artifacts: Path, port: int) -> list[str]:
    """A real `mlflow server` (one worker) on 127.0.0.1:`port`, proxying artifacts to a dir."""
    return [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
