"""Behaviour of the trained pipeline (the session's registered model), beyond its accuracy.

Invariance: what must not matter (PassengerId; a ticket of no known group, how a ticket is
written) changes nothing.
Direction: what must matter moves the answer the right way (class, sex).
Contract: rows exactly as /predict sends them, nulls and unseen categories included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import Paths
from training.train import load_model


@pytest.fixture(scope="module")
def model(registered_model):
    return load_model(Paths(root=registered_model.root).model)


@pytest.fixture(scope="module")
def passengers(raw_train, raw_test) -> pd.DataFrame:
    """Every real passenger, train and test, without the label."""
    return pd.concat([raw_train.drop(columns=["Survived"]), raw_test], ignore_index=True)


def survival(model, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame)[:, 1]


def test_passenger_id_changes_nothing(model, raw_test):
    baseline = survival(model, raw_test)
    rng = np.random.default_rng(0)
    changed = raw_test.assign(
        PassengerId=rng.permutation(raw_test["PassengerId"].to_numpy()) + 10_000
    )
    np.testing.assert_array_equal(survival(model, changed), baseline)
    np.testing.assert_array_equal(survival(model, raw_test.drop(columns=["PassengerId"])), baseline)


def test_a_ticket_of_no_known_group_scores_as_a_missing_ticket(model, raw_test):
    """Ticket only finds a passenger's travelling group: a ticket no training passenger had
    carries no information, exactly like none at all."""
    rng = np.random.default_rng(0)
    unseen = raw_test.assign(Ticket=[f"XYZ {n}" for n in rng.integers(1, 10**6, len(raw_test))])
    missing = raw_test.assign(Ticket=None)
    np.testing.assert_array_equal(survival(model, unseen), survival(model, missing))
    np.testing.assert_array_equal(
        survival(model, raw_test.drop(columns=["Ticket"])), survival(model, missing)
    )


def test_a_ticket_written_differently_is_the_same_ticket(model, raw_test):
    respelt = raw_test.assign(
        Ticket=raw_test["Ticket"].str.lower().str.replace(" ", "  ").str.replace(".", "")
    )
    np.testing.assert_array_equal(survival(model, respelt), survival(model, raw_test))


def test_a_known_group_moves_some_answers(model, raw_test):
    """The group feature is not dead weight: test passengers travelling with training passengers
    score differently once their groups are hidden (no ticket, an unseen surname, same title)."""
    hidden = raw_test.assign(
        Ticket=None, Name=raw_test["Name"].str.replace(r"^[^,]*,", "Unseen,", regex=True)
    )
    moved = np.abs(survival(model, raw_test) - survival(model, hidden)) > 0.05
    assert moved.sum() >= 10


def test_first_class_never_lowers_survival_against_third(model, passengers):
    first = survival(model, passengers.assign(Pclass=1))
    third = survival(model, passengers.assign(Pclass=3))
    lowered = np.flatnonzero(first < third - 1e-9)
    assert lowered.size == 0, f"{lowered.size} lowered, worst {(first - third).min():.3f}"


def test_first_class_never_lowers_survival_of_women_against_third(model, passengers):
    women = passengers[passengers["Sex"].eq("female")]
    assert len(women) > 400
    first = survival(model, women.assign(Pclass=1))
    third = survival(model, women.assign(Pclass=3))
    lowered = np.flatnonzero(first < third - 1e-9)
    assert lowered.size == 0, women.iloc[lowered[:5]].to_string()


def test_first_class_raises_survival_for_most_passengers_and_on_average(model, passengers):
    first = survival(model, passengers.assign(Pclass=1))
    third = survival(model, passengers.assign(Pclass=3))
    assert len(passengers) == 1309
    assert (first - third).mean() > 0.05
    assert (first >= third).all()


def test_women_have_higher_mean_survival_than_men(model, passengers):
    proba = survival(model, passengers)
    women = proba[passengers["Sex"].eq("female").to_numpy()].mean()
    men = proba[passengers["Sex"].eq("male").to_numpy()].mean()
    assert women > men + 0.3, (women, men)


def test_accepts_the_article_request_as_sent(model, article_request):
    frame = pd.DataFrame(article_request)
    assert frame["Age"].isna().sum() == 1 and frame["Cabin"].isna().sum() == 1
    labels = model.predict(frame)
    proba = model.predict_proba(frame)
    assert labels.shape == (2,) and set(labels) <= {0, 1}
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert labels[0] == 1  # Miss Fortune, first class, Cabin C23: survives in any sane model


def test_accepts_nulls_and_unseen_categories(model, article_request):
    frame = pd.DataFrame(article_request)
    odd = frame.assign(Embarked=["X", None], Cabin=["Z99", "  "], Name=["Q, Herr. K", None])
    odd.loc[odd.index[0], "Sex"] = "unknown"
    nulls = pd.DataFrame({column: [None] for column in frame.columns}).assign(
        Pclass=[3], Sex=["male"]
    )
    for rows in (odd, nulls, frame[["Pclass", "Sex"]]):  # only the required columns
        proba = model.predict_proba(rows)
        assert np.isfinite(proba).all() and proba.shape == (len(rows), 2)


def test_column_order_and_extra_columns_do_not_matter(model, raw_test):
    reordered = raw_test[list(reversed(raw_test.columns))].assign(Comment="x")
    np.testing.assert_array_equal(survival(model, reordered), survival(model, raw_test))


def test_a_json_style_row_matches_the_frame(model, article_request):
    """Row-major JSON records (ints, None) give the same answer as the column-major frame."""
    frame = pd.DataFrame(article_request)
    records = pd.DataFrame.from_records(frame.to_dict(orient="records"))
    np.testing.assert_allclose(survival(model, records), survival(model, frame))
