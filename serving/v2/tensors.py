"""V2 input tensors -> the columns of one batch, for the contract's parser (serving.contract).

A request sends one tensor per input column, named as the column, of the column kind's V2
datatype or one it accepts (`Kind.v2_accepts` in serving.contract KINDS), of shape `[n]` or
`[n, 1]` (MLServer's pandas codec, `"parameters": {"content_type": "pd"}`); every tensor holds
the same `n` rows; an input that is no model column is ignored (as /predict ignores such a
column: a whole DataFrame may be sent). Values come as JSON (`data`, flat or nested) or as raw
bytes after the JSON header (Triton's binary tensor extension: `"parameters":
{"binary_data_size": k}` per input, little-endian, BYTES as 4-byte-length-prefixed strings).
A NaN in a floating-point tensor is a missing value, as pandas writes one. The columns then
go through `parse_batch`, the same typing, required-column and training-domain checks as
/predict. Every problem is an ApiError that names the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.contract import Column, InputSpec
from serving.errors import ApiError

PREDICT, PROBABILITY = "predict", "probability"
OUTPUTS = (PREDICT, PROBABILITY)
REQUEST_CONTENT_TYPES = frozenset({"pd"})  # MLServer's pandas codec: one input per column
INPUT_CONTENT_TYPES = frozenset({"str", "np", "pd"})  # per input: strings, or numbers as sent
FLOATS = frozenset({"FP16", "FP32", "FP64"})
RAW_DTYPES = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
DATATYPES = frozenset(RAW_DTYPES) | {"BYTES"}
INT_BOUNDS = {  # the values each integer datatype holds (INT64's are the columns' own bounds)
    name: (int(np.iinfo(code).min), int(np.iinfo(code).max))
    for name, code in RAW_DTYPES.items()
    if name.startswith(("INT", "UINT")) and name != "INT64"
}
BINARY_SIZE = "binary_data_size"


@dataclass(frozen=True)
class Inputs:
    """A decoded infer request: its id, the columns by name (a list of values per column, one
    of the shapes `parse_batch` takes at its fastest), the outputs asked for."""

    id: str | None
    columns: dict[str, list[Any]]
    outputs: tuple[str, ...]
    rows: int


def bad(message: str, **details: Any) -> ApiError:
    """A client's bad V2 request: a 400 (answered `{"error": message}` under /v2)."""
    return ApiError("invalid_v2_request", message, status=400, **details)


def decode_inputs(body: Any, spec: InputSpec, binary: bytes | memoryview = b"") -> Inputs:
    """An infer request (its JSON header decoded, and the binary tensor bytes after it) ->
    `Inputs`, checked against the model's columns."""
    if type(body) is not dict:
        raise bad("the infer request must be a JSON object with an 'inputs' array")
    if "parameters" in body:
        content_type = _parameters(body, "the request").get("content_type")
        if content_type is not None and (
            type(content_type) is not str or content_type not in REQUEST_CONTENT_TYPES
        ):
            raise bad(
                f"the request's content_type {str(content_type)[:40]!r} is not one this model "
                "reads: send one tensor per column, with no content_type or 'pd'"
            )
    tensors = body.get("inputs")
    if type(tensors) is not list or not tensors:
        raise bad("the infer request has no 'inputs': send one tensor per column")
    plan = _plan(spec)
    decoded: dict[str, list[Any]] = {}
    rows: int | None = None
    offset = 0
    for position, tensor in enumerate(tensors):
        name = tensor.get("name") if type(tensor) is dict else None
        if type(name) is not str:
            raise bad(f"input {position} is not an object with a 'name'")
        entry = plan.get(name)
        parameters = tensor.get("parameters")
        if parameters is not None and type(parameters) is not dict:
            raise bad(f"the parameters of input {name[:64]!r} must be an object")
        size = None if parameters is None else parameters.get(BINARY_SIZE)
        if size is not None and (type(size) is not int or size < 0 or offset + size > len(binary)):
            left = len(binary) - offset
            raise bad(f"input {name[:64]!r}: its binary_data_size {str(size)[:20]} does not fit "
                      f"the {left} bytes left after the JSON", input=name[:64])  # fmt: skip
        if entry is None:  # not a model input: ignored, as /predict ignores such a column
            offset += size or 0
            continue
        column, accepts, floats = entry
        if name in decoded:
            raise bad(f"input {name!r} is sent twice", input=name)
        datatype = tensor.get("datatype")
        if type(datatype) is not str or datatype not in accepts:
            raise bad(
                f"input {name!r} has datatype {str(datatype)[:16]!r}; column {name!r} takes "
                f"{column.type.v2} (or {', '.join(sorted(accepts))})",
                input=name,
            )
        count = _rows(tensor.get("shape"), name)
        if parameters:
            own_type = parameters.get("content_type")
            if own_type is not None and (
                type(own_type) is not str or own_type not in INPUT_CONTENT_TYPES
            ):
                raise bad(f"input {name!r} has content_type {str(own_type)[:40]!r}, not one "
                          f"of {', '.join(sorted(INPUT_CONTENT_TYPES))}", input=name)  # fmt: skip
        if size is not None:
            values = _raw_values(binary[offset : offset + size], datatype, name)
            offset += size
        else:
            values = _json_values(tensor.get("data"), name)
            if datatype in INT_BOUNDS:
                _check_bounds(values, datatype, name)
        if len(values) != count:
            raise bad(f"input {name!r} holds {len(values)} values; its shape says {count}",
                      input=name)  # fmt: skip
        if rows is not None and count != rows:
            raise bad(f"input {name!r} has {count} rows, the inputs before it {rows}", input=name)
        rows = count
        if floats and datatype in FLOATS:
            values = [None if v != v else v for v in values]  # NaN, and only NaN, is not itself
        decoded[name] = values
    if offset != len(binary):
        raise bad(f"{len(binary) - offset} bytes after the JSON belong to no input")
    return Inputs(_request_id(body), decoded, requested_outputs(body), rows or 0)


