"""Behaviour of the trained pipeline (the session's registered model), beyond its accuracy.

Invariance: what must not matter (Ticket, PassengerId) never flips a prediction.
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


def test_changing_ticket_or_passenger_id_never_flips_a_prediction(model, raw_test):
    baseline = model.predict(raw_test)
    rng = np.random.default_rng(0)
    changed = raw_test.assign(
        Ticket=[f"XYZ {n}" for n in rng.integers(1, 10**6, len(raw_test))],
        PassengerId=rng.permutation(raw_test["PassengerId"].to_numpy()) + 10_000,
    )
    np.testing.assert_array_equal(model.predict(changed), baseline)
    np.testing.assert_array_equal(survival(model, changed), survival(model, raw_test))
    for column in ("Ticket", "PassengerId"):
        np.testing.assert_array_equal(model.predict(raw_test.drop(columns=[column])), baseline)


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
