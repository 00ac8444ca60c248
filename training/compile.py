"""Compile the fitted pipeline's encode + classifier steps to ONNX, and prove the two agree.

The artifact written here is the one `serving.model.onnx_format` defines. The `features` step
stays in plain Python (regex titles and the groups' table have no ONNX op): serving derives the
engineered columns with the step's row function and its fitted state (`derive_rows(rows,
state)`, both named by the graph's metadata) and feeds them to the graph as two packed inputs,
one numeric [N, k] tensor and one string [N, m] tensor. The graph's fix-ups for scikit-learn's
exact answers, and the packing, are training/onnx_graph.py's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from serving.model import onnx_format as fmt
from serving.model.fast import FastModel
from training.features import records
from training.onnx_graph import (
    CompileError,
    double_imputer_converter,
    exact_double_trees,
    pack_inputs,
)

ONNX_FILE = fmt.ONNX_FILE  # the file name register.py logs the graph under (extra_files/)
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
NUMERIC_DTYPES = ("double", "float")  # tried in this order
CHECK_EXAMPLES = 8  # rows of the verification data whose answers the graph carries (see below)
# Rows the compiled graph also carries the pipeline's answers for: what the training data never
# shows (nulls, unseen categories, extremes, odd names), typed as the request parser types them.
CHECK_ROWS: list[dict[str, Any]] = [
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
    # tickets: none, blank, unseen, and real ones written differently (punctuation, case)
    {"Pclass": 3, "Sex": "female", "Name": "Sage, Miss. Ada", "Fare": 69.55, "Ticket": None},
    {"Pclass": 3, "Sex": "male", "Name": "Sage, Master. Tom", "Fare": 69.55, "Ticket": "  "},
    {"Pclass": 3, "Sex": "female", "Name": "Nobody, Mrs. X", "Ticket": "NO SUCH 0"},
    {"Pclass": 3, "Sex": "male", "Name": "Andersson, Master. Sigvard", "Ticket": "347082"},
    {"Pclass": 3, "Sex": "female", "Name": "Goodwin, Miss. Jessie", "Ticket": "c.a. 2144"},
    {"Pclass": 1, "Sex": "female", "Name": "X, Mrs. Y", "Ticket": "pc17599", "Fare": None},
]  # fmt: skip


def feature_columns(pipeline: Pipeline) -> tuple[list[str], list[str]]:
    """(numeric, categorical) engineered column names, in the order `derive_rows` returns them."""
    features = pipeline.named_steps["features"]
    names = [str(n) for n in features.get_feature_names_out()]
    numeric, categorical = features.derive_rows([{}])
    if len(numeric[0]) + len(categorical[0]) != len(names):
        raise CompileError("the features step's names and derived columns disagree")
    return names[: len(numeric[0])], names[len(numeric[0]) :]


def convert(pipeline: Pipeline, numeric_dtype: str = "double") -> bytes:
    """The ONNX graph of every step after `features` (numeric inputs in `numeric_dtype`)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    if pipeline.steps[0][0] != "features":
        raise CompileError("the pipeline's first step must be `features`")
    numeric, categorical = feature_columns(pipeline)
    model = Pipeline(pipeline.steps[1:])
    number = {"double": DoubleTensorType, "float": FloatTensorType}[numeric_dtype]
    initial_types = [(name, number([None, 1])) for name in numeric] + [
        (name, StringTensorType([None, 1])) for name in categorical
    ]
    try:
        onx = convert_sklearn(
            model,
            initial_types=initial_types,
            options={id(model.steps[-1][1]): {"zipmap": False}},
            target_opset=TARGET_OPSET,
            custom_conversion_functions={SimpleImputer: double_imputer_converter},
        )
    except CompileError:
        raise
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        name = type(model.steps[-1][1]).__name__
        raise CompileError(f"skl2onnx cannot convert {name}: {exc}") from exc
    if numeric_dtype == "double":
        exact_double_trees(onx, model.steps[-1][1])
    outputs = [o.name for o in onx.graph.output]
    if outputs != [fmt.LABEL_OUTPUT, fmt.PROBA_OUTPUT]:
        raise CompileError(f"unexpected ONNX outputs {outputs}")
    pack_inputs(onx, numeric, categorical)
    for key, value in {
        fmt.INPUT_LAYOUT: fmt.PACKED_LAYOUT,
        fmt.NUMERIC_INPUTS: ",".join(numeric),
        fmt.CATEGORICAL_INPUTS: ",".join(categorical),
        fmt.NUMERIC_DTYPE: numeric_dtype,
        fmt.CLASSES: ",".join(str(c) for c in model.classes_),
    }.items():
        onx.metadata_props.add(key=key, value=value)
    return onx.SerializeToString()


