"""Compile the fitted pipeline's encode + classifier steps to ONNX, and prove the two agree.

The `features` step stays in plain Python (regex titles have no ONNX op): serving derives the
engineered columns with `PassengerFeatures.derive_rows` and feeds them to the graph, one named
input per column (double for numeric, string for categorical).

Why double and not float32: scikit-learn's trees compare `float32(x)` with float64 thresholds and
sum the trees' probabilities in float64. In double mode skl2onnx moves each threshold to the
double `w` for which `x <= w` holds exactly when `float32(x) <= threshold` (so the splits are the
same as scikit-learn's), and onnxruntime accumulates the trees in double. float32 mode also gets
the splits right but sums in float32, which on train.csv + test.csv drifts up to ~7e-7 from
scikit-learn's probabilities: too close to the 1e-6 tolerance, and a risk for labels near 0.5.
onnxruntime has no double `Imputer` kernel, so the median imputer is converted here to
`Where(IsNaN(x), medians, x)` in double.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

ONNX_FILE = "model.onnx"  # saved with the logged model as extra_files/model.onnx
LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
PROBA_TOLERANCE = 1e-6
NUMERIC_DTYPES = ("double", "float")  # tried in this order


class CompileError(RuntimeError):
    """The pipeline cannot be converted, or its ONNX graph disagrees with scikit-learn."""


def _double_imputer_converter(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer(NaN -> statistics) as IsNaN + Where, in double when the input is double."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto

    imputer: SimpleImputer = operator.raw_operator
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)) or imputer.add_indicator:
        raise CompileError(f"unsupported SimpleImputer(missing_values={missing!r}, add_indicator)")
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    if np.isnan(statistics).any():  # scikit-learn drops all-NaN columns: shapes would differ
        raise CompileError("SimpleImputer has NaN statistics (an all-missing column)")
    features = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("impute_fill")
    container.add_initializer(
        fill, onnx_proto.TensorProto.DOUBLE, [len(statistics)], statistics.tolist()
    )
    is_nan = scope.get_unique_variable_name("impute_isnan")
    container.add_node("IsNaN", [features], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [is_nan, fill, features],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


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
            custom_conversion_functions={SimpleImputer: _double_imputer_converter},
        )
    except CompileError:
        raise
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        name = type(model.steps[-1][1]).__name__
        raise CompileError(f"skl2onnx cannot convert {name}: {exc}") from exc
    outputs = [o.name for o in onx.graph.output]
    if outputs != [LABEL_OUTPUT, PROBA_OUTPUT]:
        raise CompileError(f"unexpected ONNX outputs {outputs}")
    for key, value in {
        "numeric_inputs": ",".join(numeric),
        "categorical_inputs": ",".join(categorical),
        "numeric_dtype": numeric_dtype,
        "classes": ",".join(str(c) for c in model.classes_),
    }.items():
        onx.metadata_props.add(key=key, value=value)
    return onx.SerializeToString()


def _session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_predict(
    onnx_bytes: bytes, pipeline: Pipeline, rows: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, P(class 1)) from the ONNX graph, features derived in plain Python."""
    numeric_names, categorical_names = feature_columns(pipeline)
    numeric, categorical = pipeline.named_steps["features"].derive_rows(rows)
    session = _session(onnx_bytes)
    dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
    num = np.asarray(numeric, dtype=np.float64).astype(dtype).reshape(len(rows), -1)
    cat = np.asarray(categorical, dtype=object).reshape(len(rows), len(categorical_names))
    feed: dict[str, np.ndarray] = {n: num[:, [i]] for i, n in enumerate(numeric_names)}
    feed.update({n: cat[:, [i]] for i, n in enumerate(categorical_names)})
    labels, proba = session.run([LABEL_OUTPUT, PROBA_OUTPUT], feed)
    return np.asarray(labels).ravel(), np.asarray(proba, dtype=np.float64)[:, 1]


def _records(data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as dicts, with pandas' NaN/NA turned into None like the request parser does."""
    if isinstance(data, pd.DataFrame):
        frame = data.astype(object).where(data.notna(), None)
        return frame.to_dict(orient="records")
    return [dict(row) for row in data]


def check_parity(
    onnx_bytes: bytes, pipeline: Pipeline, data: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Raise CompileError unless labels are identical and P(survived) within PROBA_TOLERANCE."""
    rows = _records(data)
    if not rows:
        raise CompileError("no rows to check parity on")
    frame = pd.DataFrame(rows)
    expected_labels = pipeline.predict(frame)
    expected_proba = pipeline.predict_proba(frame)[:, 1]
    labels, proba = onnx_predict(onnx_bytes, pipeline, rows)
    mismatches = int((labels != expected_labels).sum())
    max_diff = float(np.max(np.abs(proba - expected_proba)))
    if mismatches or not max_diff <= PROBA_TOLERANCE:
        raise CompileError(
            f"ONNX disagrees with scikit-learn on {len(rows)} rows: {mismatches} labels differ, "
            f"max |proba diff| {max_diff:.3g} (tolerance {PROBA_TOLERANCE})"
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
        return onnx_bytes
    raise CompileError("; ".join(failures))
