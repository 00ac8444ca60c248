"""Properties of the /predict parser over generated bodies (the model's real signature).

test_serving_contract.py pins the named errors and the row-key order on hand-picked shapes;
here hypothesis throws any JSON at the parser, and valid typed batches in all three shapes.
"""

from __future__ import annotations

import json
import math

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.contract import Batch, InputSpec, decode_json, parse, parse_batch
from serving.errors import ApiError
from training.signature import INPUT_SCHEMA

SPEC = InputSpec.from_signature_json(INPUT_SCHEMA.to_json())
MAX_ROWS = 50

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
names = st.sampled_from([*SPEC.names, "PassengerId", "Ticket"]) | st.text(max_size=5)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=5),
    max_leaves=30,
)


def parse_or_error(body: object) -> Batch | ApiError:
    try:
        return parse_batch(body, SPEC, MAX_ROWS)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.code and exc.message
        return exc


@given(json_values)
def test_any_json_value_is_parsed_or_refused_with_an_api_error(body):
    parse_or_error(body)


@given(st.dictionaries(names, json_values, max_size=9))
def test_any_object_of_columns_is_parsed_or_refused_with_an_api_error(body):
    result = parse_or_error(body)
    if isinstance(result, Batch):
        assert len(result.rows) == len(result.index)
        assert all(set(row) == set(SPEC.names) for row in result.rows)


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_are_parsed_or_refused_with_an_api_error(raw):
    try:
        parse_batch(decode_json(raw), SPEC, MAX_ROWS)
    except ApiError as exc:
        assert 400 <= exc.status < 500


# -- valid batches -------------------------------------------------------------------------------

VALUES = {
    "long": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "string": st.text(max_size=8),
}


@st.composite
def valid_rows(draw, min_size=0):
    """Rows of typed values: required columns always set, optional ones null or absent."""
    count = draw(st.integers(min_size, 8))
    rows = []
    for _ in range(count):
        row = {}
        for column in SPEC.columns:
            value = draw(VALUES[column.kind])
            if column.required or draw(st.booleans()):
                row[column.name] = value
            elif draw(st.booleans()):
                row[column.name] = None
        rows.append(row)
    return rows


def typed(rows: list[dict]) -> list[dict]:
    return [{c.name: row.get(c.name) for c in SPEC.columns} for row in rows]


row_keys = st.lists(st.text(max_size=4), unique=True, max_size=8)


@st.composite
def column_bodies(draw):
    """{column: {row key: value}} with the required columns at every key, optional ones at
    some keys, each column listing its keys in its own order."""
    keys = draw(row_keys)
    body = {}
    for column in SPEC.columns:
        if not column.required and draw(st.booleans()):
            continue  # an absent optional column
        present = [key for key in keys if column.required or draw(st.booleans())]
        cells = VALUES[column.kind] if column.required else VALUES[column.kind] | st.none()
        body[column.name] = {key: draw(cells) for key in draw(st.permutations(present))}
    return draw(st.permutations(list(body))), body


@given(column_bodies())
def test_valid_columns_give_the_rows_of_pd_dataframe_in_its_order(drawn):
    order, columns = drawn
    body = {name: columns[name] for name in order}
    batch = parse_batch(body, SPEC, MAX_ROWS)
    frame = pd.DataFrame(body)
    assert len(batch.rows) == len(frame)
    assert batch.index == [str(key) for key in frame.index]
    for key, row in zip(batch.index, batch.rows, strict=True):
        for column in SPEC.columns:
            sent = body.get(column.name, {}).get(key)
            got = row[column.name]
            assert got == sent or (sent is None and got is None)
            if got is not None:
                expected = {"long": int, "double": float, "string": str}[column.kind]
                assert type(got) is expected


@given(valid_rows())
def test_records_columns_and_lists_give_the_same_rows(rows):
    records = parse_batch(rows, SPEC, MAX_ROWS)
    by_key = {
        name: {str(i): row[name] for i, row in enumerate(rows) if name in row}
        for name in SPEC.names  # Pclass (in every row) first: its keys fix the row order
        if any(name in row for row in rows)
    }
    lists = {name: [row.get(name) for row in rows] for name in by_key}
    if not rows:  # no rows, no columns: an empty object misses the required columns
        by_key = lists = {c: [] for c in SPEC.required}
    for body in (by_key, lists):
        batch = parse_batch(body, SPEC, MAX_ROWS)
        assert batch.rows == records.rows == typed(rows)
        assert batch.index == records.index == [str(i) for i in range(len(rows))]


@settings(max_examples=50)
@given(valid_rows(min_size=1))
def test_a_pandas_round_trip_of_records_parses_to_the_same_rows(rows):
    """pandas writes an optional integer column with nulls as floats (1.0): still integers."""
    frame = pd.DataFrame(rows)
    small = frame.select_dtypes("number").abs().max().max()
    if isinstance(small, float) and not math.isnan(small) and small > 2**52:
        return  # beyond a double's exact integers pandas' float round trip loses digits
    body = orjson.loads(frame.to_json(orient="columns", double_precision=15))
    batch = parse_batch(body, SPEC, MAX_ROWS)
    assert batch.index == [str(i) for i in range(len(rows))]
    for got, sent in zip(batch.rows, typed(rows), strict=True):
        assert got.keys() == sent.keys()
        for name, value in sent.items():
            if isinstance(value, float):
                # double_precision=15 rounds at the 15th decimal place: small numbers lose digits
                assert math.isclose(got[name], value, rel_tol=1e-14, abs_tol=1e-15)
            else:
                assert got[name] == value


