"""The served champion of the session registry (loaded once per module), its model directory,
a Flask test client, and what MLflow itself predicts for test.csv."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient
from mlflow import MlflowClient

from serving.config import Settings
from serving.rest.app import create_app
from serving.store import ModelStore


@pytest.fixture(scope="module")
def registry(registered_model, tmp_path_factory):
    """A private copy of the session registry with two more versions of the model: one that
    loads (the champion's files) and one whose files do not exist.

    (uri, client, name, original version, good version, nowhere version)
    """
    root = tmp_path_factory.mktemp("registry-copy")
    shutil.copy(registered_model.root / "mlflow.db", root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    name = registered_model.name
    source = client.get_model_version_download_uri(name, registered_model.version)
    good = client.create_model_version(name, source, run_id=None).version
    nowhere = client.create_model_version(name, str(root / "no-such-model"), run_id=None).version
    return uri, client, name, registered_model.version, str(good), str(nowhere)


@pytest.fixture(scope="module")
def store(registered_model) -> Iterator[ModelStore]:
    store = ModelStore(registered_model.champion_uri, registered_model.tracking_uri)
    store.load()
    yield store
    mlflow.set_tracking_uri(None)


@pytest.fixture
def client(store: ModelStore, registered_model) -> FlaskClient:
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri, max_rows=100)
    return create_app(settings, store).test_client()


@pytest.fixture(scope="module")
def expected(registered_model, raw_test: pd.DataFrame) -> pd.DataFrame:
    """What the plain pipeline (the sklearn flavor: the reference every path must equal) says
    about test.csv, row by row; MLflow's pyfunc (the fast flavor) says the same."""
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    try:
        pipeline = mlflow.sklearn.load_model(registered_model.champion_uri)
        positive = list(pipeline.classes_).index(1)
        labels = np.asarray(pipeline.predict(raw_test)).ravel().astype(int)
        pyfunc = mlflow.pyfunc.load_model(registered_model.champion_uri)
        assert np.asarray(pyfunc.predict(raw_test)).ravel().tolist() == labels.tolist()
        return pd.DataFrame(
            {
                "PassengerId": raw_test["PassengerId"],
                "prediction": labels,
                "probability": pipeline.predict_proba(raw_test)[:, positive],
            }
        )
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def model_dir(registered_model, tmp_path_factory) -> Path:
    """The champion's model directory, downloaded."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", registered_model.tracking_uri)
        mlflow.set_tracking_uri(registered_model.tracking_uri)
        try:
            dst = tmp_path_factory.mktemp("champion")
            return Path(
                mlflow.artifacts.download_artifacts(
                    registered_model.champion_uri, dst_path=str(dst)
                )
            )
        finally:
            mlflow.set_tracking_uri(None)
