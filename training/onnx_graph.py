"""The fix-ups skl2onnx's graph needs to give scikit-learn's answers in double precision, and the
packing of its inputs into the two tensors the fast path feeds (training/compile.py calls them).

Why double and not float32: scikit-learn's trees compare `float32(x)` with float64 thresholds and
sum the trees' probabilities in float64. float32 mode gets the splits right (skl2onnx rounds each
threshold down to float32) but sums in float32: up to ~8e-7 from scikit-learn's probabilities on
train.csv + test.csv, too close to the 1e-6 tolerance and a risk for labels near 0.5. Double mode
as skl2onnx 1.20 writes it stores the thresholds as float32 attributes after all (a v1
TreeEnsembleClassifier), which sends some rows to other leaves (8e-5 off). So for forests the graph
is fixed up (`exact_double_trees`): features cast to float32 and back, exact float64 thresholds
and leaf weights as v3 `*_as_tensor` attributes: scikit-learn's comparison, summed in double
(max 3e-8 off, the float32 output). onnxruntime has no double `Imputer` kernel, so the median
imputer becomes `Where(IsNaN(x), medians, x)`. Gradient boosting does not load in double (its v1
ensemble outputs float) and falls back to float32 (3e-7 off, labels identical on the data).

Packing (`pack_inputs`): the converted graph has one input per engineered column; it is rewritten
to take one numeric [N, k] and one string [N, m] tensor (one tensor per column cost 0.1 ms a
call, packed 0.06 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer

from serving.model import onnx_format as fmt


class CompileError(RuntimeError):
    """The pipeline cannot be converted, or its ONNX graph disagrees with scikit-learn."""


def double_imputer_converter(scope: Any, operator: Any, container: Any) -> None:
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


def exact_double_trees(onx: Any, classifier: Any) -> None:
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


def pack_inputs(onx: Any, numeric: Sequence[str], categorical: Sequence[str]) -> None:
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
