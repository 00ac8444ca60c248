"""Feature engineering on raw passenger rows, as the /predict contract sends them.

`PassengerFeatures` is the first step of the model's Pipeline. It works row by row on plain
Python values (`derive`), so the same code serves a DataFrame in training and a single dict on
the serving fast path, with no pandas needed there. Its fitted state (the travelling groups'
outcomes, see training/passenger.py) is plain JSON that travels inside the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from training import passenger
from training.passenger import (  # noqa: F401  (re-exported: the names training uses)
    CATEGORICAL_FEATURES,
    FEATURES,
    MISSING,
    NUMERIC_FEATURES,
    TITLES,
    VOCABULARY,
    derive,
    title_of,
)


def records(X: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as dicts, NaN/NA -> None, as the request parser gives them."""
    if isinstance(X, pd.DataFrame):
        return X.astype(object).where(X.notna(), None).to_dict(orient="records")
    return [dict(row) for row in X]


class PassengerFeatures(TransformerMixin, BaseEstimator):
    """Raw passenger DataFrame -> engineered features; extra columns are ignored.

    Fitted: `state_` is the travelling groups' table learnt from the training rows and labels
    (`passenger.fit_state`, plain JSON). `fit_transform` (what `Pipeline.fit` calls) leaves each
    training row's own label out of its group; `transform` (new rows) uses the whole table.
    """

    # The plain-Python row function the serving fast path runs in place of this step, with
    # `state_` as its second argument.
    rows_function = staticmethod(passenger.derive_rows)

    def fit(self, X: pd.DataFrame, y: Any = None) -> PassengerFeatures:
        rows, labels = (records(X), [int(v) for v in y]) if y is not None else ([], [])
        state = passenger.fit_state(rows, labels)  # no labels: no groups known
        self.state_: dict[str, Any] = json.loads(json.dumps(state))  # exactly what JSON gives back
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        if y is None:
            return self.fit(X).transform(X)
        self.fit(X, y)
        return self._frame(passenger.derive_rows(records(X), self.state_, [int(v) for v in y]))

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "state_")
        return self._frame(self.derive_rows(records(X)))

    @staticmethod
    def _frame(derived: tuple[list[list[float]], list[list[str]]]) -> pd.DataFrame:
        numeric_rows, categorical_rows = derived
        numeric = np.array(numeric_rows, dtype=np.float64).reshape(len(numeric_rows), -1)
        categorical = np.array(categorical_rows, dtype=object).reshape(len(categorical_rows), -1)
        frame = pd.DataFrame(numeric, columns=NUMERIC_FEATURES)
        for i, column in enumerate(CATEGORICAL_FEATURES):
            frame[column] = pd.Series(categorical[:, i], dtype=object)
        return frame

    def derive_rows(
        self, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[list[list[float]], list[list[str]]]:
        """Raw rows -> (numeric rows, categorical rows) in FEATURES order, with no pandas.

        `training.passenger.derive_rows(rows, state_)`, which the serving fast path loads from
        the model's own copy of the code and runs without this class (see training/compile.py).
        """
        return passenger.derive_rows(rows, self.state_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(FEATURES, dtype=object)
