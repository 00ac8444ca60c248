"""Compile the fitted pipeline's encode + classifier steps to ONNX, and prove the two agree.

The artifact written here is the one `serving.model.onnx_format` defines. The `features` step
stays in plain Python (regex titles and the groups' table have no ONNX op): serving derives the
engineered columns with the step's row function and its fitted state (`derive_rows(rows,
state)`, both named by the graph's metadata) and feeds them to the graph as two packed inputs,
one numeric [N, k] tensor and one string [N, m] tensor.

Why double and not float32: scikit-learn's trees compare `float32(x)` with float64 thresholds and
sum the trees' probabilities in float64. float32 mode gets the splits right (skl2onnx rounds each
threshold down to float32) but sums in float32: up to ~8e-7 from scikit-learn's probabilities on
train.csv + test.csv, too close to the 1e-6 tolerance and a risk for labels near 0.5. Double mode
as skl2onnx 1.20 writes it stores the thresholds as float32 attributes after all (a v1
TreeEnsembleClassifier), which sends some rows to other leaves (8e-5 off). So for forests the graph
is fixed up (`_exact_double_trees`): features cast to float32 and back, exact float64 thresholds
and leaf weights as v3 `*_as_tensor` attributes: scikit-learn's comparison, summed in double
(max 3e-8 off, the float32 output). onnxruntime has no double `Imputer` kernel, so the median
imputer becomes `Where(IsNaN(x), medians, x)`. Gradient boosting does not load in double (its v1
ensemble outputs float) and falls back to float32 (3e-7 off, labels identical on the data).
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


def _exact_double_trees(onx: Any, classifier: Any) -> None:
    """Make a double-mode forest compare and sum exactly as scikit-learn does.

    skl2onnx 1.20 writes random forests as TreeEnsembleClassifier v1, whose thresholds and leaf
    weights are float32 attributes: in double mode it moves each threshold to a double `w` for
    double inputs, then rounds `w` to float32, which puts some rows (Fare 7.8875 on the test
    champion) in another leaf. Here the graph casts the features to float32 and back (what
    scikit-learn's trees do) and the ensemble gets the exact float64 thresholds and leaf weights
    as v3 `*_as_tensor` attributes, so `double(float32(x)) <= threshold` is scikit-learn's own
    comparison and the trees are summed in double.
    """
    from onnx import TensorProto, helper, numpy_helper

    trees = [node for node in onx.graph.node if node.op_type == "TreeEnsembleClassifier"]
    if not trees:
        return
    estimators = getattr(classifier, "estimators_", None)
    if len(trees) != 1 or estimators is None or np.ndim(estimators) != 1:
        raise CompileError(f"no exact double conversion for {type(classifier).__name__}")
    node = trees[0]
    attrs = {a.name: a for a in node.attribute}
    if "nodes_values" not in attrs or "class_weights" not in attrs:
        raise CompileError("unexpected TreeEnsembleClassifier attributes")
    tree_ids, node_ids = attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints
    modes = attrs["nodes_modes"].strings
    values = np.zeros(len(tree_ids), dtype=np.float64)
    for k, (t, n, mode) in enumerate(zip(tree_ids, node_ids, modes, strict=True)):
        if mode == b"BRANCH_LEQ":
            values[k] = estimators[t].tree_.threshold[n]
    binary = len(attrs["classlabels_int64s"].ints) == 2  # then only P(class 1), as class id 0
    weights = np.zeros(len(attrs["class_weights"].floats), dtype=np.float64)
    for k, (t, n, c) in enumerate(
        zip(attrs["class_treeids"].ints, attrs["class_nodeids"].ints, attrs["class_ids"].ints,
            strict=True)
    ):  # fmt: skip
        leaf = estimators[t].tree_.value[n, 0]
        weights[k] = leaf[1 if binary else c] / leaf.sum() / len(estimators)
    # The exact values must be what skl2onnx rounded, or the mapping is wrong.
    if not np.allclose(weights, np.asarray(attrs["class_weights"].floats), rtol=1e-6, atol=1e-9):
        raise CompileError("leaf weights do not match the forest (unexpected converter layout)")
    for name in ("nodes_values", "class_weights"):
        node.attribute.remove(attrs[name])
    node.attribute.extend(
        [
            helper.make_attribute("nodes_values_as_tensor", numpy_helper.from_array(values)),
            helper.make_attribute("class_weights_as_tensor", numpy_helper.from_array(weights)),
        ]
    )
    source = node.input[0]
    as_float, as_double = f"{source}_float32", f"{source}_float32_double"
    index = list(onx.graph.node).index(node)
    onx.graph.node.insert(
        index, helper.make_node("Cast", [as_float], [as_double], to=TensorProto.DOUBLE)
    )
    onx.graph.node.insert(
        index, helper.make_node("Cast", [source], [as_float], to=TensorProto.FLOAT)
    )
    node.input[0] = as_double
    for opset in onx.opset_import:
        if opset.domain == "ai.onnx.ml" and opset.version < 3:
            opset.version = 3


def _pack_inputs(onx: Any, numeric: Sequence[str], categorical: Sequence[str]) -> None:
    """Two graph inputs instead of one per column: `numeric` [N, 9] and `categorical` [N, 4].

    skl2onnx names one [N, 1] input per column and concatenates the numeric ones first thing;
    ONNX Runtime converts every input on every run, which costs more than the forest on one row.
    The numeric Concat's output becomes the `numeric` input; a Split of `categorical` feeds the
    per-column names the encoders read. The arithmetic is untouched (parity is checked after).
    """
    from onnx import TensorProto, helper

    graph = onx.graph
    inputs = {i.name: i for i in graph.input}
    concat = next(
        (n for n in graph.node if n.op_type == "Concat" and list(n.input) == list(numeric)), None
    )
    if concat is None or set(inputs) != {*numeric, *categorical}:
        raise CompileError("the graph does not start with its numeric columns' Concat")
    number = inputs[numeric[0]].type.tensor_type.elem_type
    graph.node.remove(concat)
    opset = next((o.version for o in onx.opset_import if o.domain in ("", "ai.onnx")), 1)
    # Split takes its output count as an attribute from opset 18 (before: from the outputs)
    counted = {"num_outputs": len(categorical)} if opset >= 18 else {}
    split = helper.make_node(
        "Split",
        [fmt.CATEGORICAL_INPUT],
        list(categorical),
        axis=1,
        name="split_categorical",
        **counted,
    )
    graph.node.insert(0, split)
    del graph.input[:]
    graph.input.extend(
        [
            helper.make_tensor_value_info(concat.output[0], number, [None, len(numeric)]),
            helper.make_tensor_value_info(
                fmt.CATEGORICAL_INPUT, TensorProto.STRING, [None, len(categorical)]
            ),
        ]
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
    if numeric_dtype == "double":
        _exact_double_trees(onx, model.steps[-1][1])
    outputs = [o.name for o in onx.graph.output]
    if outputs != [fmt.LABEL_OUTPUT, fmt.PROBA_OUTPUT]:
        raise CompileError(f"unexpected ONNX outputs {outputs}")
    _pack_inputs(onx, numeric, categorical)
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
