"""training/flavor.py and training/pyfunc_loader.py: the registered model's python_function flavor
runs the fast path wherever it is loaded, proves it against the pipeline's own answers, falls back
(and says so) when that fails, and the model's files hold no pickle; `mlflow.sklearn.load_model`
still gives the fitted Pipeline. Real registry (the session's sqlite), real model directories."""

from __future__ import annotations

import io
import json
import logging
import pickle
import pickletools
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest
import yaml
from mlflow.models import Model
from sklearn.pipeline import Pipeline

from serving.model.onnx_format import CHECK, ONNX_PATH, PROBA_TOLERANCE
from training import flavor
from training.config import REPO_ROOT
from training.pyfunc_loader import RUNTIME_DIR
from training.schema import DOMAIN, TARGET
from training.signature import INPUT_SCHEMA


@pytest.fixture(scope="module")
def pipeline(champion_dir: Path) -> Pipeline:
    """What data scientists load: the sklearn flavor, the fitted Pipeline itself."""
    return mlflow.sklearn.load_model(str(champion_dir))


@pytest.fixture(scope="module")
def passengers(raw_train: pd.DataFrame, raw_test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"train": raw_train.drop(columns=[TARGET]), "test": raw_test}


def mlmodel(model_dir: Path) -> dict:
    return yaml.safe_load((model_dir / "MLmodel").read_text())


def test_the_pyfunc_flavor_loads_the_checked_fast_path(registry_env, champion_dir) -> None:
    assert mlmodel(champion_dir)["flavors"]["python_function"]["loader_module"] == (
        flavor.FAST_LOADER
    )
    model = mlflow.pyfunc.load_model(registry_env.champion_uri)
    impl = model._model_impl
    assert impl.inference == "onnx"
    assert impl.inference_detail.startswith("onnx (float64 inputs), self-check on")
    # the fast path's format and runtime ship as the very files this repo serves with
    shipped = champion_dir / "code" / RUNTIME_DIR / "serving"
    for name in flavor.RUNTIME_FILES:
        assert (shipped / name).read_bytes() == (REPO_ROOT / "serving" / name).read_bytes(), name
    assert {p.relative_to(shipped).as_posix() for p in shipped.rglob("*.py")} == set(
        flavor.RUNTIME_FILES
    )


@pytest.mark.parametrize("csv", ["train", "test"])
def test_pyfunc_predict_equals_the_plain_pipeline_on_every_row(
    registry_env, pipeline, passengers, csv
) -> None:
    model = mlflow.pyfunc.load_model(registry_env.champion_uri)
    frame = passengers[csv]
    labels = model.predict(frame)
    assert labels.dtype == np.int64
    assert labels.tolist() == pipeline.predict(frame).tolist()
    answered = model.predict(frame, params={"proba": True})
    assert list(answered.columns) == ["prediction", "probability"]
    assert answered["prediction"].tolist() == labels.tolist()
    expected = pipeline.predict_proba(frame)[:, list(pipeline.classes_).index(1)]
    assert np.max(np.abs(answered["probability"].to_numpy() - expected)) <= PROBA_TOLERANCE
    # one passenger at a time, as a server mostly sees them, and with optional columns absent
    if csv == "test":
        assert [int(model.predict(frame.iloc[[i]])[0]) for i in range(len(frame))] == (
            labels.tolist()
        )
        few = frame[["Pclass", "Sex", "Age"]]
        assert model.predict(few).tolist() == pipeline.predict(few).tolist()


def test_mlflow_sklearn_still_loads_the_fitted_pipeline(registry_env, pipeline) -> None:
    assert isinstance(mlflow.sklearn.load_model(registry_env.champion_uri), Pipeline)
    assert isinstance(mlflow.pyfunc.load_model(registry_env.champion_uri).get_raw_model(), Pipeline)
    assert [name for name, _ in pipeline.steps] == ["features", "encode", "classifier"]


