"""Typing a chunk's columns by the model's signature, row errors kept, with no per-row guessing.

CSV cells arrive as text and are typed by the signature's kinds (serving.contract); a value that
does not fit its kind makes its row's `error`, not the job's. The typed chunk feeds the model as
the contract's typed rows (the fast path) or as the one frame builder's DataFrame
(serving.model.frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from serving.batch.files import BatchError
from serving.contract import Column, InputSpec
from serving.model.frame import build_frame


@dataclass
class Typed:
    """A chunk's signature columns typed, and per-row error messages (None: the row is good).

    Numbers are float64 arrays (NaN = null; longs hold whole numbers), strings object arrays
    (None = null).
    """

    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    errors: np.ndarray  # object: None or "col: message"
    unknown: dict[str, int] = field(default_factory=dict)  # optional values outside the domain

    @property
    def good(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)


def _numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, null mask); text that is not a number becomes NaN but is not null."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isnan(values)
    cells = pd.Series(series.to_numpy(dtype=object, na_value=None), dtype=object)
    null = cells.isna().to_numpy()
    text = cells.map(lambda v: v.strip() if isinstance(v, str) else v)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, null


def _convert(series: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, null mask, bad mask) of one column by its signature type."""
    kind = column.type
    if kind.exact is str:
        cells = series.to_numpy(dtype=object, na_value=None)
        null = pd.isna(cells)
        bad = np.array([v is not None and not isinstance(v, str) for v in cells], dtype=bool)
        bad &= ~null
        values = np.where(null | bad, None, cells).astype(object)
        return values, null, bad
    if not kind.numeric:
        raise BatchError(f"column {column.name!r}: {kind.name} inputs are not supported in batch")
    values, null = _numbers(series)
    bad = ~null & ~np.isfinite(values)
    if kind.exact is int:
        assert kind.bounds is not None
        low, high = float(kind.bounds[0]), float(kind.bounds[1]) + 1  # 2.0**63, as a float
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.floor(values) == values)
            whole &= (values >= low) & (values < high)
        bad |= ~null & ~whole
    values = np.where(bad, np.nan, values)
    return values, null, bad


def _describe(value: Any, column: Column) -> str:
    return f"{value!r} is not {column.type.noun}"


def type_rows(frame: pd.DataFrame, spec: InputSpec) -> Typed:
    """Type `frame`'s signature columns (absent optional columns are all null)."""
    n = len(frame)
    errors: list[list[str] | None] = [None] * n
    unknown: dict[str, int] = {}
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for column in spec.columns:
        if column.name in frame.columns:
            series = frame[column.name]
        else:
            series = pd.Series([None] * n, dtype=object)
        values, null, bad = _convert(series, column)
        if bad.any():
            raw = series.to_numpy(dtype=object)
            for i in np.flatnonzero(bad):
                message = f"{column.name}: {_describe(raw[i], column)}"
                errors[i] = [*(errors[i] or []), message]
        if column.required and null.any():
            for i in np.flatnonzero(null):
                errors[i] = [*(errors[i] or []), f"{column.name}: required value is empty"]
        outside = _outside_domain(values, null | bad, column)
        if outside.any():  # the contract's rule (serving.contract.apply_domain), row by row
            if column.required:
                for i in np.flatnonzero(outside):
                    message = f"{column.name}: {_shown(values[i])} is outside the model's " \
                        f"training domain (expected {column.domain.describe()})"  # fmt: skip
                    errors[i] = [*(errors[i] or []), message]
            else:
                values = values.copy()
                values[outside] = np.nan if column.type.numeric else None
                unknown[column.name] = int(outside.sum())
            null = null | outside
        columns[column.name] = values
        nulls[column.name] = null | bad
    messages = np.array([None if e is None else "; ".join(e) for e in errors], dtype=object)
    return Typed(columns=columns, nulls=nulls, errors=messages, unknown=unknown)


def _outside_domain(values: np.ndarray, missing: np.ndarray, column: Column) -> np.ndarray:
    """Which present values of a typed column fall outside its training domain."""
    domain = column.domain
    if domain is None:
        return np.zeros(len(values), dtype=bool)
    outside = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(~missing):
        value = values[i]
        if column.type.exact is int:
            value = int(value)
        outside[i] = not domain.admits(value)
    return outside


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def model_frame(typed: Typed, spec: InputSpec, rows: np.ndarray) -> pd.DataFrame:
    """The selected rows as the DataFrame the pipeline expects (the server's dtypes)."""
    values = {name: cells[rows] for name, cells in typed.columns.items()}
    nulls = {name: null[rows] for name, null in typed.nulls.items()}
    return build_frame(spec, values, nulls)


def typed_rows(typed: Typed, spec: InputSpec, rows: np.ndarray) -> list[dict[str, Any]]:
    """The selected rows as the contract's typed dicts (int, float, str or None)."""
    lists = []
    for column in spec.columns:
        values = typed.columns[column.name][rows]
        null = typed.nulls[column.name][rows]
        if column.type.exact is int:
            cells = [
                None if n else int(v) for v, n in zip(values.tolist(), null.tolist(), strict=True)
            ]
        elif column.type.numeric:
            cells = [None if n else v for v, n in zip(values.tolist(), null.tolist(), strict=True)]
        else:
            cells = values.tolist()
        lists.append(cells)
    names = spec.names
    return [dict(zip(names, cells, strict=True)) for cells in zip(*lists, strict=True)]
