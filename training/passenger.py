"""One raw passenger -> engineered features, in plain Python (the standard library only).

The model's `features` step (`training.features.PassengerFeatures`) runs these functions on
DataFrames in training; the serving fast path runs the very same file, from the registered
model's own copy of the code, on the typed rows of a request, without pandas or scikit-learn.
Nothing here may import beyond the standard library: a serving worker loads this file alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

MISSING = "missing"

TITLE_PATTERN = re.compile(r",\s*([^.]+)\.")
TITLES = {
    "Mr": "Mr", "Mrs": "Mrs", "Miss": "Miss", "Master": "Master",
    "Mlle": "Miss", "Ms": "Miss", "Mme": "Mrs", "Lady": "Rare", "the Countess": "Rare",
    "Dona": "Rare", "Don": "Rare", "Sir": "Rare", "Jonkheer": "Rare", "Dr": "Rare",
    "Rev": "Rare", "Col": "Rare", "Major": "Rare", "Capt": "Rare",
}  # fmt: skip

NUMERIC_FEATURES = ["Pclass", "Age", "Fare", "SibSp", "Parch", "FamilySize", "IsAlone",
                    "FarePerPerson", "HasCabin"]  # fmt: skip
CATEGORICAL_FEATURES = ["Sex", "Embarked", "Title", "Deck"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# The known values of each categorical feature; anything else (and MISSING) encodes as all zeros.
# Fixed rather than learnt, so the encoded width never depends on which rows a fold happens to see.
VOCABULARY = {
    "Sex": ["female", "male"],
    "Embarked": ["C", "Q", "S"],
    "Title": ["Master", "Miss", "Mr", "Mrs", "Rare"],
    "Deck": ["A", "B", "C", "D", "E", "F", "G", "T"],
}


def _number(value: Any) -> float:
    """A float for any JSON or pandas scalar; NaN for null, NA, or anything not a number."""
    if value is None or isinstance(value, bool | str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (whose comparisons have no truth value), without pandas."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def title_of(name: str | None) -> str:
    """The honorific in a Kaggle name ('Braund, Mr. Owen Harris' -> 'Mr'), grouped."""
    if not name:
        return MISSING
    match = TITLE_PATTERN.search(name)
    return TITLES.get(match.group(1).strip(), "Rare") if match else MISSING


def derive(row: Mapping[str, Any]) -> tuple[list[float], list[str]]:
    """One raw passenger -> (numeric features, categorical features) in FEATURES order."""
    sibsp, parch = _number(row.get("SibSp")), _number(row.get("Parch"))
    family = 1.0 + (0.0 if math.isnan(sibsp) else sibsp) + (0.0 if math.isnan(parch) else parch)
    fare = _number(row.get("Fare"))
    cabin = _text(row.get("Cabin"))
    numeric = [
        _number(row.get("Pclass")),
        _number(row.get("Age")),
        fare,
        sibsp,
        parch,
        family,
        1.0 if family == 1.0 else 0.0,
        fare / family,
        0.0 if cabin is None else 1.0,
    ]
    categorical = [
        _text(row.get("Sex")) or MISSING,
        _text(row.get("Embarked")) or MISSING,
        title_of(_text(row.get("Name"))),
        cabin[0].upper() if cabin else MISSING,
    ]
    return numeric, categorical


def derive_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[list[float]], list[list[str]]]:
    """Raw rows -> (numeric rows, categorical rows) in FEATURES order."""
    numeric: list[list[float]] = []
    categorical: list[list[str]] = []
    for row in rows:
        values, labels = derive(row)
        numeric.append(values)
        categorical.append(labels)
    return numeric, categorical
