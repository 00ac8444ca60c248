"""PassengerFeatures and derive: raw passenger rows, as /predict sends them -> features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    MISSING,
    NUMERIC_FEATURES,
    PassengerFeatures,
    derive,
    title_of,
)


def features(row: dict) -> dict:
    """derive() as a {feature name: value} dict."""
    numeric, categorical = derive(row)
    return dict(zip(FEATURES, [*numeric, *categorical], strict=True))


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Braund, Mr. Owen Harris", "Mr"),
        ("Cumings, Mrs. John Bradley (Florence Briggs Thayer)", "Mrs"),
        ("Heikkinen, Miss. Laina", "Miss"),
        ("Palsson, Master. Gosta Leonard", "Master"),
        ("Aubart, Mme. Leontine Pauline", "Mrs"),
        ("Sagesser, Mlle. Emma", "Miss"),
        ("Reynaldo, Ms. Encarnacion", "Miss"),
        ("Rothes, the Countess. of (Lucy Noel Martha Dyer-Edwards)", "Rare"),
        ("Oliva y Ocana, Dona. Fermina", "Rare"),
        ("Uruchurtu, Don. Manuel E", "Rare"),
        ("Crosby, Capt. Edward Gifford", "Rare"),
        ("van Melkebeke, Mr. Philemon", "Mr"),
        ('O\'Brien, Mrs. Thomas (Johanna "Hannah" Godfrey)', "Mrs"),
        ("Smith,Mr. John", "Mr"),  # no space after the comma
        ("Doe, Mrs. Jane (Smith, Anne)", "Mrs"),  # a second comma in the maiden name
        ("Nobody, Prof. Ada", "Rare"),  # an honorific the table has never seen
        ("Just A Name", MISSING),  # no comma: no title to read
        ("Smith, John", MISSING),  # no dot after the title
        ("", MISSING),
        (None, MISSING),
    ],
)
def test_title_extraction(name, title):
    assert title_of(name) == title


def test_every_title_in_the_training_data_is_grouped(raw_train):
    titles = {title_of(name) for name in raw_train["Name"]}
    assert titles == {"Mr", "Mrs", "Miss", "Master", "Rare"}


def test_family_size_alone_and_fare_per_person():
    family = features({"SibSp": 1, "Parch": 2, "Fare": 40.0})
    assert family["FamilySize"] == 4.0
    assert family["IsAlone"] == 0.0
    assert family["FarePerPerson"] == pytest.approx(10.0)
    alone = features({"SibSp": 0, "Parch": 0, "Fare": 7.25})
    assert (alone["FamilySize"], alone["IsAlone"], alone["FarePerPerson"]) == (1.0, 1.0, 7.25)


@pytest.mark.parametrize(
    ("cabin", "deck", "has_cabin"),
    [
        ("C85", "C", 1.0),
        ("C23 C25 C27", "C", 1.0),
        ("b57", "B", 1.0),
        ("  E12 ", "E", 1.0),
        ("T", "T", 1.0),
        ("Z99", "Z", 1.0),  # unseen in training: the encoder ignores it
        (None, MISSING, 0.0),
        (float("nan"), MISSING, 0.0),
        ("", MISSING, 0.0),
        ("   ", MISSING, 0.0),
    ],
)
def test_deck_and_has_cabin(cabin, deck, has_cabin):
    row = features({"Cabin": cabin})
    assert (row["Deck"], row["HasCabin"]) == (deck, has_cabin)


@pytest.mark.parametrize("null", [None, float("nan"), np.nan, pd.NA])
def test_nulls_everywhere(null):
    row = features(
        {
            column: null
            for column in (
                "Pclass",
                "Name",
                "Sex",
                "Age",
                "SibSp",
                "Parch",
                "Fare",
                "Cabin",
                "Embarked",
            )
        }
    )
    for column in ("Pclass", "Age", "Fare", "SibSp", "Parch", "FarePerPerson"):
        assert math.isnan(row[column]), column
    assert (row["FamilySize"], row["IsAlone"], row["HasCabin"]) == (1.0, 1.0, 0.0)
    assert [row[c] for c in CATEGORICAL_FEATURES] == [MISSING] * 4


def test_an_empty_row_and_non_numbers_become_missing_not_errors():
    empty = features({})
    assert [empty[c] for c in CATEGORICAL_FEATURES] == [MISSING] * 4
    odd = features({"Age": "twenty", "Fare": True, "SibSp": [1], "Pclass": "1"})
    assert all(math.isnan(odd[c]) for c in ("Age", "Fare", "SibSp", "Pclass"))


def test_transform_handles_nulls_in_every_column_of_a_frame():
    frame = pd.DataFrame(
        {
            "Pclass": pd.array([1, None], dtype="Int64"),
            "Name": ["A, Mr. B", None],
            "Sex": ["male", None],
            "Age": [30.0, np.nan],
            "SibSp": pd.array([None, 1], dtype="Int64"),
            "Parch": [0, 0],
            "Fare": [np.nan, 10.0],
            "Cabin": [None, np.nan],
            "Embarked": [pd.NA, "S"],
        }
    )
    out = PassengerFeatures().fit_transform(frame)
    assert list(out.columns) == FEATURES
    assert out.loc[1, "Sex"] == MISSING and out.loc[0, "Embarked"] == MISSING
    assert np.isnan(out.loc[1, "Pclass"]) and np.isnan(out.loc[0, "SibSp"])
    assert out.loc[1, "FamilySize"] == 2.0  # a null SibSp/Parch counts as no relatives
    assert out[NUMERIC_FEATURES].dtypes.eq(np.float64).all()


def test_unseen_categories_pass_through_as_values():
    row = features({"Sex": "unknown", "Embarked": "X", "Cabin": "Z99", "Name": "Q, Herr. K"})
    assert (row["Sex"], row["Embarked"], row["Deck"], row["Title"]) == ("unknown", "X", "Z", "Rare")


def test_extra_columns_are_ignored_and_column_order_does_not_matter(raw_train):
    frame = raw_train.head(20)
    reference = PassengerFeatures().fit(frame).transform(frame)
    noisy = frame.assign(Unexpected=1, Comment="hello")[::-1].iloc[::-1]
    shuffled = noisy[list(reversed(noisy.columns))]
    pd.testing.assert_frame_equal(PassengerFeatures().fit(shuffled).transform(shuffled), reference)
    # the label, PassengerId and Ticket never reach the features
    assert not {"Survived", "PassengerId", "Ticket", "Unexpected"} & set(reference.columns)


def test_a_single_row_dict_matches_the_one_row_frame(article_request):
    frame = pd.DataFrame(article_request)
    transformed = PassengerFeatures().fit(frame).transform(frame)
    for position, row in enumerate(frame.to_dict(orient="records")):
        numeric, categorical = derive(row)
        expected = transformed.iloc[position]
        np.testing.assert_array_equal(
            np.array(numeric), expected[NUMERIC_FEATURES].to_numpy(dtype=float)
        )
        assert categorical == expected[CATEGORICAL_FEATURES].tolist()
    # a JSON dict as the fast path sees it: plain ints, None for nulls
    numeric, categorical = derive(
        {
            "Pclass": 3,
            "Sex": "female",
            "Age": None,
            "Fare": 7.7792,
            "Name": "Shine, Miss. Ellen Natalia",
            "Embarked": "Q",
        }
    )
    assert numeric[0] == 3.0 and math.isnan(numeric[1])
    assert categorical == ["female", "Q", "Miss", MISSING]


def test_transform_of_a_list_of_dicts_matches_the_frame(article_request):
    frame = pd.DataFrame(article_request)
    from_frame = PassengerFeatures().fit(frame).transform(frame)
    from_dicts = PassengerFeatures().fit(frame).transform(frame.to_dict(orient="records"))
    pd.testing.assert_frame_equal(from_dicts, from_frame)


def test_feature_names_out():
    assert list(PassengerFeatures().get_feature_names_out()) == FEATURES