Plan = dict[str, tuple[Column, frozenset[str], bool]]
_plans: dict[int, tuple[InputSpec, Plan]] = {}


def _plan(spec: InputSpec) -> Plan:
    """By column name: the column, the datatypes it accepts, whether any is floating-point
    (made once per loaded model's spec)."""
    cached = _plans.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    plan = {c.name: (c, c.type.v2_accepts, bool(c.type.v2_accepts & FLOATS)) for c in spec.columns}
    if len(_plans) > 16:  # specs of models long swapped out
        _plans.clear()
    _plans[id(spec)] = (spec, plan)
    return plan


def requested_outputs(body: dict[str, Any]) -> tuple[str, ...]:
    """The outputs a request asks for: `predict` unless it lists others (`probability`)."""
    asked = body.get("outputs")
    if asked is None:
        return (PREDICT,)
    if not isinstance(asked, list):
        raise bad("'outputs' must be an array of {\"name\": ...}")
    names = []
    for output in asked:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUTS:
            shown = str(name)[:64] if name is not None else repr(output)[:64]
            raise bad(f"output {shown!r} is not one of the model's outputs ({', '.join(OUTPUTS)})")
        if name not in names:
            names.append(name)
    return tuple(names) or (PREDICT,)


def _request_id(body: dict[str, Any]) -> str | None:
    rid = body.get("id")
    if rid is None:
        return None
    if not isinstance(rid, str):
        raise bad("the request's 'id' must be a string")
    return rid


def _parameters(holder: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise bad(f"the parameters of {what} must be an object")
    return parameters


def _rows(shape: Any, name: str) -> int:
    """The rows of a tensor's shape: `[n]` or `[n, 1]`, one value per row."""
    if type(shape) is list and len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0:
        return shape[0]
    if (
        isinstance(shape, list)
        and 1 <= len(shape) <= 2
        and all(type(d) is int and d >= 0 for d in shape)
        and (len(shape) == 1 or shape[1] == 1)
    ):
        return shape[0]
    raise bad(f"input {name!r} has shape {str(shape)[:40]}; send [rows] or [rows, 1]", input=name)


def _json_values(data: Any, name: str) -> list[Any]:
    if type(data) is not list:
        raise bad(f"input {name!r} has no 'data' array (nor binary data)", input=name)
    if data and type(data[0]) is list:  # nested, [[v], [v], ...]
        if not all(type(v) is list and len(v) == 1 for v in data):
            raise bad(f"input {name!r}: each row of its nested data holds one value", input=name)
        return [v[0] for v in data]
    return data


def _check_bounds(values: list[Any], datatype: str, name: str) -> None:
    """JSON integers outside their declared datatype's range are refused, not taken as sent."""
    low, high = INT_BOUNDS[datatype]
    for value in values:
        if type(value) is int and not low <= value <= high:
            raise bad(f"input {name!r}: {value} does not fit its datatype {datatype} "
                      f"({low}..{high})", input=name)  # fmt: skip


def _raw_values(raw: bytes | memoryview, datatype: str, name: str) -> list[Any]:
    """Little-endian raw tensor bytes -> Python values (BYTES: UTF-8 strings)."""
    if datatype == "BYTES":
        return _raw_strings(bytes(raw), name)
    dtype = np.dtype(RAW_DTYPES[datatype])
    if len(raw) % dtype.itemsize:
        raise bad(f"input {name!r}: {len(raw)} bytes are not whole {datatype} values", input=name)
    return np.frombuffer(raw, dtype=dtype).tolist()


def _raw_strings(raw: bytes, name: str) -> list[str]:
    values, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise bad(f"input {name!r}: its BYTES data ends inside a length", input=name)
        (length,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + length > len(raw):
            raise bad(f"input {name!r}: a BYTES element runs past the data", input=name)
        try:
            values.append(raw[at : at + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise bad(f"input {name!r}: an element is not UTF-8 text", input=name) from None
        at += length
    return values
