"""The /predict contract: a request body -> row keys and rows typed by the model's input schema.

Accepted bodies (JSON):

- columns, the article's pandas orient: ``{"Age": {"53": 28, "111": null}, ...}``; rows are the
  union of the row keys across columns, in the order ``pd.DataFrame(body)`` gives them (first
  appearance, column by column);
- lists of equal length per column: ``{"Age": [28, null], ...}`` (row keys "0", "1", ...);
- records: ``[{"Age": 28, ...}, ...]`` (row keys "0", "1", ...).

Values are typed by the schema: ``long``/``integer`` -> int, ``double``/``float`` -> float,
``string`` -> str, ``boolean`` -> bool; null (or an absent cell) -> None, which only optional
columns accept. Columns outside the schema are ignored. This path uses no pandas: a fast path
consumes the typed rows directly. Every problem raises `ApiError` naming the column and row.

The training domain. A model may carry, beside its signature, the values and ranges its training
data held (MLmodel's `metadata.domain`, written by training from `training/schema.py`): a
required column's value outside it is refused (422 `out_of_domain`, naming the column, the value
and what is allowed); an optional column's value outside it is treated as unknown (None, as if
absent) and counted in `Batch.unknown`, which the server exports in /metrics.

The common shape (an object of columns that all hold the same row keys, every required column
present) takes a shortcut that accepts values of the exact type as they are; anything else, and
the first value that is not plainly valid, goes through the same checks in the same order, so
both ways give the same batch or the same error.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

from serving.errors import ApiError

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
# A float stands for an integer only up to 2**53: beyond, it may not be the number that was sent
# (orjson reads -9223372036854775809, outside int64, as the float -2**63).
EXACT_FLOAT_INT = 2**53
FINITE = (-sys.float_info.max, sys.float_info.max)


@dataclass(frozen=True)
class Domain:
    """What a column held in training: a set of values, or a range (either bound optional)."""

    values: frozenset[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Domain:
        values = spec.get("values")
        return cls(
            values=frozenset(values) if values is not None else None,
            minimum=spec.get("min"),
            maximum=spec.get("max"),
        )

    def admits(self, value: Any) -> bool:
        if self.values is not None and value not in self.values:
            return False
        if self.minimum is not None and not value >= self.minimum:
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        return f"at least {self.minimum}" if self.minimum is not None else f"at most {self.maximum}"

    def public(self) -> dict[str, Any]:
        """The same JSON shape `from_json` reads (for /version and the documentation)."""
        shown: dict[str, Any] = {}
        if self.values is not None:
            shown["values"] = sorted(self.values, key=str)
        if self.minimum is not None:
            shown["min"] = self.minimum
        if self.maximum is not None:
            shown["max"] = self.maximum
        return shown


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of KINDS: MLflow's DataType names
    required: bool = True
    domain: Domain | None = None  # what training saw; None: any value of the kind

    @property
    def type(self) -> Kind:
        return KINDS[self.kind]


@dataclass(frozen=True)
class InputSpec:
    """The model's input columns: names, types and which are required."""

    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        unsupported = [f"{c.name}: {c.kind}" for c in self.columns if c.kind not in KINDS]
        if unsupported:
            raise ValueError(f"unsupported input column types: {', '.join(unsupported)}")

    @classmethod
    def from_signature_json(
        cls, inputs: str | None, domain: Mapping[str, Any] | None = None
    ) -> InputSpec:
        """From a model signature's inputs as MLmodel stores them (`Schema.to_json()`): a JSON
        list of named column specs; `domain`: MLmodel's `metadata.domain`, if any."""
        columns = json.loads(inputs) if isinstance(inputs, str) else None
        if not columns or not all(isinstance(c, dict) and c.get("name") for c in columns):
            raise ValueError("the model has no input signature with named columns")
        domain = domain if isinstance(domain, Mapping) else {}
        return cls(
            tuple(
                Column(
                    str(c["name"]),
                    str(c["type"]),
                    bool(c.get("required", True)),
                    Domain.from_json(domain[c["name"]])
                    if isinstance(domain.get(c["name"]), Mapping)
                    else None,
                )
                for c in columns
            )
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @cached_property
    def _plan(self) -> tuple[tuple[Column, type, tuple[Any, Any] | None, Converter], ...]:
        """Per column: the type taken as it is (within bounds, if any) and the full converter."""
        return tuple((c, c.type.exact, c.type.bounds, c.type.convert) for c in self.columns)

    @cached_property
    def _required(self) -> tuple[str, ...]:
        return tuple(self.required)

    @cached_property
    def bounded(self) -> tuple[Column, ...]:
        """The columns that carry a training domain."""
        return tuple(c for c in self.columns if c.domain is not None)


@dataclass(frozen=True)
class Batch:
    index: list[str]  # row keys, in pd.DataFrame(body) order
    rows: list[dict[str, Any]]  # one dict per row: every schema column, typed, None if missing
    unknown: dict[str, int] = field(default_factory=dict)  # optional values outside the domain


def out_of_domain(column: Column, value: Any, row: str) -> ApiError:
    """422: a required column's value that training never saw."""
    assert column.domain is not None
    shown = value if isinstance(value, int | float) else repr(value)[:80]
    return ApiError(
        "out_of_domain",
        f"column {column.name!r} at row {row!r}: {shown} is outside the model's training "
        f"domain; expected {column.domain.describe()}",
        status=422,
        column=column.name,
        row=row,
        domain=column.domain.public(),
    )


def apply_domain(batch: Batch, spec: InputSpec) -> Batch:
    """Refuse a required value outside its column's domain; an optional one becomes None, and
    counted (`Batch.unknown`)."""
    for column in spec.bounded:
        domain, name = column.domain, column.name
        assert domain is not None
        for key, row in zip(batch.index, batch.rows, strict=True):
            value = row[name]
            if value is None or domain.admits(value):
                continue
            if column.required:
                raise out_of_domain(column, value, key)
            row[name] = None
            batch.unknown[name] = batch.unknown.get(name, 0) + 1
    return batch


def require_rows(batch: Batch) -> Batch:
    """The one rule for empty input, on every endpoint: a request holds at least one row."""
    if not batch.rows:
        raise ApiError(
            "no_rows",
            "the request holds no rows; send at least one passenger",
            status=422,
        )
    return batch


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError("empty_body", "the request body is empty; send a JSON object of columns")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError("malformed_json", f"the request body is not valid JSON: {exc}") from None


def parse_batch(body: Any, spec: InputSpec, max_rows: int) -> Batch:
    """A decoded JSON body -> `Batch` (typed, within the training domain), or ApiError naming
    the first problem found."""
    batch = _common_shape(body, spec, max_rows) if type(body) is dict else None
    if batch is None:
        batch = _parse_any(body, spec, max_rows)
    return apply_domain(batch, spec) if spec.bounded else batch


def _common_shape(body: dict[str, Any], spec: InputSpec, max_rows: int) -> Batch | None:
    """Columns that all hold the same row keys, every required one present: the batch; else None.

    A value of its column's exact type (and range) is taken as it is; any other goes through its
    converter, which raises what `_parse_any` would raise there (the shape checks that come first
    in `_parse_any` all passed here). A null in a required column returns None: `_parse_any`
    then names it.
    """
    keys = None
    for cells in body.values():
        if type(cells) is not dict:
            return None
        if keys is None:
            keys = cells.keys()
        elif cells.keys() != keys:  # same set: the union's order is the first column's
            return None
    if keys is None or len(keys) > max_rows:
        return None
    for name in spec._required:
        if name not in body:
            return None
    index = list(keys)
    rows: list[dict[str, Any]] = [{} for _ in index]
    for column, exact, bounds, convert in spec._plan:
        name = column.name
        cells = body.get(name)
        if cells is None:
            for row in rows:
                row[name] = None
            continue
        for key, row in zip(index, rows, strict=True):
            value = cells[key]
            if value is None:
                if column.required:
                    return None
                row[name] = None
            elif type(value) is exact and (bounds is None or bounds[0] <= value <= bounds[1]):
                row[name] = value
            else:
                row[name] = convert(value, column, key)
    return Batch(index=index, rows=rows)


def _parse_any(body: Any, spec: InputSpec, max_rows: int) -> Batch:
    """Any shape `parse_batch` accepts, checked step by step."""
    if isinstance(body, list):
        index, cells = _records(body, max_rows)
    elif isinstance(body, dict):
        index, cells = _columns(body, max_rows)
        missing = [name for name in spec.required if name not in body]
        if missing:
            raise _missing_columns(missing)
    else:
        raise ApiError(
            "not_columns",
            f"the body is a JSON {_json_type(body)}; send an object of columns "
            '({"Pclass": {"0": 3}, ...}) or an array of records ([{"Pclass": 3, ...}])',
        )
    rows = [{} for _ in index]
    for column in spec.columns:
        convert = column.type.convert
        for key, row, value in zip(index, rows, cells(column.name), strict=True):
            if value is None:
                if column.required:
                    raise ApiError(
                        "missing_value",
                        f"required column {column.name!r} has no value at row {key!r}",
                        status=422,
                        column=column.name,
                        row=key,
                    )
                row[column.name] = None
            else:
                row[column.name] = convert(value, column, key)
    return Batch(index=index, rows=rows)


Cells = Callable[[str], list[Any]]


def _columns(body: dict[str, Any], max_rows: int) -> tuple[list[str], Cells]:
    """Column orient (dict of dicts) or dict of equal-length lists."""
    shapes = {name: type(value) for name, value in body.items()}
    bad = [name for name, kind in shapes.items() if kind not in (dict, list)]
    if bad:
        name = bad[0]
        raise ApiError(
            "not_columns",
            f"column {name!r} holds a JSON {_json_type(body[name])}, not an object of "
            f'row key -> value (e.g. {{"{name}": {{"0": ...}}}})',
            status=422,
            column=name,
        )
    if dict in shapes.values() and list in shapes.values():
        raise ApiError(
            "not_columns",
            "mixed column shapes: send every column as an object of row key -> value, "
            "or every column as a list of the same length",
            status=422,
        )
    if list in shapes.values():
        lengths = {len(value) for value in body.values()}
        if len(lengths) > 1:
            raise ApiError(
                "not_columns",
                f"column lists have different lengths: {sorted(lengths)}",
                status=422,
            )
        count = lengths.pop() if lengths else 0
        _check_rows(count, max_rows)
        return [str(i) for i in range(count)], lambda name: body.get(name) or [None] * count

    # The union of row keys, in first-appearance order: what pandas 3 does with a dict of dicts.
    seen: dict[str, None] = {}
    for column in body.values():
        seen.update(dict.fromkeys(column))
        _check_rows(len(seen), max_rows)
    index = list(seen)

    def cells(name: str) -> list[Any]:
        column = body.get(name)
        return [None] * len(index) if column is None else [column.get(key) for key in index]

    return index, cells


def _records(body: list[Any], max_rows: int) -> tuple[list[str], Cells]:
    _check_rows(len(body), max_rows)
    for i, record in enumerate(body):
        if not isinstance(record, dict):
            raise ApiError(
                "not_records",
                f"record {i} is a JSON {_json_type(record)}, not an object of column -> value",
                status=422,
                row=str(i),
            )
    present = set().union(*body) if body else set()

    def cells(name: str) -> list[Any]:
        if name not in present:
            return [None] * len(body)
        return [record.get(name) for record in body]

    return [str(i) for i in range(len(body))], cells


def _check_rows(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise ApiError(
            "too_many_rows",
            f"the request has more than {max_rows} rows (the server's --max-rows, "
            "SERVING_MAX_ROWS); split it into smaller batches",
            status=413,
            limit_rows=max_rows,
        )


def _missing_columns(missing: list[str]) -> ApiError:
    names = ", ".join(repr(name) for name in missing)
    noun = "column" if len(missing) == 1 else "columns"
    return ApiError(
        "missing_column",
        f"required {noun} {names} missing from the request",
        status=422,
        columns=missing,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _invalid(value: Any, column: Column, row: str, expected: str) -> ApiError:
    shown = value if isinstance(value, int | float | bool) else repr(value)[:80]
    return ApiError(
        "invalid_value",
        f"column {column.name!r} at row {row!r}: expected {expected}, got {_json_type(value)} "
        f"{shown}",
        status=422,
        column=column.name,
        row=row,
        expected=expected,
    )


def _to_int(bounds: tuple[int, int]) -> Callable[[Any, Column, str], int]:
    def convert(value: Any, column: Column, row: str) -> int:
        if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOAT_INT:
            value = int(value)  # 3.0 is the integer 3; 1.5 is not; nor is 1e19 (inexact)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _invalid(value, column, row, "an integer")
        if not bounds[0] <= value <= bounds[1]:
            raise _invalid(value, column, row, f"an integer in [{bounds[0]}, {bounds[1]}]")
        return value

    return convert


def _to_float(value: Any, column: Column, row: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _invalid(value, column, row, "a number")
    try:
        number = float(value)
    except OverflowError:  # an int past a double's range (not from JSON: orjson reads a float)
        number = math.inf
    if not math.isfinite(number):
        raise _invalid(value, column, row, "a finite number")
    return number


def _to_str(value: Any, column: Column, row: str) -> str:
    if not isinstance(value, str):
        raise _invalid(value, column, row, "a string")
    return value


def _to_bool(value: Any, column: Column, row: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(value, column, row, "true or false")
    return value


Converter = Callable[[Any, Column, str], Any]


@dataclass(frozen=True)
class Kind:
    """One MLflow column type (`DataType` name), and what every part of serving makes of it.

    The parser, the frame builder, the batch engines (numpy, Arrow, Spark), the Open Inference
    Protocol (V2) and the OpenAPI document all read this one table: a type added or changed here
    is changed everywhere.
    """

    name: str
    exact: type  # a request value of exactly this type is taken as it is (within `bounds`)
    bounds: tuple[Any, Any] | None  # the values accepted without conversion
    convert: Converter  # any other value: converted, or an ApiError naming it
    noun: str  # what a value must be, in a message: "an integer"
    numpy: str  # the column's numpy dtype when it has no null
    numeric: bool  # True: a column with nulls is float64 with NaN; False: objects with None
    arrow: str  # pyarrow's type factory: getattr(pyarrow, arrow)()
    spark: str  # pyspark.sql.types class name
    openapi: Mapping[str, Any]  # the JSON schema of one value
    example: Any  # a plausible value, for documentation and placeholders
    v2: str  # the column's Open Inference Protocol (V2) datatype, in metadata and answers
    v2_accepts: frozenset[str]  # the V2 datatypes a request may send it in (its values converted)


# V2 datatypes by family: an integer column takes any integer tensor, a number column any
# numeric one (its values converted, within the column's bounds, as a JSON value would be).
V2_INTEGERS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
V2_NUMBERS = V2_INTEGERS | {"FP16", "FP32", "FP64"}

KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("long", int, INT64, _to_int(INT64), "an integer", "int64", True, "int64",
             "LongType",
             {"type": "integer", "format": "int64", "minimum": INT64[0], "maximum": INT64[1]}, 3,
             "INT64", V2_INTEGERS),
        Kind("integer", int, INT32, _to_int(INT32), "an integer", "int32", True, "int32",
             "IntegerType",
             {"type": "integer", "format": "int32", "minimum": INT32[0], "maximum": INT32[1]}, 3,
             "INT32", V2_INTEGERS),
        # inf is out of bounds, and nan compares false: both go to the converter
        Kind("double", float, FINITE, _to_float, "a finite number", "float64", True, "float64",
             "DoubleType", {"type": "number", "format": "double"}, 22.0, "FP64", V2_NUMBERS),
        Kind("float", float, FINITE, _to_float, "a finite number", "float32", True, "float32",
             "FloatType", {"type": "number", "format": "float"}, 22.0, "FP32", V2_NUMBERS),
        Kind("string", str, None, _to_str, "a string", "object", False, "string",
             "StringType", {"type": "string"}, "S", "BYTES", frozenset({"BYTES"})),
        Kind("boolean", bool, None, _to_bool, "true or false", "bool", False, "bool_",
             "BooleanType", {"type": "boolean"}, True, "BOOL", frozenset({"BOOL"})),
    )
}  # fmt: skip