def _fail_the_check(model_dir: Path) -> None:
    """Rewrite the graph's recorded answers so that no runtime can reproduce them."""
    graph = onnx.load(str(model_dir / ONNX_PATH))
    for prop in graph.metadata_props:
        if prop.key == CHECK:
            check = json.loads(prop.value)
            check["labels"] = [1 - label for label in check["labels"]]
            prop.value = json.dumps(check)
    (model_dir / ONNX_PATH).write_bytes(graph.SerializeToString())


def test_a_model_whose_onnx_check_fails_falls_back_and_says_so(
    champion_dir, pipeline, passengers, tmp_path, caplog
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(champion_dir, copy)
    _fail_the_check(copy)
    with caplog.at_level(logging.WARNING, logger="training.pyfunc_loader"):
        model = mlflow.pyfunc.load_model(str(copy))
    impl = model._model_impl
    assert impl.inference == "sklearn" and impl.fast is None
    assert "self-check" in impl.inference_detail and "labels differ" in impl.inference_detail
    warned = [r for r in caplog.records if r.name == "training.pyfunc_loader"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "scikit-learn pipeline, not ONNX" in warned[0].getMessage()
    assert impl.inference_detail in warned[0].getMessage()
    frame = passengers["test"]
    assert model.predict(frame).tolist() == pipeline.predict(frame).tolist()
    answered = model.predict(frame, params={"proba": True})
    assert np.allclose(answered["probability"], pipeline.predict_proba(frame)[:, 1], atol=1e-12)


def test_a_model_without_its_onnx_file_falls_back(champion_dir, passengers, tmp_path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(champion_dir, copy)
    (copy / ONNX_PATH).unlink()
    impl = mlflow.pyfunc.load_model(str(copy))._model_impl
    assert impl.inference == "sklearn" and "no ONNX fast path" in impl.inference_detail


# Loads the model where this repo is not installed (no editable finder, no repo on sys.path, a
# working directory elsewhere), as MLflow's own virtualenv or MLServer's would: it prints which
# runtime and code it ran, whether scikit-learn was imported, and its labels for test.csv.
FOREIGN = """
import json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [p for p in sys.path if "site-packages" in p or not p.startswith({repo!r})]
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model({model!r})
labels = model.predict(pd.read_csv({csv!r})).tolist()
print(json.dumps({{
    "inference": model._model_impl.inference,
    "runtime": sys.modules["serving.model.fast"].__file__,
    "loader": sys.modules["training.pyfunc_loader"].__file__,
    "sklearn": "sklearn" in sys.modules,
    "labels": labels,
}}))
"""


def test_the_model_runs_its_fast_path_where_this_repo_is_not_installed(
    champion_dir, pipeline, raw_test, tmp_path
) -> None:
    script = FOREIGN.format(
        repo=str(REPO_ROOT), model=str(champion_dir), csv=str(REPO_ROOT / "data/raw/test.csv")
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["inference"] == "onnx"
    assert Path(seen["runtime"]).is_relative_to(champion_dir / "code" / RUNTIME_DIR)
    assert Path(seen["loader"]).is_relative_to(champion_dir / "code" / "training")
    assert not seen["sklearn"]  # the fast path needs no scikit-learn
    assert seen["labels"] == pipeline.predict(raw_test).tolist()


def is_pickle(data: bytes) -> bool:
    """Does `data` read as a pickle of any protocol (a header of protocol 2+, or a whole stream
    of opcodes that ends with STOP on its last byte)?"""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    try:
        ops = list(pickletools.genops(data))
    except Exception:
        return False
    return bool(ops) and ops[-1][0].name == "STOP" and ops[-1][2] == len(data) - 1


def pickles_in(name: str, data: bytes) -> list[str]:
    """`name` if it is a pickle, or its members that are (a zip's, recursively); a .npy array
    that needs pickle to load (object dtype) counts as one."""
    found = [name] if is_pickle(data) else []
    if name.endswith(".npy"):
        try:
            np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            found.append(name)
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                found += pickles_in(f"{name}!{member}", archive.read(member))
    return found


def test_nothing_in_the_model_files_is_a_pickle(champion_dir) -> None:
    files = sorted(p for p in champion_dir.rglob("*") if p.is_file())
    assert {"MLmodel", "model.skops", "model.onnx", "fast.py", "passenger.py"} <= {
        p.name for p in files
    }
    found = [
        hit
        for path in files
        for hit in pickles_in(str(path.relative_to(champion_dir)), path.read_bytes())
    ]
    assert found == []
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib", ".cloudpickle"}]
    flavors = mlmodel(champion_dir)["flavors"]
    assert flavors["sklearn"]["serialization_format"] == "skops"
    assert "python_model" not in flavors["python_function"]  # no cloudpickled PythonModel
    # and the detector does find pickles, of every protocol
    for protocol in range(6):
        assert pickles_in("x", pickle.dumps({"a": [1, 2.0]}, protocol=protocol))
    assert pickles_in("x.npy", _npy(np.array([{"a": 1}], dtype=object)))


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def test_the_registered_model_carries_the_training_domain(registry_env) -> None:
    """MLmodel's `metadata: {domain: ...}`, as a server reads it from a registered version."""
    local = mlflow.artifacts.download_artifacts(
        f"models:/{registry_env.name}/{registry_env.version}/MLmodel"
    )
    domain = yaml.safe_load(Path(local).read_text())["metadata"]["domain"]
    assert domain == DOMAIN
    assert domain["Pclass"] == {"values": [1, 2, 3]}
    assert domain["Sex"] == {"values": ["male", "female"]}
    assert domain["Embarked"] == {"values": ["C", "Q", "S"]}
    assert domain["Age"] == {"min": 0, "max": 120} and domain["Fare"] == {"min": 0}
    assert domain["SibSp"] == domain["Parch"] == {"min": 0, "max": 20}
    assert set(domain) <= set(INPUT_SCHEMA.input_names())
    assert not set(domain) & {"Name", "Cabin", "Ticket", "PassengerId"}
    for entry in domain.values():
        assert set(entry) in ({"values"}, {"min"}, {"max"}, {"min", "max"})


def test_the_fast_flavor_requires_onnxruntime_pinned(champion_dir) -> None:
    from importlib import metadata

    required = (champion_dir / "requirements.txt").read_text().split()
    assert f"onnxruntime=={metadata.version('onnxruntime')}" in required


def test_a_model_without_a_fast_path_keeps_the_plain_pyfunc(pipeline, passengers, tmp_path) -> None:
    path = tmp_path / "plain"
    flavor.save_model(str(path), Model(), pipeline, None, signature=False)
    conf = mlmodel(path)["flavors"]
    assert conf["python_function"]["loader_module"] == flavor.PLAIN_LOADER
    assert not (path / "code" / RUNTIME_DIR).exists() and not (path / ONNX_PATH).exists()
    model = mlflow.pyfunc.load_model(str(path))
    assert (
        model.predict(passengers["test"]).tolist() == pipeline.predict(passengers["test"]).tolist()
    )


def test_a_plain_copy_serves_the_pipeline_as_before_the_fast_flavor(
    registry_env, champion_dir, pipeline, passengers, tmp_path, capsys
) -> None:
    """`python -m training.flavor plain URI DIR`: the bench's reference of what users had."""
    output = tmp_path / "plain"
    flavor.main(["plain", registry_env.champion_uri, str(output)])
    assert str(output) in capsys.readouterr().out
    conf = mlmodel(output)["flavors"]
    assert conf["python_function"]["loader_module"] == "mlflow.sklearn"
    assert conf["sklearn"] == mlmodel(champion_dir)["flavors"]["sklearn"]
    model = mlflow.pyfunc.load_model(str(output))
    assert type(model._model_impl).__module__ == "mlflow.sklearn"
    frame = passengers["test"]
    assert model.predict(frame).tolist() == pipeline.predict(frame).tolist()
    with pytest.raises(FileExistsError):
        flavor.plain_copy(registry_env.champion_uri, output)
