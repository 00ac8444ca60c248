"""Typed columns -> the DataFrame the scikit-learn pipeline reads, with the signature's dtypes.

The one frame builder: the server's plain path (typed request rows) and the batch engines (typed
chunks) both build their frames here, so the pipeline sees the same dtypes from both and their
predictions match. Integer columns with a null become float64 with NaN (an integer array holds
no null); strings and booleans are objects with None. pandas is imported on first use only: a
worker on the fast path never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.contract import InputSpec


def columns_of(
    rows: Sequence[Mapping[str, Any]], spec: InputSpec
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Typed rows (as the contract parser makes them) -> (values, null masks) per column."""
    values: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for column in spec.columns:
        cells = [row[column.name] for row in rows]
        null = np.fromiter((v is None for v in cells), dtype=bool, count=len(cells))
        if column.type.numeric:
            values[column.name] = np.array(
                [np.nan if v is None else v for v in cells], dtype=np.float64
            )
        else:
            values[column.name] = np.array(cells, dtype=object)
        nulls[column.name] = null
    return values, nulls


def build_frame(
    spec: InputSpec, values: Mapping[str, np.ndarray], nulls: Mapping[str, np.ndarray]
) -> Any:
    """A pandas DataFrame of the signature's columns (numbers as float64 with NaN for nulls,
    strings as objects with None), typed as MLflow's pyfunc would type them."""
    import pandas as pd

    data: dict[str, Any] = {}
    size = 0
    for column in spec.columns:
        kind, cells = column.type, values[column.name]
        size = len(cells)
        if not kind.numeric:
            data[column.name] = pd.Series(cells, dtype=object)
        elif kind.exact is int and nulls[column.name].any():
            data[column.name] = cells.astype(np.float64)
        else:
            data[column.name] = cells.astype(kind.numpy)
    return pd.DataFrame(data, index=pd.RangeIndex(size))
