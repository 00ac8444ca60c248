"""derive_columns (a whole chunk at once, for batch scoring) gives exactly what the row function
derive_rows gives: every feature, bit for bit, on every row of train.csv and test.csv, with the
groups' table fitted on train.csv, and on generated rows (nulls, unseen categories, extremes, odd
names and tickets, Unicode text and whitespace)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training import passenger
from training.features import FEATURES, records
from training.passenger import NUMBER_INPUTS, TEXT_INPUTS, derive_columns, derive_rows, fit_state
from training.schema import TARGET


@pytest.fixture(scope="module")
def state(raw_train: pd.DataFrame) -> dict[str, Any]:
    """The groups' table fitted on all of train.csv (the registered model's is fitted on its
    training split: a subset of these keys)."""
    return fit_state(records(raw_train), raw_train[TARGET].tolist())


def typed_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the contract types them (numbers int/float/None, strings str/None)."""
    rows = []
    for record in records(frame):
        row = {}
        for key in (*NUMBER_INPUTS, *TEXT_INPUTS):
            if key not in record:
                continue
            value = record[key]
            if isinstance(value, float) and math.isnan(value):
                value = None
            if value is not None and key in ("Pclass", "SibSp", "Parch"):
                value = int(value)
            row[key] = value
        rows.append(row)
    return rows


def columns_of(rows: Sequence[Mapping[str, Any]], numbers_as: pa.DataType) -> dict[str, pa.Array]:
    """The rows as the batch path types a chunk: one Arrow array per column present in any row
    (absent cells null), numbers as `numbers_as`."""
    present = {key for row in rows for key in row}
    columns = {}
    for key in NUMBER_INPUTS:
        if key in present:
            cells = [row.get(key) for row in rows]
            if numbers_as == pa.float64() or not all(isinstance(v, int | None) for v in cells):
                cells = [None if v is None else float(v) for v in cells]  # as batch types them
                columns[key] = pa.array(cells, pa.float64())
            else:
                columns[key] = pa.array(cells, numbers_as)
    for key in TEXT_INPUTS:
        if key in present:
            columns[key] = pa.array([row.get(key) for row in rows], pa.string())
    return columns


def assert_same(rows: list[dict[str, Any]], state: Any, numbers_as: pa.DataType) -> None:
    numeric, categorical = derive_columns(columns_of(rows, numbers_as), state, size=len(rows))
    numeric_rows, categorical_rows = derive_rows(rows, state)
    width = len(FEATURES) - categorical.shape[1]
    expected = np.array(numeric_rows, dtype=np.float64).reshape(len(rows), width)
    assert numeric.dtype == np.float64 and numeric.shape == expected.shape
    # bit for bit, NaN where NaN (and -0.0 apart from 0.0)
    same = (numeric.view(np.int64) == expected.view(np.int64)) | (
        np.isnan(numeric) & np.isnan(expected)
    )
    strings = np.array(categorical_rows, dtype=object).reshape(len(rows), -1)
    assert categorical.dtype == object and categorical.shape == strings.shape
    for i in np.flatnonzero(~same.all(axis=1) | (categorical != strings).any(axis=1)):
        pytest.fail(
            f"row {i} {rows[i]!r}: columns {numeric[i].tolist()} {categorical[i].tolist()}, "
            f"rows {expected[i].tolist()} {strings[i].tolist()}"
        )
    assert all(type(value) is str for value in categorical.ravel())


@pytest.mark.parametrize("csv", ["train", "test"])
def test_every_passenger_of_the_data(raw_train, raw_test, state, csv):
    frame = raw_train if csv == "train" else raw_test
    assert_same(typed_rows(frame), state, pa.float64())
    assert_same(typed_rows(frame), state, pa.int64())  # Parquet's integer columns
    assert_same(typed_rows(frame), None, pa.float64())  # a features step fitted without groups


def test_absent_columns_and_empty_chunks(raw_test, state):
    rows = typed_rows(raw_test[["Pclass", "Sex"]])
    assert_same(rows, state, pa.float64())
    numeric, categorical = derive_columns({}, state, size=0)
    assert numeric.shape == (0, len(FEATURES) - 4) and categorical.shape == (0, 4)
    numeric, categorical = derive_columns({}, state, size=3)
    assert_same([{}, {}, {}], state, pa.float64())


def test_chunked_and_numpy_inputs_are_taken_too(raw_test, state):
    rows = typed_rows(raw_test)
    columns = columns_of(rows, pa.float64())
    chunked = {k: pa.chunked_array([v[:100], v[100:]]) for k, v in columns.items()}
    as_lists = {k: v.to_pylist() for k, v in columns.items()}
    expected = derive_columns(columns, state)
    for other in (chunked, as_lists):
        numeric, categorical = derive_columns(other, state)
        assert np.array_equal(numeric, expected[0], equal_nan=True)
        assert (categorical == expected[1]).all()
    with pytest.raises(ValueError, match="has 417 values, expected 418"):
        derive_columns({**columns, "Age": columns["Age"][1:]}, state)


