"""Which MLflow store the pipeline uses: the env var, else the embedded sqlite at the repo root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.processes import venv_env
from training.config import REPO_ROOT
from training.tracking import artifact_location, tracking_uri, use_experiment


def test_embedded_default_is_the_sqlite_db_at_the_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking_uri(REPO_ROOT) == f"sqlite:///{REPO_ROOT}/mlflow.db"
    assert tracking_uri(REPO_ROOT).startswith("sqlite:////")  # four slashes: an absolute path


def test_a_dvc_temp_experiment_uses_the_store_of_the_users_repo(monkeypatch, tmp_path):
    """`dvc exp run --temp` runs the stages in a copy under .dvc/tmp/exps and sets DVC_ROOT to
    the user's repo: its version must land in that repo's store, not in the deleted copy."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    copy = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    assert tracking_uri(copy) == f"sqlite:///{tmp_path}/repo/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert tracking_uri(copy) == "http://127.0.0.1:5001"


def test_an_empty_env_var_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:5001", "sqlite:////elsewhere/db.sqlite", "postgresql://u@h/db"]
)
def test_the_env_var_wins(monkeypatch, tmp_path, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking_uri(tmp_path) == uri


def test_the_default_does_not_depend_on_the_working_directory(tmp_path):
    """Run from another cwd, in a fresh interpreter: still the repo root's mlflow.db."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from training.config import Paths; from training.tracking import tracking_uri;"
            " print(tracking_uri(Paths().root))",
        ],
        cwd=tmp_path,
        env=venv_env(MLFLOW_TRACKING_URI=None, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == f"sqlite:///{REPO_ROOT}/mlflow.db"


def test_artifacts_live_in_mlruns_beside_a_sqlite_db(tmp_path):
    assert artifact_location(f"sqlite:///{tmp_path}/mlflow.db") == (tmp_path / "mlruns").as_uri()
    nested = tmp_path / "a" / "b" / "db.sqlite"
    assert artifact_location(f"sqlite:///{nested}") == (tmp_path / "a" / "b" / "mlruns").as_uri()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "postgresql://u@h/db", "databricks"])
def test_a_server_chooses_its_own_artifact_store(uri):
    assert artifact_location(uri) is None


def test_use_experiment_creates_it_once_with_artifacts_beside_the_db(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    root = tmp_path / "repo"
    root.mkdir()
    try:
        first = use_experiment(root, "titanic-test")
        assert use_experiment(root, "titanic-test") == first
        assert mlflow.get_tracking_uri() == f"sqlite:///{root}/mlflow.db"
        experiment = MlflowClient().get_experiment(first)
        assert experiment.artifact_location == (root / "mlruns").as_uri()
        with mlflow.start_run(experiment_id=first) as run:
            mlflow.log_text("hello", "note.txt")
        assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(root / "mlruns")
    finally:
        mlflow.set_tracking_uri(None)
    assert (root / "mlflow.db").exists()
    assert not (elsewhere / "mlflow.db").exists() and not (elsewhere / "mlruns").exists()
