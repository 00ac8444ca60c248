"""Real processes for end-to-end tests: the venv's environment, server roles, `mlflow server`.

The generic helpers (free ports, start-and-wait, clean shutdown with logs) are bench/processes.py's,
shared with the bench, and importable from here as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from bench.processes import free_port, running, stop, wait_for_http
from training.config import REPO_ROOT

__all__ = [
    "VENV_BIN",
    "free_port",
    "mlflow_server_command",
    "running",
    "server_roles",
    "stop",
    "venv_env",
    "wait_for_http",
]

VENV_BIN = REPO_ROOT / ".venv" / "bin"


def venv_env(**overrides: str | None) -> dict[str, str]:
    """os.environ with the venv's bin first on PATH; a None override removes the variable."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def server_roles(master: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """(model agents, workers) among a `python -m serving` master's live children."""
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
