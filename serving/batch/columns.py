"""Typing a chunk's columns by the model's signature, with row errors kept and no per-row Python.

A chunk arrives as an Arrow table: a CSV's cells as text (only an empty cell is null), a Parquet
file's columns in their own types. Each signature column is typed by its kind (serving.contract's
KINDS): numbers become float64 (integers hold whole numbers; null, and NaN from Parquet, are
missing), strings stay strings. A value that does not fit its kind, a required value that is
missing, and a required value outside the training domain make the row's `error` (the row is
not scored); an optional value outside the domain is scored as unknown (null) and counted, the
server's rule (serving.contract.apply_domain). Only the rows with an error are visited one by
one, to write their messages.

The typed chunk feeds the model as Arrow columns (the columnar fast path), as the contract's
typed rows (an older model's row function) or as the one frame builder's DataFrame
(serving.model.frame, the scikit-learn pipeline).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serving.batch.files import BatchError
from serving.contract import Column, InputSpec
from serving.model.frame import build_frame

# What a CSV cell must look like to be a number (after trimming its whitespace): decimal digits
# with an optional sign, fraction and exponent. "inf", "nan", "0x10", "1_000" are not numbers.
NUMBER_TEXT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
INTEGER_TEXT = r"^[+-]?[0-9]+$"


@dataclass
class Typed:
    """A chunk's signature columns typed, and which rows are good.

    `columns`: what the model reads (float64 numbers, strings; null = missing, an optional value
    outside the domain included). `values`: the same before the domain rule (what an output
    typed by the signature holds). `errors`: per row, None or "col: message".
    """

    size: int
    columns: dict[str, pa.Array]
    values: dict[str, pa.Array]
    good: np.ndarray
    errors: pa.Array
    unknown: dict[str, int] = field(default_factory=dict)  # optional values outside the domain

    @property
    def error_count(self) -> int:
        return int(self.size - np.count_nonzero(self.good))


def _plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array, dictionaries decoded."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def is_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def numbers_from_text(text: pa.Array, pattern: str = NUMBER_TEXT) -> tuple[pa.Array, np.ndarray]:
    """(float64 values, which cells are numbers) of text cells, whitespace trimmed."""
    trimmed = pc.utf8_trim_whitespace(text)
    ok = pc.fill_null(pc.match_substring_regex(trimmed, pattern), False)
    values = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, pa.string())), pa.float64())
    return values, ok.to_numpy(zero_copy_only=False)


def _float_numpy(array: pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)  # null -> NaN


def _convert(source: pa.Array, column: Column) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(typed values, null mask, bad mask) of one column by its signature kind."""
    kind = column.type
    n = len(source)
    null = source.is_null().to_numpy(zero_copy_only=False)
    if kind.exact is str:
        if is_text(source.type):
            return source.cast(pa.string()), null, np.zeros(n, dtype=bool)
        return pa.nulls(n, pa.string()), null, ~null  # every value is "not a string"
    if not kind.numeric:
        raise BatchError(f"column {column.name!r}: {kind.name} inputs are not supported in batch")
    if is_number(source.type):
        values = _float_numpy(source.cast(pa.float64(), safe=False))
        null = np.isnan(values)  # a Parquet NaN is missing, like a null
        bad = ~null & ~np.isfinite(values)
    elif is_text(source.type):
        numbers, ok = numbers_from_text(source)
        values = _float_numpy(numbers)
        bad = ~null & ~(ok & np.isfinite(values))
    else:  # booleans, dates, bytes...: not numbers
        values, bad = np.full(n, np.nan), ~null
    if kind.exact is int:
        assert kind.bounds is not None
        low, high = float(kind.bounds[0]), float(kind.bounds[1]) + 1  # 2.0**63, as a float
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.floor(values) == values)
            whole &= (values >= low) & (values < high)
        bad |= ~null & ~whole
    missing = null | bad
    return pa.array(np.where(missing, np.nan, values), mask=missing), null, bad


