"""`python -m training.champion --set N`: a rollback from any working directory, in a real registry
(a private copy of the session's sqlite store), run as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.processes import venv_env


@pytest.fixture
def registry(registered_model, tmp_path):
    """(uri, client, name, original version, a second version of the same files)"""
    root = tmp_path / "registry"
    root.mkdir()
    shutil.copy(registered_model.root / "mlflow.db", root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    name = registered_model.name
    source = client.get_model_version_download_uri(name, registered_model.version)
    second = client.create_model_version(name, source, run_id=None).version
    return uri, client, name, registered_model.version, str(second)


def champion(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


def run_champion(uri: str, cwd, *args: str) -> subprocess.CompletedProcess:
    """`python -m training.champion ...` from `cwd` (not the repo), on the registry at `uri`."""
    return subprocess.run(
        [sys.executable, "-m", "training.champion", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=venv_env(MLFLOW_TRACKING_URI=uri),
        timeout=120,
    )


def test_set_moves_the_champion_to_that_version(registry, tmp_path):
    uri, client, name, original, second = registry
    assert champion(client, name) == original
    done = run_champion(uri, tmp_path, "--set", second)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"champion: version {second} (was {original})"
    assert champion(client, name) == second
    back = run_champion(uri, tmp_path, "--set", original)  # and back: a rollback
    assert back.returncode == 0, back.stderr
    assert champion(client, name) == original


def test_set_refuses_a_version_that_does_not_exist_in_one_line(registry, tmp_path):
    uri, client, name, original, _ = registry
    done = run_champion(uri, tmp_path, "--set", "99")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"champion: {name} has no version 99 in {uri}; nothing moved"
    ]
    assert champion(client, name) == original
