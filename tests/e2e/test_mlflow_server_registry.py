"""The pipeline against a team registry: a real `mlflow server`, MLFLOW_TRACKING_URI=http://...

The copy must keep nothing locally (no mlflow.db, nothing in mlruns/); the champion is on the
server and loads through it. Then `python -m training.champion` (make serve's ensure step) on a
registry with no champion while the pipeline is cached: it must force the register stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.e2e.repo_copy import DVC, PYTHON, RepoCopy, make_repo_copy
from tests.processes import free_port, mlflow_server_command, running, venv_env

pytestmark = pytest.mark.slow

# A lighter model than params.yaml's: this module tests where things are stored, not the model.
LIGHT = {"train": {"n_estimators": 50}, "evaluate": {"cv_folds": 2}}


@dataclass(frozen=True)
class TeamSetup:
    uri: str
    repo: RepoCopy
    repro_seconds: float


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Iterator[TeamSetup]:
    base = tmp_path_factory.mktemp("team-registry")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = mlflow_server_command(f"sqlite:///{base / 'db.sqlite'}", base / "artifacts", port)
    env = venv_env(MLFLOW_TRACKING_URI=None)
    with running(command, f"{uri}/health", log=base / "server.log", env=env, cwd=base, timeout=120):
        repo = make_repo_copy(base / "repo", tracking_uri=uri, params=LIGHT)
        start = time.monotonic()
        repo.dvc("repro")
        setup = TeamSetup(uri, repo, time.monotonic() - start)
        yield setup
    print(f"\nteam registry: dvc repro against the server {setup.repro_seconds:.1f}s")


def test_the_champion_is_registered_on_the_server(team):
    client = MlflowClient(tracking_uri=team.uri)
    champion = client.get_model_version_by_alias("titanic", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert run.data.tags["git_commit"] == team.repo.git("rev-parse", "HEAD")
    assert run.data.params["train.n_estimators"] == "50"


def test_the_copy_keeps_no_local_store(team):
    root = team.repo.root
    assert not (root / "mlflow.db").exists()
    assert sorted(p.name for p in (root / "mlruns").iterdir()) == [".gitkeep"]
    assert not list(root.rglob("mlflow.db"))


def test_the_champion_loads_through_the_server_and_predicts(team, article_request):
    mlflow.set_tracking_uri(team.uri)
    try:
        model = mlflow.pyfunc.load_model("models:/titanic@champion")
    finally:
        mlflow.set_tracking_uri(None)
    predictions = model.predict(pd.DataFrame(article_request))
    assert len(predictions) == 2 and predictions[0] == 1


def test_ensure_champion_forces_register_when_the_pipeline_is_cached(team, tmp_path):
    """A fresh, empty registry and an up-to-date pipeline: `dvc repro` alone would do nothing."""
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = venv_env(MLFLOW_TRACKING_URI=fresh, PYTHONPATH=None, DVC_EXP_NAME=None)
    assert "up to date" in team.repo.run(DVC, "status", env=env).stdout
    done = team.repo.run(PYTHON, "-m", "training.champion", env=env, timeout=600)
    output = done.stdout + done.stderr
    assert "champion: none registered yet" in output
    assert "Running stage 'register'" in output
    assert "Running stage 'train'" not in output
    assert "dvc push" not in output  # the remote is read-only: no hint to push to it
    assert done.stdout.strip().endswith("champion: version 1")
    client = MlflowClient(tracking_uri=fresh)
    assert str(client.get_model_version_by_alias("titanic", "champion").version) == "1"
    # the team registry is untouched, and a second call trains nothing
    assert len(MlflowClient(tracking_uri=team.uri).search_model_versions("name='titanic'")) == 1
    again = team.repo.run(PYTHON, "-m", "training.champion", env=env, timeout=120)
    assert again.stdout.strip() == "champion: version 1"