# What str.strip() and re's \s treat as whitespace, and Unicode that upper/lower case or strip
# differently from ASCII rules (the reason non-ASCII rows take the row function).
SPACES = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\xa0", "\u2028", "\u3000"]
ODD = ["ß", "\ufb01", "\u0130", "\u0131", "\u03a3", "é", "\x00", ",", ".", "|", ":", "-", "'", '"']
pieces = st.sampled_from(["Mr", "Mrs", "Miss", "Master", "the Countess", "Dr", "Sage", "Andersson",
                          "Smith", "Ada", "C", "c", "ca", "2343", "347082", "PC 17599",
                          *SPACES, *ODD])  # fmt: skip
composed = st.lists(pieces, max_size=8).map("".join)
text = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "male", "female", " female ", "S", "C", "Q", "x", "C85", "B5 B7"]),
    st.text(max_size=12),
    composed,
    st.builds(lambda s, t, g: f"{s},{t}.{g}", composed, composed, composed),
    st.sampled_from(["Sage, Miss. Ada", "SAGE , Master. Tom", "Andersson, Mr. Anders Johan",
                     ", Mlle.", "Roe, the Countess. of X", "a,. b, Mr.", "x,  .", "Mr."]),
)  # fmt: skip
number = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 0.42, 7.25, 7.2292, 69.55, 512.3292, 1e-7, 1e9, 1e300, -1.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=600, allow_nan=False),
)
integer = st.one_of(st.none(), st.sampled_from([0, 1, 2, 3, 8]), st.integers(0, 2**62))
ticket = st.one_of(
    text,
    st.sampled_from(["347082", "CA. 2343", "CA 2144", "3101295", "347088", "382652", "1601",
                     "S.O.C. 14879", "pc 17599", "113760", "19950", "W./C. 6608", "2666"]),
)  # fmt: skip
STRATEGIES = {"Pclass": integer, "Sex": text, "Name": text, "Age": number, "SibSp": integer,
              "Parch": integer, "Fare": number, "Cabin": text, "Embarked": text,
              "Ticket": ticket}  # fmt: skip


@st.composite
def passenger_row(draw: st.DrawFn) -> dict[str, Any]:
    row = {}
    for key, strategy in STRATEGIES.items():
        if draw(st.integers(0, 4)):  # a column may be absent from some rows (or all)
            row[key] = draw(strategy)
    return row


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(passenger_row(), min_size=1, max_size=20))
def test_generated_rows(state, rows):
    assert_same(rows, state, pa.float64())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(passenger_row(), min_size=1, max_size=8), data=st.data())
def test_generated_members_of_known_groups(state, raw_train, rows, data):
    """Rows that share a ticket or a surname and fare with a training group, written oddly."""
    known = raw_train.sample(len(rows), random_state=data.draw(st.integers(0, 2**16)))
    for row, (_, source) in zip(rows, known.iterrows(), strict=True):
        spacing = data.draw(st.sampled_from(["", " ", "  ", "\t", "\x1c"]))
        row["Name"] = spacing + str(source["Name"]).upper() + spacing
        row["Fare"] = None if pd.isna(source["Fare"]) else float(source["Fare"])
        if data.draw(st.booleans()):
            row["Ticket"] = spacing + str(source["Ticket"]).lower().replace(" ", ".") + spacing
    assert_same(rows, state, pa.float64())


def test_a_state_with_odd_counts_answers_as_the_row_function():
    """Counts that sum to 0 are skipped (the next key answers); only a positive sum answers."""
    state = {
        passenger.GROUPS: {
            "ticket:111": [0, 0],
            "name:doe|20.0000": [2, 1],
            "ticket:222": [3, -1],
            "ticket:333": [],
            "other:x": [1, 1],
        }
    }
    rows = [
        {"Ticket": "111", "Name": "Doe, Mrs. Ann", "Fare": 20.0},
        {"Ticket": "2-2-2", "Name": "Doe, Mrs. Ann", "Fare": 20.0},
        {"Ticket": "333", "Name": "Doe, Mrs. Ann", "Fare": 20.00001},
        {"Ticket": "333", "Name": "Doe, Mrs. Ann", "Fare": 19.99999},
        {"Ticket": None, "Name": ", Mrs. Ann", "Fare": 20.0},
    ]
    assert_same(rows, state, pa.float64())
