"""The fast inference path: engineered features in plain Python, then the ONNX graph of the rest.

`training/compile.py` converts the pipeline's steps after `features` (encoding + classifier) to
ONNX and saves it with the logged model as ``extra_files/model.onnx``. Here the `features` step
is taken from the loaded scikit-learn pipeline itself (its code is the model's own copy from
`code_paths`; serving never imports `training`), its `derive_rows` turns typed rows into feature
columns, and onnxruntime runs the graph: no pandas, one thread, about a hundred times faster
than `Pipeline.predict` on one row.

`load_fast_model` only hands out a FastModel that agreed with the scikit-learn pipeline on the
model's logged input example and on a few awkward built-in rows (nulls, unseen categories,
extremes); otherwise it returns None and the reason, and serving keeps the plain model.

Fork safety: an InferenceSession built before gunicorn forks its workers (preload) does answer
in the children (one intra-op thread, no inter-op pool: no threads to lose in the fork), but the
session is still rebuilt lazily in any process other than the one that built it, so no worker
relies on native state copied from its parent.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("serving.fast")

ONNX_PATH = Path("extra_files") / "model.onnx"  # inside the logged model's directory
LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"
PROBA_TOLERANCE = 1e-6
_NUMBER_TYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32}

# Rows the self-check runs besides the logged input example, typed as the contract parser types
# them: what the training data never shows (nulls, unseen categories, extremes, odd names).
PROBE_ROWS: list[dict[str, Any]] = [
    {"Pclass": 3, "Sex": "male"},
    {"Pclass": 1, "Sex": "female", "Name": None, "Age": None, "SibSp": None, "Parch": None,
     "Fare": None, "Cabin": None, "Embarked": None},
    {"Pclass": 2, "Sex": "unknown", "Name": "", "Age": 0.0, "SibSp": 0, "Parch": 0,
     "Fare": 0.0, "Cabin": "", "Embarked": "X"},
    {"Pclass": 1, "Sex": "female", "Name": "Smith, Lady. Jane", "Age": 120.0, "SibSp": 8,
     "Parch": 9, "Fare": 1e6, "Cabin": "Z99 Z100", "Embarked": "C"},
    {"Pclass": 3, "Sex": "male", "Name": "no title at all", "Age": 1e9, "SibSp": 0,
     "Parch": 0, "Fare": 7.2292, "Cabin": "t", "Embarked": "Q"},
    {"Pclass": 2, "Sex": " female ", "Name": "Doe, Master. John", "Age": 0.42, "SibSp": 1,
     "Parch": 2, "Fare": 14.4542, "Cabin": None, "Embarked": "S"},
]  # fmt: skip


class FastModel:
    """ONNX graph + the pipeline's own `features` step: `predict(rows) -> (labels, P(class 1))`.

    Thread-safe (onnxruntime sessions allow concurrent `run`); one session per process.
    """

    def __init__(self, onnx_bytes: bytes, features: Any):
        if not callable(getattr(features, "derive_rows", None)):
            raise TypeError("the pipeline's features step has no derive_rows (an older model?)")
        self._onnx_bytes = onnx_bytes
        self._features = features
        self._lock = threading.Lock()
        self._session = self._new_session()
        self._pid = os.getpid()
        inputs = self._session.get_inputs()
        names = [str(n) for n in features.get_feature_names_out()]
        numeric, categorical = features.derive_rows([{}])
        self.n_numeric, n_categorical = len(numeric[0]), len(categorical[0])
        if [i.name for i in inputs] != names or len(names) != self.n_numeric + n_categorical:
            raise ValueError(
                f"ONNX inputs {[i.name for i in inputs]} do not match the features step {names}"
            )
        types = {i.type for i in inputs[: self.n_numeric]}
        if len(types) != 1 or next(iter(types)) not in _NUMBER_TYPES:
            raise ValueError(f"unexpected numeric input types {types}")
        if any(i.type != "tensor(string)" for i in inputs[self.n_numeric :]):
            raise ValueError("categorical ONNX inputs must be strings")
        self.input_names = names
        self.numeric_dtype = _NUMBER_TYPES[next(iter(types))]
        meta = self._session.get_modelmeta().custom_metadata_map
        classes = [int(c) for c in meta.get("classes", "0,1").split(",")]
        self.positive_column = classes.index(1)

    def _new_session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(self._onnx_bytes, options, providers=["CPUExecutionProvider"])

    @property
    def session(self) -> Any:
        """This process's InferenceSession (rebuilt once after a fork)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._session = self._new_session()
                    self._pid = os.getpid()
        return self._session

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[float]]:
        """Typed rows (as the contract parser makes them) -> (labels, P(survived)) per row."""
        if not rows:
            return [], []
        numeric, categorical = self._features.derive_rows(rows)
        # One contiguous (n, 1) array per input column: transpose first, then slice rows.
        num = np.array(numeric, dtype=np.float64).T.astype(self.numeric_dtype, order="C")
        cat = np.array(categorical, dtype=object).T.copy()
        feed = {}
        for i, name in enumerate(self.input_names):
            column = num[i] if i < self.n_numeric else cat[i - self.n_numeric]
            feed[name] = column.reshape(-1, 1)
        labels, proba = self.session.run([LABEL_OUTPUT, PROBA_OUTPUT], feed)
        return labels.ravel().tolist(), proba[:, self.positive_column].astype(float).tolist()