def onnx_predict(
    onnx_bytes: bytes, pipeline: Pipeline, rows: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, P(class 1)) from the ONNX graph, run by the serving fast path's own code
    (`serving.model.fast.FastModel`) with the pipeline's features step deriving its inputs."""
    fast = FastModel(onnx_bytes, pipeline.named_steps["features"].derive_rows)
    labels, proba = fast.predict(rows)
    return np.asarray(labels), np.asarray(proba, dtype=np.float64)


def check_parity(
    onnx_bytes: bytes, pipeline: Pipeline, data: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Raise CompileError unless labels are identical and P(survived) within PROBA_TOLERANCE."""
    rows = records(data)
    if not rows:
        raise CompileError("no rows to check parity on")
    frame = pd.DataFrame(rows)
    expected_labels = pipeline.predict(frame)
    expected_proba = pipeline.predict_proba(frame)[:, 1]
    labels, proba = onnx_predict(onnx_bytes, pipeline, rows)
    mismatches = int((labels != expected_labels).sum())
    max_diff = float(np.max(np.abs(proba - expected_proba)))
    if mismatches or not max_diff <= fmt.PROBA_TOLERANCE:
        raise CompileError(
            f"ONNX disagrees with scikit-learn on {len(rows)} rows: {mismatches} labels differ, "
            f"max |proba diff| {max_diff:.3g} (tolerance {fmt.PROBA_TOLERANCE})"
        )
    return {"rows": float(len(rows)), "label_mismatches": 0.0, "max_proba_diff": max_diff}


def compile_to_onnx(
    pipeline: Pipeline, verify_on: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> bytes:
    """ONNX bytes for `pipeline`'s steps after `features`, checked against it on `verify_on`.

    Double inputs first (exact splits, double sums); float32 if double does not convert or load
    (skl2onnx 1.20 writes gradient boosting with TreeEnsembleClassifier v1, float only). Raises
    CompileError when neither gives identical labels and probabilities within 1e-6.
    """
    failures = []
    for numeric_dtype in NUMERIC_DTYPES:
        try:
            onnx_bytes = convert(pipeline, numeric_dtype)
            check_parity(onnx_bytes, pipeline, verify_on)
        except Exception as exc:
            failures.append(f"{numeric_dtype}: {exc}")
            continue
        return with_serving_metadata(onnx_bytes, pipeline, records(verify_on)[:CHECK_EXAMPLES])
    raise CompileError("; ".join(failures))


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def with_serving_metadata(
    onnx_bytes: bytes, pipeline: Pipeline, examples: Sequence[Mapping[str, Any]]
) -> bytes:
    """The graph plus what a server needs to run it without scikit-learn, as metadata:

    - `features_code` / `features_function`: where, under the logged model's `code/` directory,
      the plain-Python function that derives the graph's inputs from raw rows lives (the
      features step's `rows_function`, in a module that imports nothing beyond the standard
      library);
    - `features_state`: the features step's fitted state (`state_`, the travelling groups'
      table) as compact JSON: the row function's second argument, `derive_rows(rows, state)`;
    - `check`: rows (`examples` from the data plus CHECK_ROWS) with the pipeline's own labels and
      P(class 1) for them, so that a server proves the graph + code it loaded answer as the
      registered pipeline does before it serves them.
    """
    import onnx

    step = pipeline.named_steps["features"]
    function = getattr(step, "rows_function", None)
    if function is None:
        raise CompileError("the features step has no rows_function for the serving fast path")
    module = function.__module__
    rows = [{k: _plain(v) for k, v in row.items()} for row in [*examples, *CHECK_ROWS]]
    frame = pd.DataFrame(rows)
    positive = list(pipeline.classes_).index(1)
    check = {
        "rows": rows,
        "labels": [int(v) for v in pipeline.predict(frame)],
        "probabilities": [float(p) for p in pipeline.predict_proba(frame)[:, positive]],
    }
    onx = onnx.load_from_string(onnx_bytes)
    for key, value in {
        fmt.FEATURES_CODE: module.replace(".", "/") + ".py",
        fmt.FEATURES_FUNCTION: function.__name__,
        fmt.FEATURES_STATE: json.dumps(
            getattr(step, "state_", None), separators=(",", ":"), sort_keys=True
        ),
        fmt.CHECK: json.dumps(check),
    }.items():
        onx.metadata_props.add(key=key, value=value)
    return onx.SerializeToString()
