"""Feature engineering on raw passenger rows, as the /predict contract sends them.

`PassengerFeatures` is the first step of the model's Pipeline. It works row by row on plain
Python values (`derive`), so the same code serves a DataFrame in training and a single dict on
the serving fast path, with no pandas needed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

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


class PassengerFeatures(TransformerMixin, BaseEstimator):
    """Raw passenger DataFrame -> engineered features; extra columns are ignored."""

    # The plain-Python row function the serving fast path runs in place of this step.
    rows_function = staticmethod(passenger.derive_rows)

    def fit(self, X: pd.DataFrame, y: Any = None) -> PassengerFeatures:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):  # NaN/NA -> None, as the request parser gives them
            rows = X.astype(object).where(X.notna(), None).to_dict(orient="records")
        else:
            rows = list(X)
        derived = [derive(row) for row in rows]
        numeric = np.array([n for n, _ in derived], dtype=np.float64).reshape(len(rows), -1)
        categorical = np.array([c for _, c in derived], dtype=object).reshape(len(rows), -1)
        frame = pd.DataFrame(numeric, columns=NUMERIC_FEATURES)
        for i, column in enumerate(CATEGORICAL_FEATURES):
            frame[column] = pd.Series(categorical[:, i], dtype=object)
        return frame

    def derive_rows(
        self, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[list[list[float]], list[list[str]]]:
        """Raw rows -> (numeric rows, categorical rows) in FEATURES order, with no pandas.

        `training.passenger.derive_rows`, which the serving fast path loads from the model's
        own copy of the code and runs without this class (see training/compile.py).
        """
        return passenger.derive_rows(rows)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(FEATURES, dtype=object)
