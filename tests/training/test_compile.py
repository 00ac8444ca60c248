"""training/compile.py: the ONNX graph of encode + classifier agrees with sklearn, per family."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from serving.model.onnx_format import PROBA_TOLERANCE
from training.compile import (
    CompileError,
    check_parity,
    compile_to_onnx,
    convert,
    onnx_predict,
)
from training.config import Paths, TrainParams
from training.features import NUMERIC_FEATURES, PassengerFeatures
from training.register import fast_path_file
from training.schema import TARGET
from training.train import fit, load_model


@pytest.fixture(scope="module")
def all_rows(raw_train: pd.DataFrame, raw_test: pd.DataFrame) -> pd.DataFrame:
    """Every passenger of train.csv and test.csv, without the label."""
    return pd.concat([raw_train.drop(columns=[TARGET]), raw_test], ignore_index=True)


def metadata(onnx_bytes: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}


def assert_parity(onnx_bytes: bytes, pipeline: Pipeline, rows: pd.DataFrame) -> float:
    labels, proba = onnx_predict(onnx_bytes, pipeline, rows.to_dict(orient="records"))
    assert labels.tolist() == pipeline.predict(rows).tolist()
    diff = float(np.max(np.abs(proba - pipeline.predict_proba(rows)[:, 1])))
    assert diff <= PROBA_TOLERANCE
    return diff


def test_derive_rows_matches_transform(raw_train: pd.DataFrame, all_rows: pd.DataFrame) -> None:
    step = PassengerFeatures().fit(raw_train.drop(columns=[TARGET]), raw_train[TARGET])
    assert step.state_["groups"]  # the fitted groups' table is in play
    numeric, categorical = step.derive_rows(all_rows.to_dict(orient="records"))
    frame = step.transform(all_rows)
    np.testing.assert_array_equal(np.array(numeric), frame.iloc[:, : len(numeric[0])].to_numpy())
    assert categorical == frame.iloc[:, len(numeric[0]) :].to_numpy().tolist()
    assert step.derive_rows([]) == ([], [])


def test_champion_random_forest_compiles_in_double_with_exact_labels(
    registered_model, all_rows: pd.DataFrame
) -> None:
    pipeline = load_model(Paths(root=registered_model.root).model)
    onnx_bytes = compile_to_onnx(pipeline, all_rows)
    meta = metadata(onnx_bytes)
    assert meta["numeric_dtype"] == "double"
    assert meta["classes"] == "0,1"
    diff = assert_parity(onnx_bytes, pipeline, all_rows)
    assert diff < 1e-7  # double sums: only the float32 output cast is left


def test_float32_conversion_also_splits_like_sklearn(
    registered_model, all_rows: pd.DataFrame
) -> None:
    """float32 gets identical labels too, but its float32 sums drift further (the reason for
    double): the check keeps it honest within the tolerance."""
    pipeline = load_model(Paths(root=registered_model.root).model)
    onnx_bytes = convert(pipeline, "float")
    assert metadata(onnx_bytes)["numeric_dtype"] == "float"
    assert_parity(onnx_bytes, pipeline, all_rows)


@pytest.mark.parametrize(
    ("family", "dtype"), [("gradient_boosting", "float"), ("logistic_regression", "double")]
)
def test_other_families_compile_with_parity(
    family: str, dtype: str, raw_train: pd.DataFrame, all_rows: pd.DataFrame
) -> None:
    pipeline = fit(raw_train, TrainParams(model=family, n_estimators=100))
    onnx_bytes = compile_to_onnx(pipeline, all_rows)
    # skl2onnx writes gradient boosting as TreeEnsembleClassifier v1 (float only): float32 it is
    assert metadata(onnx_bytes)["numeric_dtype"] == dtype
    assert_parity(onnx_bytes, pipeline, all_rows)


class Unconvertible(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has no converter for."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=int)

    def predict_proba(self, X):
        return np.tile([1.0, 0.0], (len(X), 1))


def unconvertible_pipeline(raw_train: pd.DataFrame) -> Pipeline:
    pipeline = fit(raw_train, TrainParams(model="logistic_regression"))
    return Pipeline([*pipeline.steps[:-1], ("classifier", Unconvertible().fit(None, None))])


def test_unconvertible_family_raises_compile_error(raw_train: pd.DataFrame) -> None:
    with pytest.raises(CompileError, match="Unconvertible"):
        compile_to_onnx(unconvertible_pipeline(raw_train), raw_train.head(5))


def test_parity_check_rejects_a_graph_of_another_model(
    raw_train: pd.DataFrame, all_rows: pd.DataFrame
) -> None:
    forest = fit(raw_train, TrainParams(model="random_forest", n_estimators=20))
    linear = fit(raw_train, TrainParams(model="logistic_regression"))
    with pytest.raises(CompileError, match="labels differ"):
        check_parity(convert(linear), forest, all_rows)


def test_registration_survives_a_model_without_fast_path(raw_train: pd.DataFrame, tmp_path):
    assert fast_path_file(unconvertible_pipeline(raw_train), raw_train, tmp_path) is None
    assert not list(tmp_path.iterdir())


def test_registered_version_carries_the_onnx_file(registry_env, tmp_path) -> None:
    client = MlflowClient()
    version = client.get_model_version(registry_env.name, registry_env.version)
    assert version.tags["fast_path"] == "onnx"
    uri = f"models:/{registry_env.name}/{registry_env.version}"
    assert Model.load(uri).flavors["sklearn"]["extra_files"] == [{"path": "extra_files/model.onnx"}]
    local = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path))
    onnx_bytes = (tmp_path / local / "extra_files" / "model.onnx").read_bytes()
    meta = metadata(onnx_bytes)
    assert meta["numeric_dtype"] == "double"
    # the fitted groups' table travels in the graph, as compact JSON equal to the model's own
    state = load_model(Paths(root=registry_env.root).model).named_steps["features"].state_
    assert json.loads(meta["features_state"]) == state and state["groups"]
    assert meta["features_state"] == json.dumps(state, separators=(",", ":"), sort_keys=True)


def test_the_graph_takes_one_numeric_and_one_string_input(raw_train: pd.DataFrame) -> None:
    """Two inputs, not one per column: ONNX Runtime converts each input on every run."""
    pipeline = fit(raw_train, TrainParams(model="random_forest", n_estimators=10))
    onnx_bytes = compile_to_onnx(pipeline, raw_train.head(50))
    assert metadata(onnx_bytes)["input_layout"] == "packed"
    graph = onnx.load_from_string(onnx_bytes).graph
    shapes = {
        i.name: (i.type.tensor_type.elem_type, [d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in graph.input
    }
    numeric, strings = graph.input
    assert shapes[numeric.name] == (onnx.TensorProto.DOUBLE, [0, len(NUMERIC_FEATURES)])
    assert shapes[strings.name] == (onnx.TensorProto.STRING, [0, 4])
