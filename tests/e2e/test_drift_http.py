"""Input drift against a real server with two workers: test.csv looks like the training rows,
2,000 third-class men do not; read from /metrics through prometheus_client's parser, and /drift."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from tests.e2e.evidence import batches, by_label, predict, records, settle, total

pytestmark = pytest.mark.slow

WINDOW = 2000
COLUMNS = {"Pclass", "Sex", "Name", "Age", "SibSp", "Parch", "Fare", "Cabin", "Embarked", "Ticket"}


def window_rows(version: str):
    return lambda samples: total(samples, "serving_drift_window_rows", version=version)


def test_test_csv_stays_below_0_1_and_third_class_men_raise_sex_and_pclass(
    serve, registered_model, raw_test: pd.DataFrame
):
    version = registered_model.version
    rows = records(raw_test)
    with serve(registered_model.tracking_uri, workers=2, drift_window=WINDOW) as server:
        for batch in batches(rows, 20):
            predict(server.url, batch)
        held = window_rows(version)
        samples = settle(server.url, lambda s: held(s) == len(rows))
        assert held(samples) == len(rows)
        psi = by_label(samples, "serving_drift_psi", "column", version=version)
        assert set(psi) == COLUMNS
        assert max(psi.values()) < 0.1, psi
        missing = by_label(samples, "serving_drift_missing_rate", "column", version=version)
        assert missing["Cabin"] == pytest.approx(raw_test["Cabin"].isna().mean())
        assert missing["Sex"] == 0.0

        report = requests.get(server.url + "/drift", timeout=10).json()
        assert report["window"] == {"size": WINDOW, "on": True}
        (served,) = report["versions"]
        assert (served["alias"], served["version"], served["rows"]) == ("champion", version, 418)
        assert served["profile"] is True
        assert served["columns"]["Sex"]["psi"] == pytest.approx(psi["Sex"])

        men = raw_test.assign(Pclass=3, Sex="male")
        stream = records(pd.concat([men] * 5).head(2000))
        for batch in batches(stream, 20):
            predict(server.url, batch)
        # the window now holds the last 2,000 rows: all of them third-class men
        samples = settle(
            server.url,
            lambda s: by_label(s, "serving_drift_psi", "column", version=version).get("Sex", 0) > 1,
        )
        psi = by_label(samples, "serving_drift_psi", "column", version=version)
        # each worker holds its last WINDOW / 2 rows: all 2,000 when they shared the requests
        # evenly; a worker that got fewer still holds some of its test.csv rows too
        assert WINDOW / 2 < held(samples) <= WINDOW
        assert psi["Sex"] > 0.2 and psi["Pclass"] > 0.2, psi
        assert psi["Embarked"] < 0.1  # the other columns are test.csv's own
