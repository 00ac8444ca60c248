"""Shared fixtures: the raw data, and a real MLflow registry (sqlite in a temp dir) with a champion.

`registered_model` trains the real pipeline once per session into its own temp registry; tests that
need MLflow to talk to it use `registry_env`, which points MLFLOW_TRACKING_URI there.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from training import evaluate, prepare, register, train
from training.config import REPO_ROOT, Paths

SHARED = REPO_ROOT.parent / "shared"
CONTRACT_REQUEST = SHARED / "contract" / "predict_request.json"


@dataclass(frozen=True)
class RegisteredModel:
    """A registry holding one trained version of `name`, aliased champion."""

    root: Path  # a temp repo layout: params.yaml, data/, models/, metrics/
    tracking_uri: str
    name: str
    version: str

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.name}@champion"


@pytest.fixture(scope="session")
def raw_train() -> pd.DataFrame:
    return pd.read_csv(REPO_ROOT / "data" / "raw" / "train.csv")


@pytest.fixture(scope="session")
def raw_test() -> pd.DataFrame:
    return pd.read_csv(REPO_ROOT / "data" / "raw" / "test.csv")


@pytest.fixture(scope="session")
def article_request() -> dict:
    """The article's /predict body, byte for byte from shared/contract."""
    return json.loads(CONTRACT_REQUEST.read_text())


# What a temp layout changes in the repo's params.yaml: one CV repeat (5 fits, not 50) keeps the
# tests quick, and a layout is no git checkout, so its runs may take the champion alias.
LAYOUT_PARAMS = {"evaluate": {"cv_repeats": 1}, "register": {"allow_uncommitted_champion": True}}


def set_params(paths: Paths, changes: dict[str, dict]) -> None:
    """Update blocks of the layout's params.yaml ({"train": {"C": 0.5}})."""
    path = paths.root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for block, values in changes.items():
        params.setdefault(block, {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_layout(root: Path) -> Paths:
    """A minimal repo layout under `root` for running the stages in-process."""
    (root / "data" / "raw").mkdir(parents=True)
    for name in ("train.csv", "test.csv"):
        shutil.copy(REPO_ROOT / "data" / "raw" / name, root / "data" / "raw" / name)
    shutil.copy(REPO_ROOT / "data" / "raw.dvc", root / "data" / "raw.dvc")
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    paths = Paths(root=root)
    set_params(paths, LAYOUT_PARAMS)
    return paths


def run_pipeline(paths: Paths) -> dict:
    """prepare -> train -> evaluate -> register, in-process; returns the registration record."""
    prepare.main(paths)
    train.main(paths)
    evaluate.main(paths)
    register.main(paths)
    return json.loads(paths.registration.read_text())


@pytest.fixture(scope="session")
def registered_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisteredModel]:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        record = run_pipeline(make_layout(root))
    mlflow.set_tracking_uri(None)
    yield RegisteredModel(
        root=root, tracking_uri=uri, name=record["name"], version=record["version"]
    )


@pytest.fixture(scope="session")
def champion_dir(
    registered_model: RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The registered champion's model directory, downloaded from the registry once (read only:
    a test that changes it works on a copy)."""
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                registered_model.champion_uri, dst_path=str(tmp_path_factory.mktemp("champion"))
            )
        )
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def registry_env(
    registered_model: RegisteredModel, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegisteredModel]:
    """Point MLflow (env and client state) at the session's registry for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered_model.tracking_uri)
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    yield registered_model
    mlflow.set_tracking_uri(None)


# A challenger that answers differently from the champion on some rows: a shallow forest.
CHALLENGER_TRAIN = {"model": "random_forest", "n_estimators": 10, "max_depth": 3}


@dataclass(frozen=True)
class TwoVersions:
    """A registry (a copy of the session's) where `champion` and `challenger` are two different
    trained versions of `name`."""

    root: Path
    tracking_uri: str
    name: str
    champion: str
    challenger: str


@pytest.fixture(scope="session")
def two_versions(
    registered_model: RegisteredModel, tmp_path_factory: pytest.TempPathFactory
) -> TwoVersions:
    root = tmp_path_factory.mktemp("two-versions")
    shutil.copy(registered_model.root / "mlflow.db", root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    paths = make_layout(root / "layout")
    set_params(paths, {"train": CHALLENGER_TRAIN})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        record = run_pipeline(paths)
    mlflow.set_tracking_uri(None)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = registered_model.name
    client.set_registered_model_alias(name, "champion", registered_model.version)
    client.set_registered_model_alias(name, "challenger", record["version"])
    return TwoVersions(root, uri, name, registered_model.version, record["version"])
