"""serving/model/fast.py: the ONNX fast path returns exactly the registered champion's predictions,
and proves it (against the answers the registered pipeline recorded) before it serves."""

from __future__ import annotations

import json
import math
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.model.fast import FastModel, load_fast_model
from serving.model.onnx_format import ONNX_PATH
from training.compile import CHECK_ROWS

TOLERANCE = 1e-6
INTS = ("Pclass", "SibSp", "Parch")
FLOATS = ("Age", "Fare")
STRINGS = ("Name", "Sex", "Cabin", "Embarked", "Ticket")


def contract_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the contract parser types them: int, float or None, str or None."""
    rows = []
    for record in frame.to_dict(orient="records"):
        row: dict[str, Any] = {}
        for key, value in record.items():
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            if key in INTS:
                row[key] = None if missing else int(value)
            elif key in FLOATS:
                row[key] = None if missing else float(value)
            elif key in STRINGS:
                row[key] = None if missing else str(value)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def champion(model_dir: Path) -> Any:
    pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    fast, reason = load_fast_model(model_dir)
    assert fast is not None, reason
    assert reason.startswith("onnx (float64 inputs), self-check on")
    return pyfunc, pyfunc.get_raw_model(), fast


def assert_parity(pipeline: Any, fast: FastModel, rows: list[dict[str, Any]]) -> None:
    labels, proba = fast.predict(rows)
    frame = pd.DataFrame(rows)
    assert labels == pipeline.predict(frame).tolist()
    expected = pipeline.predict_proba(frame)[:, 1]
    assert np.max(np.abs(np.asarray(proba) - expected)) <= TOLERANCE


@pytest.mark.parametrize("csv", ["train", "test"])
def test_every_passenger_matches_the_registered_model(
    champion, raw_train: pd.DataFrame, raw_test: pd.DataFrame, csv: str
) -> None:
    pyfunc, pipeline, fast = champion
    frame = raw_train if csv == "train" else raw_test
    rows = contract_rows(frame)
    labels, proba = fast.predict(rows)
    assert labels == pipeline.predict(frame).tolist()
    signature_frame = frame[pyfunc.metadata.get_input_schema().input_names()]
    assert labels == [int(v) for v in pyfunc.predict(signature_frame)]  # the fast flavor too
    expected = pipeline.predict_proba(frame)[:, 1]
    assert np.max(np.abs(np.asarray(proba) - expected)) <= TOLERANCE
    # one row at a time, as /predict mostly sees them
    one = [fast.predict([row]) for row in rows]
    assert [lab[0] for lab, _ in one] == labels
    assert [p[0] for _, p in one] == proba


def test_the_graph_carries_the_pipelines_answers_on_awkward_rows(champion) -> None:
    _, pipeline, fast = champion
    check = json.loads(fast.metadata["check"])
    assert check["rows"][-len(CHECK_ROWS) :] == CHECK_ROWS
    frame = pd.DataFrame(check["rows"])
    assert check["labels"] == pipeline.predict(frame).tolist()
    assert check["probabilities"] == pipeline.predict_proba(frame)[:, 1].tolist()
    assert fast.predict([]) == ([], [])
    assert_parity(pipeline, fast, CHECK_ROWS)


def test_the_fast_path_loads_without_mlflow_sklearn_or_pandas(model_dir: Path) -> None:
    """What a serving worker imports to load and run the champion (a fresh interpreter)."""
    script = (
        "import sys; from pathlib import Path; from serving.model.fast import load_fast_model\n"
        f"fast, reason = load_fast_model(Path({str(model_dir)!r}))\n"
        "assert fast is not None, reason\n"
        "fast.predict([{'Pclass': 1, 'Sex': 'female'}])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    imported = set(json.loads(done.stdout.strip().replace("'", '"')))
    assert "onnxruntime" in imported
    assert not imported & {"mlflow", "sklearn", "pandas", "skops", "scipy"}


def near_thresholds(pipeline: Any) -> list[float]:
    """Doubles on both sides of a forest's Age/Fare thresholds, where float32 rounding bites (for
    another family: of the imputed medians and a range of ages and fares)."""
    classifier = pipeline.named_steps["classifier"]
    if hasattr(classifier, "estimators_"):
        cuts = [
            threshold
            for tree in classifier.estimators_[:20]
            for feature, threshold in zip(tree.tree_.feature, tree.tree_.threshold, strict=True)
            if feature in (1, 2)  # Age, Fare after the encoder (numeric columns first)
        ]
    else:
        imputer = pipeline.named_steps["encode"].named_transformers_["numeric"]["impute"]
        cuts = [*imputer.statistics_[1:3], *np.linspace(0.0, 600.0, 40)]
    values = set()
    for threshold in cuts:
        f32 = np.float32(threshold)
        values.update(
            float(v)
            for v in (
                threshold,
                np.nextafter(threshold, -np.inf),
                np.nextafter(threshold, np.inf),
                f32,
                np.nextafter(f32, np.float32(-np.inf)),
                np.nextafter(f32, np.float32(np.inf)),
            )
        )
    return sorted(values)


def test_values_at_the_split_thresholds_match(champion) -> None:
    _, pipeline, fast = champion
    values = near_thresholds(pipeline)
    assert len(values) > 100
    rows = [{"Pclass": 3, "Sex": "male", "Age": v, "Fare": v, "SibSp": 0, "Parch": 0}
            for v in values] + [{"Pclass": 1, "Sex": "female", "Age": v, "Fare": 30.0, "Parch": 1}
                                for v in values]  # fmt: skip
    assert_parity(pipeline, fast, rows)


text = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "male", "female", "S", "C", "Q", "x", "C85", "B5 B7", "T"]),
    st.text(max_size=12),
    st.text(max_size=6).map(lambda s: f"Doe, {s}. John"),
    st.sampled_from(["Smith, Mr. John", "Roe, the Countess. of X", "Sir", "Mr.", ", Mlle."]),
)
number = st.one_of(
    st.none(),
    st.sampled_from([0.0, 0.42, 120.0, 1e9, -1.0, 1e6, 7.2292, 512.3292, 14.4542, 28.0]),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
integer = st.one_of(st.sampled_from([0, 1, 2, 3, 8]), st.integers(-(2**31), 2**31))
# Tickets of real travelling groups of train.csv (some written differently), and any text.
ticket = st.one_of(
    text,
    st.sampled_from(["347082", "CA. 2343", "CA 2144", "3101295", "347088", "382652", "1601",
                     "S.O.C. 14879", "pc 17599", "113760", "19950", "W./C. 6608", "2666"]),
)  # fmt: skip
OPTIONAL = {"Name": text, "Age": number, "SibSp": st.one_of(st.none(), integer),
            "Parch": st.one_of(st.none(), integer), "Fare": number, "Cabin": text,
            "Embarked": text, "Ticket": ticket}  # fmt: skip


@st.composite
def contract_row(draw: st.DrawFn) -> dict[str, Any]:
    row = {"Pclass": draw(integer), "Sex": draw(text)}
    for key, strategy in OPTIONAL.items():
        if draw(st.booleans()):  # optional columns may be absent altogether
            row[key] = draw(strategy)
    return row


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(contract_row(), min_size=1, max_size=12))
def test_generated_rows_match(champion, rows: list[dict[str, Any]]) -> None:
    _, pipeline, fast = champion
    assert_parity(pipeline, fast, rows)


def _predict_in_child(fast: FastModel, rows: list[dict[str, Any]], queue: Any) -> None:
    queue.put((fast.predict(rows), fast._pid == multiprocessing.current_process().pid))


def test_fast_model_answers_after_fork(champion) -> None:
    """A model loaded before a fork answers in the child, on a session of its own."""
    _, _, fast = champion
    expected = fast.predict(CHECK_ROWS)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_predict_in_child, args=(fast, CHECK_ROWS, queue))
    child.start()
    result, own_session = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert result == expected
    assert own_session


def test_model_without_onnx_falls_back(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / ONNX_PATH).unlink()
    fast, reason = load_fast_model(copy)
    assert fast is None
    assert "no ONNX fast path" in reason


def test_onnx_of_another_model_fails_the_self_check(
    model_dir: Path, tmp_path: Path, raw_train: pd.DataFrame
) -> None:
    """Another forest's graph, with this model's code reference and recorded answers."""
    import onnx

    from training.compile import convert
    from training.config import TrainParams
    from training.train import fit

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    ours = onnx.load(str(model_dir / ONNX_PATH))
    other = onnx.load_from_string(
        convert(fit(raw_train, TrainParams(model="random_forest", n_estimators=5, seed=7)))
    )
    carried = {"features_code", "features_function", "check"}
    for prop in ours.metadata_props:
        if prop.key in carried:
            other.metadata_props.add(key=prop.key, value=prop.value)
    (copy / ONNX_PATH).write_bytes(other.SerializeToString())
    fast, reason = load_fast_model(copy)
    assert fast is None
    assert reason.startswith("fast path unusable: ValueError: self-check:")


def test_a_graph_compiled_without_serving_metadata_falls_back(
    champion, model_dir: Path, tmp_path: Path
) -> None:
    from training.compile import convert

    _, pipeline, _ = champion
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / ONNX_PATH).write_bytes(convert(pipeline))
    fast, reason = load_fast_model(copy)
    assert fast is None
    assert "lacks features_code, features_function, check" in reason


def test_missing_feature_code_falls_back(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "code" / "training" / "passenger.py").unlink()
    fast, reason = load_fast_model(copy)
    assert fast is None
    assert reason.startswith("fast path unusable: FileNotFoundError")


def test_unreadable_location_falls_back(tmp_path: Path) -> None:
    fast, reason = load_fast_model(tmp_path / "nowhere")
    assert fast is None
    assert "no ONNX fast path" in reason
