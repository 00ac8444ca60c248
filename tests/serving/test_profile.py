"""The training profile: its format (written at registration, read by the server), its bins
and the PSI, and that the registered model carries it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from serving.evidence.drift import Window
from serving.model.profile import (
    MAX_CATEGORIES,
    ColumnProfile,
    Profile,
    numeric_profile,
    psi,
    read_profile,
    string_profile,
)
from training.profile import training_profile
from training.signature import INPUT_SCHEMA


def test_a_number_column_is_cut_at_its_deciles_with_missing_last():
    column = numeric_profile([1.0, 2.0, 3.0, 4.0, None, *range(5, 11)])
    assert column.kind == "numeric" and len(column.edges) == 9
    assert column.bins == len(column.edges) + 2
    assert sum(column.expected) == pytest.approx(1.0)
    assert column.expected[column.missing_bin] == pytest.approx(1 / 11)
    bins = column.bin_indices([-5.0, 1.0, 1000.0, None, math.nan])
    assert bins.tolist() == [0, 0, len(column.edges), column.missing_bin, column.missing_bin]


def test_a_few_strings_are_categories_and_many_are_text_by_length():
    sexes = string_profile(["male", "male", "female", None])
    assert sexes.kind == "categorical" and sexes.categories == ("male", "female")
    assert sexes.expected == (0.5, 0.25, 0.0, 0.25)  # male, female, other, missing
    assert sexes.bin_indices(["female", "banana", None]).tolist() == [1, 2, 3]
    names = string_profile([f"passenger {i}" for i in range(MAX_CATEGORIES + 1)])
    assert names.kind == "text" and names.bin_indices(["x" * 500]).tolist() == [len(names.edges)]


def test_values_of_any_type_fall_in_the_bins_of_their_typed_equivalents():
    """Typed values take the bulk path; anything else (pandas' NA, numbers as strings, NaN,
    a number in a string column) the per-value rule, with the same bins."""
    ages = numeric_profile([float(a) for a in range(80)])
    odd = [pd.NA, "12.5", "old", True, 3, np.float64(40.0), math.nan, [1, 2]]
    as_typed = [None, 12.5, None, 1.0, 3.0, 40.0, None, None]
    assert ages.bin_indices(odd).tolist() == ages.bin_indices(as_typed).tolist()
    sexes = string_profile(["male", "female"])  # female 0, male 1, other 2, missing 3
    odd = ["male", None, math.nan, 1, "nobody", np.str_("female")]
    assert sexes.bin_indices(odd).tolist() == [1, 3, 3, 2, 2, 0]


def test_psi_is_zero_for_the_same_shares_and_large_for_a_shifted_window():
    assert psi([0.5, 0.5], [10, 10]) == pytest.approx(0.0)
    assert psi([0.65, 0.35], [100, 0]) > 2
    assert psi([0.5, 0.5], [0, 0]) is None


def test_the_format_round_trips_through_json():
    profile = Profile(rows=3, columns={"Sex": string_profile(["male", "female", "male"])})
    assert Profile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    with pytest.raises(ValueError, match="format"):
        Profile.from_dict({**profile.to_dict(), "format": 99})
    with pytest.raises(ValueError, match="bins"):
        ColumnProfile("categorical", (1.0,), categories=("a",))


def test_the_training_profile_covers_every_input_column(raw_train: pd.DataFrame):
    profile = training_profile(raw_train)
    assert list(profile.columns) == INPUT_SCHEMA.input_names()
    for column in profile.columns.values():
        assert sum(column.expected) == pytest.approx(1.0, abs=1e-9)
    cabin = profile.columns["Cabin"]
    assert cabin.expected[cabin.missing_bin] == pytest.approx(raw_train["Cabin"].isna().mean())
    assert profile.columns["Sex"].categories == ("male", "female")


def test_the_registered_model_carries_the_training_profile(model_dir):
    profile = read_profile(model_dir)
    assert profile is not None and profile.rows == 712  # the training split, not validation
    assert set(profile.columns) == set(INPUT_SCHEMA.input_names())


def test_a_window_keeps_only_its_last_rows():
    profile = Profile(rows=3, columns={"Sex": string_profile(["male", "male", "female"])})
    window = Window(profile, size=3)
    window.add([{"Sex": "female"}] * 2)
    window.add([{"Sex": "male"}] * 2)
    assert window.rows == 3
    assert window.counts()["Sex"].tolist() == [2, 1, 0, 0]
    window.add([{"Sex": None}] * 5)
    assert np.array_equal(window.counts()["Sex"], [0, 0, 0, 3])
