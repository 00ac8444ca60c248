"""bench/noop_pyfunc.py: a copy of the registered model that MLflow loads and checks as the real
one (same signature) but whose pyfunc answers 0 at once: the ceiling of `mlflow models serve`."""

from __future__ import annotations

import mlflow
import pytest
import yaml

from bench.noop_pyfunc import LOADER, noop_copy


def test_the_copy_keeps_the_models_signature_and_answers_zero_per_row(
    champion_dir, raw_test, tmp_path
) -> None:
    copy = noop_copy(champion_dir, tmp_path / "noop")
    conf = yaml.safe_load((copy / "MLmodel").read_text())
    original = yaml.safe_load((champion_dir / "MLmodel").read_text())
    assert conf["flavors"]["python_function"]["loader_module"] == LOADER
    assert conf["signature"] == original["signature"]
    model = mlflow.pyfunc.load_model(str(copy))
    assert model.predict(raw_test).tolist() == [0] * len(raw_test)
    with pytest.raises(mlflow.exceptions.MlflowException):  # MLflow still checks the input
        model.predict(raw_test.drop(columns=["Sex"]))
