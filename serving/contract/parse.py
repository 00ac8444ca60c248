"""A request body -> `Batch`: the three JSON shapes /predict accepts, typed by the model's input
schema (the package docstring says which), with the first problem named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from serving.contract.kinds import json_type
from serving.contract.spec import Batch, InputSpec, apply_domain
from serving.errors import ApiError


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
    """Columns that all hold the same row keys (objects), or all the same number of values
    (lists), every required one present: the batch; else None.

    A value of its column's exact type (and range) is taken as it is; any other goes through its
    converter, which raises what `_parse_any` would raise there (the shape checks that come first
    in `_parse_any` all passed here). A null in a required column returns None: `_parse_any`
    then names it.
    """
    shape = keys = None
    for cells in body.values():
        kind = type(cells)
        if kind is not dict and kind is not list:
            return None
        extent = cells.keys() if kind is dict else len(cells)  # a set of keys, or a length
        if shape is None:
            shape, keys = kind, extent  # the union's order is the first column's
        elif kind is not shape or extent != keys:
            return None
    if shape is None:
        return None
    index = list(keys) if shape is dict else [str(i) for i in range(keys)]  # type: ignore
    if not index or len(index) > max_rows:
        return None
    for name in spec._required:
        if name not in body:
            return None
    rows: list[dict[str, Any]] = [{} for _ in index]
    for column, exact, bounds, convert in spec._plan:
        name = column.name
        cells = body.get(name)
        if cells is None:
            for row in rows:
                row[name] = None
            continue
        values = cells if shape is list else map(cells.__getitem__, index)
        for key, row, value in zip(index, rows, values, strict=True):
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
            f"the body is a JSON {json_type(body)}; send an object of columns "
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
            f"column {name!r} holds a JSON {json_type(body[name])}, not an object of "
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
                f"record {i} is a JSON {json_type(record)}, not an object of column -> value",
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