def _frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame([dict(r) for r in rows])


def _example_rows(example: Any) -> list[dict[str, Any]]:
    """The logged input example (a DataFrame) as typed rows: NaN/NA -> None."""
    if example is None:
        return []
    records = example.to_dict(orient="records") if hasattr(example, "to_dict") else list(example)
    rows = []
    for record in records:
        row = {}
        for key, value in record.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                row[key] = None
            elif isinstance(value, np.generic):
                row[key] = value.item()
            else:
                row[key] = value
        rows.append(row)
    return rows


def self_check(
    fast: FastModel, pipeline: Any, rows: Sequence[Mapping[str, Any]]
) -> tuple[bool, str]:
    """Does `fast` give the pipeline's labels, and probabilities within 1e-6, on `rows`?"""
    frame = _frame(rows)
    expected_labels = [int(v) for v in pipeline.predict(frame)]
    expected_proba = pipeline.predict_proba(frame)[:, fast.positive_column]
    labels, proba = fast.predict(rows)
    if labels != expected_labels:
        bad = sum(a != b for a, b in zip(labels, expected_labels, strict=True))
        return False, f"self-check: {bad} of {len(rows)} labels differ from the sklearn pipeline"
    diff = float(np.max(np.abs(np.asarray(proba) - expected_proba)))
    if not diff <= PROBA_TOLERANCE:
        return False, f"self-check: probabilities differ by up to {diff:.3g} (> {PROBA_TOLERANCE})"
    return True, f"self-check on {len(rows)} rows: labels identical, max |dp| {diff:.2g}"


def _model_files(model_dir_or_uri: str | os.PathLike[str]) -> tuple[Path | None, Any, str]:
    """(local ONNX path or None, input example or None, why not) for a model dir or URI."""
    from mlflow.models import Model

    local = Path(model_dir_or_uri)
    if local.is_dir():
        meta = Model.load(str(local / "MLmodel"))
        onnx_path = local / ONNX_PATH
        example = meta.load_input_example(str(local))
        return (onnx_path if onnx_path.is_file() else None), example, ""
    import mlflow

    uri = str(model_dir_or_uri).rstrip("/")
    meta = Model.load(uri)
    extra = meta.flavors.get("python_function", {}).get("extra_files") or meta.flavors.get(
        "sklearn", {}
    ).get("extra_files", [])
    if not any(Path(f.get("path", "")) == ONNX_PATH for f in extra):
        return None, None, ""
    target = Path(tempfile.mkdtemp(prefix="fast-model-"))
    onnx_local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{uri}/{ONNX_PATH.as_posix()}", dst_path=str(target)
    )
    return Path(onnx_local), meta.load_input_example(uri), ""


def load_fast_model(
    model_dir_or_uri: str | os.PathLike[str], sklearn_pipeline: Any
) -> tuple[FastModel | None, str]:
    """The fast path for a logged model, or (None, reason) to fall back to the plain model.

    `model_dir_or_uri`: the model's local directory (where MLmodel is) or an MLflow model URI
    (``models:/titanic@champion``, ``models:/titanic/3``, ``models:/m-...``).
    `sklearn_pipeline`: the loaded scikit-learn Pipeline (``pyfunc.get_raw_model()``).
    """
    try:
        onnx_path, example, _ = _model_files(model_dir_or_uri)
    except Exception as exc:
        return None, f"cannot read the model's files: {type(exc).__name__}: {exc}"
    if onnx_path is None:
        return None, f"no ONNX fast path ({ONNX_PATH.as_posix()}) in this model"
    try:
        features = sklearn_pipeline.named_steps["features"]
        fast = FastModel(onnx_path.read_bytes(), features)
        ok, reason = self_check(fast, sklearn_pipeline, [*_example_rows(example), *PROBE_ROWS])
    except Exception as exc:
        return None, f"fast path unusable: {type(exc).__name__}: {exc}"
    if not ok:
        return None, reason
    log.info("fast path ready (%s inputs): %s", np.dtype(fast.numeric_dtype).name, reason)
    return fast, f"onnx ({np.dtype(fast.numeric_dtype).name} inputs), {reason}"
