"""Which MLflow tracking server and registry the pipeline talks to.

With MLFLOW_TRACKING_URI unset this is MLflow's own embedded default (`sqlite:///mlflow.db`,
artifacts under `mlruns/`), anchored at the repo root rather than the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient


def tracking_uri(root: Path) -> str:
    """MLFLOW_TRACKING_URI if set, else the embedded store at the repo root.

    That root is `root`, except in a stage that `dvc exp run --temp` or `--queue` runs in a copy
    under .dvc/tmp/exps: DVC then sets DVC_ROOT to the user's repo, whose store must get the
    experiment's version (the copy and its store are deleted afterwards).
    """
    anchor = Path(os.environ.get("DVC_ROOT") or root)
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{anchor / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store live in `mlruns/` beside its database file.

    A tracking server (http, postgres) decides its own artifact store: None.
    """
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlruns").as_uri()


def use_experiment(root: Path, name: str) -> str:
    """Point MLflow at the configured store and return the id of experiment `name`."""
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        experiment_id = client.create_experiment(name, artifact_location=artifact_location(uri))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
