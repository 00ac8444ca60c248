"""Travelling groups: the fitted table of women's and children's outcomes per shared ticket (or
surname and fare), learnt from training rows only, with no training row seeing its own label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.features import NUMERIC_FEATURES, PassengerFeatures, records
from training.passenger import (
    GROUPS,
    derive,
    derive_rows,
    fit_state,
    group_keys,
    surname_fare_key,
    ticket_key,
)
from training.schema import TARGET

GROUP_COLUMNS = [NUMERIC_FEATURES.index("GroupSurvived"), NUMERIC_FEATURES.index("GroupDied")]


def group_features(numeric_rows: list[list[float]]) -> list[tuple[float, float]]:
    return [(row[GROUP_COLUMNS[0]], row[GROUP_COLUMNS[1]]) for row in numeric_rows]


@pytest.mark.parametrize(
    ("ticket", "key"),
    [
        ("CA. 2343", "ticket:CA2343"),
        ("C.A. 2343", "ticket:CA2343"),
        ("ca 2343", "ticket:CA2343"),
        (" 347082 ", "ticket:347082"),
        ("", None),
        ("  ", None),
        ("./", None),
        (None, None),
        (float("nan"), None),
        (12345, "ticket:12345"),  # not a string: still a key, never an error
    ],
)
def test_ticket_keys(ticket, key):
    assert ticket_key(ticket) == key


def test_surname_and_fare_keys():
    assert surname_fare_key("Sage, Miss. Ada", 69.55) == "name:sage|69.5500"
    assert surname_fare_key("SAGE, Master. Tom", 69.55) == "name:sage|69.5500"
    assert surname_fare_key("no comma", 7.25) is None
    assert surname_fare_key("Sage, Miss. Ada", float("nan")) is None
    assert surname_fare_key(None, 7.25) is None
    assert group_keys({"Name": "A, Mr. B", "Fare": "x", "Ticket": None}) == []


def small_family() -> tuple[list[dict], list[int]]:
    rows = [
        {"Name": "Doe, Mrs. Ann", "Sex": "female", "Ticket": "111", "Fare": 20.0},
        {"Name": "Doe, Miss. Bea", "Sex": "female", "Ticket": "111", "Fare": 20.0},
        {"Name": "Doe, Master. Cy", "Sex": "male", "Ticket": "111", "Fare": 20.0},
        {"Name": "Doe, Mr. Dan", "Sex": "male", "Ticket": "111", "Fare": 20.0},
        {"Name": "Roe, Mrs. Eve", "Sex": "female", "Ticket": "222", "Fare": 9.0},
    ]
    return rows, [1, 1, 0, 0, 1]


def test_the_table_counts_women_and_children_only():
    rows, labels = small_family()
    state = fit_state(rows, labels)
    # Mr Doe (a man) is not counted; Master Cy (a boy) is
    assert state[GROUPS]["ticket:111"] == [2, 1]
    assert state[GROUPS]["name:doe|20.0000"] == [2, 1]
    assert state[GROUPS]["ticket:222"] == [1, 0]


def test_a_new_passenger_of_a_known_group_gets_its_outcomes():
    rows, labels = small_family()
    state = fit_state(rows, labels)
    assert group_features(derive_rows([{"Ticket": "111"}], state)[0]) == [(2.0, 1.0)]
    # no ticket: the surname and fare find the family
    assert group_features(derive_rows([{"Name": "Doe, Miss. Zoe", "Fare": 20.0}], state)[0]) == [
        (2.0, 1.0)
    ]
    # no known group, no state: nothing known
    assert group_features(derive_rows([{"Ticket": "999"}], state)[0]) == [(0.0, 0.0)]
    assert group_features(derive_rows([{"Ticket": "111"}], None)[0]) == [(0.0, 0.0)]


def test_on_its_training_rows_each_row_leaves_out_its_own_label():
    rows, labels = small_family()
    state = fit_state(rows, labels)
    own = group_features(derive_rows(rows, state, labels)[0])
    # Mrs Doe survived: the others are Miss Bea (survived) and Master Cy (died)
    assert own[0] == (1.0, 1.0)
    assert own[2] == (2.0, 0.0)  # Master Cy died: the other two survived
    assert own[3] == (2.0, 1.0)  # Mr Doe was never counted: the whole group
    assert own[4] == (0.0, 0.0)  # Mrs Roe travelled alone: nothing but her own label


def test_fit_transform_equals_a_table_fitted_without_each_row(raw_train: pd.DataFrame):
    """Exact leave-one-out on real rows: row i's group features from fit_transform are the ones
    a table fitted on every other row gives it. A row that saw its own label would differ."""
    frame = raw_train.head(300)
    X, y = frame.drop(columns=[TARGET]), frame[TARGET].to_numpy()
    step = PassengerFeatures()
    seen = step.fit_transform(X, y)[["GroupSurvived", "GroupDied"]].to_numpy()
    rows, labels = records(X), [int(v) for v in y]
    informed = 0
    for i in range(len(rows)):
        others = fit_state(rows[:i] + rows[i + 1 :], labels[:i] + labels[i + 1 :])
        expected = group_features(derive_rows([rows[i]], others)[0])[0]
        assert tuple(seen[i]) == expected, (i, rows[i]["Name"])
        informed += expected != (0.0, 0.0)
    assert informed > 20  # the check is not vacuous: many rows have a known group


def test_a_training_rows_features_do_not_depend_on_its_own_label(raw_train: pd.DataFrame):
    """Flip one woman's or child's label: her own features stay, her group's others move."""
    X, y = raw_train.drop(columns=[TARGET]), raw_train[TARGET].to_numpy()
    base = PassengerFeatures().fit_transform(X, y)
    women_and_children = X["Sex"].eq("female") | X["Name"].str.contains("Master")
    grouped = X["Ticket"].duplicated(keep=False) & women_and_children
    flipped_rows = np.flatnonzero(grouped.to_numpy())[:30]
    assert len(flipped_rows) == 30
    for i in flipped_rows:
        one = y.copy()
        one[i] = 1 - one[i]
        again = PassengerFeatures().fit_transform(X, one)
        pd.testing.assert_series_equal(again.iloc[i], base.iloc[i])
        assert not again.equals(base), i  # the other members of its group do see it


def test_transform_uses_the_whole_table_and_matches_derive(raw_train: pd.DataFrame):
    X, y = raw_train.drop(columns=[TARGET]), raw_train[TARGET]
    step = PassengerFeatures().fit(X, y)
    frame = step.transform(X)
    for position, row in enumerate(records(X.head(50))):
        numeric, _ = derive(row, step.state_)
        np.testing.assert_array_equal(
            np.array(numeric), frame.iloc[position][NUMERIC_FEATURES].to_numpy(dtype=float)
        )


def test_the_state_is_plain_json_and_fitted_without_labels_is_empty(raw_train: pd.DataFrame):
    import json

    X, y = raw_train.drop(columns=[TARGET]), raw_train[TARGET]
    state = PassengerFeatures().fit(X, y).state_
    assert json.loads(json.dumps(state)) == state
    assert all(isinstance(v, list) and len(v) == 2 for v in state[GROUPS].values())
    assert PassengerFeatures().fit(X).state_ == {GROUPS: {}}