@given(st.integers(MAX_ROWS + 1, 3 * MAX_ROWS), st.sampled_from(["records", "lists", "keys"]))
def test_more_rows_than_the_limit_is_413_in_every_shape(count, shape):
    rows = [{"Pclass": 1, "Sex": "male"}] * count
    body = {
        "records": rows,
        "lists": {"Pclass": [1] * count, "Sex": ["male"] * count},
        "keys": {"Pclass": {str(i): 1 for i in range(count)}, "Sex": {}},
    }[shape]
    result = parse_or_error(body)
    assert isinstance(result, ApiError) and result.status == 413


@given(st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1))
def test_integers_outside_int64_are_refused_not_rounded(number):
    """Found by schemathesis: orjson reads -9223372036854775809 as the float -2**63."""
    raw = f'[{{"Pclass": 1, "Sex": "male", "Parch": {number}}}]'.encode()
    try:
        batch = parse_batch(decode_json(raw), SPEC, MAX_ROWS)
    except ApiError as exc:
        assert exc.status == 422 and exc.details["column"] == "Parch"
    else:
        raise AssertionError(f"{number} was accepted as {batch.rows[0]['Parch']}")


@given(st.integers(-(2**53), 2**53))
def test_integral_floats_are_integers_while_exact(number):
    batch = parse_batch([{"Pclass": float(number), "Sex": "male"}], SPEC, MAX_ROWS)
    assert batch.rows[0]["Pclass"] == number and type(batch.rows[0]["Pclass"]) is int


# -- the common-shape shortcut -------------------------------------------------------------------

# Wrong types, nulls, nan and infinities, integers past int64 and past a double's exact range.
odd_cells = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
EDGES = {  # just inside and just outside what each type takes as it is
    "long": [2**63, -(2**63) - 1, 2**63 - 1, -(2**63), 2.0**53, 2.0**53 + 2, 3.0, 1.5, True],
    "double": [math.inf, -math.inf, math.nan, 1e308, -0.0, 2**63, 2**1100, False],
    "string": ["", 0, False],
}


@st.composite
def same_key_columns(draw):
    """{column: {row key: value}}, every column holding the same keys (the shortcut's shape):
    mostly typed values and the required columns, with odd cells and gaps to hit every check."""
    keys = draw(st.lists(st.text(max_size=3), unique=True, max_size=5))
    columns = [c for c in SPEC.columns if draw(st.integers(0, 9)) < (9 if c.required else 5)]
    extra = draw(st.lists(st.sampled_from(["PassengerId", "Ticket"]) | st.text(max_size=5)))
    body = {}
    for name, kind in [(c.name, c.kind) for c in columns] + [(name, None) for name in extra]:
        cells = [draw(cell_values(kind, draw(st.integers(0, 9)))) for _ in keys]
        body[name] = dict(zip(draw(st.permutations(keys)), cells, strict=True))
    return {name: body[name] for name in draw(st.permutations(list(body)))}


def cell_values(kind: str | None, pick: int) -> st.SearchStrategy:
    """A column's cells: typed 7 times in 10, edge values 2 in 10, odd ones 1 in 10."""
    if kind is None or pick < 1:
        return odd_cells
    return st.sampled_from(EDGES[kind]) if pick < 3 else VALUES[kind]


def outcome(parse, body: dict) -> object:
    try:
        return parse(body, SPEC, 3)  # 3 rows at most: over the limit is drawn too
    except ApiError as exc:
        return (exc.status, exc.code, exc.message, exc.details)


def as_lists(body: dict) -> dict:
    """The same columns as lists of their values (what V2 hands the parser)."""
    return {name: list(cells.values()) for name, cells in body.items()}


@settings(max_examples=400)
@given(same_key_columns())
@pytest.mark.parametrize("shape", [dict, as_lists], ids=["objects", "lists"])
def test_the_common_shape_shortcut_gives_what_the_full_checks_give(shape, body):
    body = shape(body)
    expected = outcome(parse._parse_any, body)
    assert outcome(parse_batch, body) == expected
    if isinstance(expected, Batch):  # the same types too (1 == 1.0 == True)
        got = parse_batch(body, SPEC, 3)
        assert [list(map(type, r.values())) for r in got.rows] == [
            list(map(type, r.values())) for r in expected.rows
        ]


VALID_ROW = {"Pclass": 3, "Sex": "male", "Age": 22.0, "SibSp": 1, "Parch": 0, "Fare": 7.25,
             "Name": "Braund, Mr. Owen", "Cabin": None, "Embarked": "S",
             "Ticket": "A/5 21171"}  # fmt: skip


def test_every_edge_value_in_every_column_agrees_with_the_full_checks():
    for column in SPEC.columns:
        for value in [*EDGES[column.kind], None, "3", 1, 1.0, True, [1], {"a": 1}]:
            body = {name: {"0": v, "1": v} for name, v in VALID_ROW.items()}
            body[column.name] = {"0": VALID_ROW[column.name], "1": value}
            expected = outcome(parse._parse_any, body)
            assert outcome(parse_batch, body) == expected, (column.name, value)
            lists = as_lists(body)
            assert outcome(parse_batch, lists) == outcome(parse._parse_any, lists), column.name
