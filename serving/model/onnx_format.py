"""The fast path's artifact, defined once: what `training/compile.py` writes, `fast.py` reads.

A logged model that has a fast path carries ``extra_files/model.onnx``: the fitted pipeline's
steps after `features` (encoding and classifier) as one ONNX graph with two inputs, all numeric
engineered features packed in one [N, k] tensor and all categorical ones in one [N, m] string
tensor, and two outputs, the label and the class probabilities. Its metadata (`metadata_props`)
names everything a server needs to run it without scikit-learn:

- `input_layout` = "packed", `numeric_inputs` / `categorical_inputs`: the engineered column names
  of each tensor, comma-separated, in order; `numeric_dtype`: "double" or "float";
- `classes`: the classifier's classes, comma-separated (the probability columns' order);
- `features_code` / `features_function`: the file under the model's own ``code/`` copy, and the
  function in it, that derives the two tensors' rows from raw rows (standard library only);
- `features_state` (when the features step is fitted): its learnt state as JSON, which the
  function takes as a second argument, ``derive_rows(rows, state)``;
- `check`: JSON ``{"rows": [...], "labels": [...], "probabilities": [...]}``, the registered
  pipeline's own answers on a set of rows, which a server reproduces before it serves the graph.
"""

from __future__ import annotations

from pathlib import Path

ONNX_FILE = "model.onnx"
ONNX_PATH = Path("extra_files") / ONNX_FILE  # inside the logged model's directory
CODE_DIR = "code"  # the model's own copy of its code (MLflow code_paths)

LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"
CATEGORICAL_INPUT = "categorical"  # the packed string input (the numeric one keeps its name)
PACKED_LAYOUT = "packed"

INPUT_LAYOUT = "input_layout"
NUMERIC_INPUTS = "numeric_inputs"
CATEGORICAL_INPUTS = "categorical_inputs"
NUMERIC_DTYPE = "numeric_dtype"
CLASSES = "classes"
FEATURES_CODE = "features_code"
FEATURES_FUNCTION = "features_function"
FEATURES_STATE = "features_state"
CHECK = "check"
SERVING_KEYS = (FEATURES_CODE, FEATURES_FUNCTION, CHECK)  # what an older graph may lack

# The fast path serves only if it gives the pipeline's labels exactly, and its probabilities
# within this, on every check row.
PROBA_TOLERANCE = 1e-6
