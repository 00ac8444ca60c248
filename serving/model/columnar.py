"""The fast path fed a whole chunk at once: batch scoring's entry point to the ONNX graph.

The server derives each request's features row by row (serving.model.fast). A batch job derives
them for a whole chunk with the row function's columnar twin, ``derive_columns`` in the same file
of the model's own code (numpy and pyarrow, imported when called), and runs the graph once per
chunk. `load_columnar` hands out a `ColumnarModel` only if that twin gives the row function's
features exactly (bit for bit) on the graph's check rows; a model whose code has no twin
(registered before it existed) is scored through `FastModel.predict` instead. The parity of the
two functions on every row of the data is proven by tests/training/test_derive_columns.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.contract import InputSpec
from serving.model import onnx_format as fmt
from serving.model.fast import FastModel, load_rows_function, new_session

# (typed columns, row count) -> (numeric [N, k] array, categorical [N, m] object array)
ColumnsFunction = Callable[[Mapping[str, Any], int], tuple[np.ndarray, np.ndarray]]
COLUMNS_FUNCTION = "derive_columns"  # the row function's columnar twin, in the same code file


class ColumnarModel:
    """The batch entry point: a chunk's typed columns -> (labels, P(survived)) as arrays.

    The engineered features of the whole chunk come from the model's own `derive_columns` (with
    the features step's state), and the graph runs once per chunk. `threads`: ONNX Runtime's
    intra-op threads for this model's own session (1: the fast path's session is shared).
    """

    def __init__(self, fast: FastModel, derive_columns: ColumnsFunction, threads: int = 1):
        self.fast = fast
        self._derive_columns = derive_columns
        self._session = new_session(fast.onnx_bytes, threads) if threads > 1 else None

    def features(self, columns: Mapping[str, Any], size: int) -> tuple[np.ndarray, np.ndarray]:
        """Typed columns (Arrow arrays: numbers null or NaN when missing, strings null when
        missing; an absent column is all missing) -> the graph's two inputs."""
        return self._derive_columns(columns, size)

    def predict_features(
        self, numeric: np.ndarray, categorical: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The graph on prepared inputs: (int64 labels, float64 P(survived))."""
        if len(numeric) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        fast = self.fast
        number, strings = fast.input_names
        feed = {number: numeric.astype(fast.numeric_dtype, copy=False), strings: categorical}
        session = self._session if self._session is not None else fast.session
        labels, proba = session.run([fmt.LABEL_OUTPUT, fmt.PROBA_OUTPUT], feed)
        return (
            np.asarray(labels).ravel().astype(np.int64, copy=False),
            np.asarray(proba)[:, fast.positive_column].astype(np.float64),
        )

    def predict_columns(
        self, columns: Mapping[str, Any], size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Typed columns -> (int64 labels, float64 P(survived)), one per row."""
        return self.predict_features(*self.features(columns, size))


def rows_as_columns(rows: Sequence[Mapping[str, Any]], spec: InputSpec) -> dict[str, Any]:
    """Typed rows (as the contract parser makes them) -> Arrow arrays by the signature's kinds
    (numbers float64, strings string; absent cells null): what a batch chunk is typed into."""
    import pyarrow as pa

    columns = {}
    for column in spec.columns:
        cells = [row.get(column.name) for row in rows]
        if column.type.numeric:
            columns[column.name] = pa.array(
                [None if v is None else float(v) for v in cells], pa.float64()
            )
        else:
            columns[column.name] = pa.array(cells, getattr(pa, column.type.arrow)())
    return columns


def _same_features(
    got: tuple[np.ndarray, np.ndarray], rows: tuple[list[list[float]], list[list[str]]]
) -> bool:
    numeric, categorical = got
    expected = np.array(rows[0], dtype=np.float64).reshape(numeric.shape)
    strings = np.array(rows[1], dtype=object).reshape(categorical.shape)
    bits = numeric.view(np.int64) == expected.view(np.int64)
    return bool((bits | (np.isnan(numeric) & np.isnan(expected))).all()) and bool(
        (categorical == strings).all()
    )


def load_columnar(
    fast: FastModel, model_dir: str | os.PathLike[str], spec: InputSpec, threads: int = 1
) -> tuple[ColumnarModel | None, str]:
    """The batch entry point of a loaded fast path, or (None, why not): the model's code must
    have `derive_columns`, and it must give the row function's features exactly (bit for bit)
    on the graph's check rows."""
    meta = fast.metadata
    try:
        function = load_rows_function(Path(model_dir), meta[fmt.FEATURES_CODE], COLUMNS_FUNCTION)
    except AttributeError:
        return None, (
            f"the model's feature code has no {COLUMNS_FUNCTION} (registered before it "
            "existed): features are derived row by row"
        )
    except Exception as exc:
        return None, f"no columnar features: {type(exc).__name__}: {str(exc)[:300]}"
    state = json.loads(meta[fmt.FEATURES_STATE]) if fmt.FEATURES_STATE in meta else None
    columnar = ColumnarModel(fast, lambda columns, size: function(columns, state, size), threads)
    rows = json.loads(meta[fmt.CHECK])["rows"]
    try:
        same = _same_features(
            columnar.features(rows_as_columns(rows, spec), len(rows)), fast.features(rows)
        )
    except Exception as exc:
        return None, f"{COLUMNS_FUNCTION} fails on the check rows: {type(exc).__name__}: {exc}"
    if not same:
        return None, f"{COLUMNS_FUNCTION} differs from the row function on the check rows"
    return columnar, f"{COLUMNS_FUNCTION}: the row function's features on {len(rows)} check rows"