def _outside_domain(values: pa.Array, present: np.ndarray, column: Column) -> np.ndarray:
    """Which present values of a typed column fall outside its training domain."""
    domain = column.domain
    n = len(values)
    if domain is None or not present.any():
        return np.zeros(n, dtype=bool)
    if column.type.numeric:
        numbers = _float_numpy(values)
        inside = np.ones(n, dtype=bool)
        if domain.values is not None:
            allowed = [float(v) for v in domain.values if isinstance(v, int | float)]
            inside &= np.isin(numbers, allowed)
        with np.errstate(invalid="ignore"):
            if domain.minimum is not None:
                inside &= numbers >= domain.minimum
            if domain.maximum is not None:
                inside &= numbers <= domain.maximum
        return present & ~inside
    # strings: the rule itself, once per distinct value
    encoded = pc.dictionary_encode(values)
    verdict = np.array([not domain.admits(v) for v in encoded.dictionary.to_pylist()] or [False])
    indices = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    return present & verdict[indices]


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def type_columns(table: pa.Table, spec: InputSpec) -> Typed:
    """Type `table`'s signature columns (absent optional columns are all null)."""
    n = table.num_rows
    messages: dict[int, list[str]] = {}

    def note(rows: np.ndarray, message: Any) -> None:
        for i in np.flatnonzero(rows).tolist():
            messages.setdefault(i, []).append(message(i))

    unknown: dict[str, int] = {}
    columns: dict[str, pa.Array] = {}
    values_before: dict[str, pa.Array] = {}
    names = set(table.column_names)
    for column in spec.columns:
        name = column.name
        source = _plain(table.column(name)) if name in names else pa.nulls(n, pa.string())
        values, null, bad = _convert(source, column)
        if bad.any():
            note(
                bad,
                lambda i, c=column, s=source: f"{c.name}: {s[i].as_py()!r} is not {c.type.noun}",
            )
        if column.required and null.any():
            note(null, lambda i, c=column: f"{c.name}: required value is empty")
        outside = _outside_domain(values, ~(null | bad), column)
        values_before[name] = values
        if outside.any():
            if column.required:
                expected = column.domain.describe() if column.domain else ""
                note(
                    outside,
                    lambda i, c=column, v=values, e=expected: (
                        f"{c.name}: {_shown(v[i].as_py())} is outside the model's training "
                        f"domain (expected {e})"
                    ),
                )
            else:
                values = pc.if_else(pa.array(outside), pa.scalar(None, values.type), values)
                unknown[name] = int(outside.sum())
        columns[name] = values
    good = np.ones(n, dtype=bool)
    if messages:
        cells = np.full(n, None, dtype=object)
        for i, parts in messages.items():
            cells[i] = "; ".join(parts)
            good[i] = False
        errors = pa.array(cells, pa.string(), from_pandas=True)
    else:
        errors = pa.nulls(n, pa.string())
    return Typed(n, columns, values_before, good, errors, unknown)


def select(typed: Typed, rows: np.ndarray) -> dict[str, pa.Array]:
    """The model's columns of the selected rows (a boolean mask)."""
    if rows.all():
        return typed.columns
    mask = pa.array(rows)
    return {name: values.filter(mask) for name, values in typed.columns.items()}


def numpy_columns(
    columns: Mapping[str, pa.Array], spec: InputSpec
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(values, null masks) as the frame builder takes them: float64 with NaN, objects with
    None."""
    values, nulls = {}, {}
    for column in spec.columns:
        array = columns[column.name]
        nulls[column.name] = array.is_null().to_numpy(zero_copy_only=False)
        if column.type.numeric:
            values[column.name] = _float_numpy(array)
        else:
            values[column.name] = np.asarray(array.to_pylist(), dtype=object)
    return values, nulls


def model_frame(typed: Typed, spec: InputSpec, rows: np.ndarray) -> Any:
    """The selected rows as the DataFrame the pipeline expects (the server's dtypes)."""
    return build_frame(spec, *numpy_columns(select(typed, rows), spec))


def typed_rows(typed: Typed, spec: InputSpec, rows: np.ndarray) -> list[dict[str, Any]]:
    """The selected rows as the contract's typed dicts (int, float, str or None)."""
    chosen = select(typed, rows)
    lists = []
    for column in spec.columns:
        cells = chosen[column.name].to_pylist()
        if column.type.exact is int:
            cells = [None if v is None else int(v) for v in cells]
        lists.append(cells)
    names = spec.names
    return [dict(zip(names, cells, strict=True)) for cells in zip(*lists, strict=True)]
