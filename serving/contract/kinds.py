"""The column kinds: each MLflow column type (`DataType` name) and what every part of serving makes
of it (its Python type and bounds, its converter and message, its numpy, Arrow, Spark, OpenAPI
and V2 types), in one table, `KINDS`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from serving.errors import ApiError

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
# A float stands for an integer only up to 2**53: beyond, it may not be the number that was sent
# (orjson reads -9223372036854775809, outside int64, as the float -2**63).
EXACT_FLOAT_INT = 2**53
FINITE = (-sys.float_info.max, sys.float_info.max)


class Named(Protocol):
    """What a converter reads of a column: its name, for the message."""

    name: str


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def invalid_value(value: Any, column: Named, row: str, expected: str) -> ApiError:
    shown = value if isinstance(value, int | float | bool) else repr(value)[:80]
    return ApiError(
        "invalid_value",
        f"column {column.name!r} at row {row!r}: expected {expected}, got {json_type(value)} "
        f"{shown}",
        status=422,
        column=column.name,
        row=row,
        expected=expected,
    )


def _to_int(bounds: tuple[int, int]) -> Callable[[Any, Named, str], int]:
    def convert(value: Any, column: Named, row: str) -> int:
        if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOAT_INT:
            value = int(value)  # 3.0 is the integer 3; 1.5 is not; nor is 1e19 (inexact)
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid_value(value, column, row, "an integer")
        if not bounds[0] <= value <= bounds[1]:
            raise invalid_value(value, column, row, f"an integer in [{bounds[0]}, {bounds[1]}]")
        return value

    return convert


def _to_float(value: Any, column: Named, row: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid_value(value, column, row, "a number")
    try:
        number = float(value)
    except OverflowError:  # an int past a double's range (not from JSON: orjson reads a float)
        number = math.inf
    if not math.isfinite(number):
        raise invalid_value(value, column, row, "a finite number")
    return number


def _to_str(value: Any, column: Named, row: str) -> str:
    if not isinstance(value, str):
        raise invalid_value(value, column, row, "a string")
    return value


def _to_bool(value: Any, column: Named, row: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_value(value, column, row, "true or false")
    return value


Converter = Callable[[Any, Named, str], Any]


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
