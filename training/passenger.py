"""One raw passenger -> engineered features, in plain Python (the standard library only).

The model's `features` step (`training.features.PassengerFeatures`) runs these functions on
DataFrames in training; the serving fast path runs the very same file, from the registered
model's own copy of the code, on the typed rows of a request, without pandas or scikit-learn.
Nothing here may import beyond the standard library: a serving worker loads this file alone.

Travelling groups: passengers who share a ticket (or, without one, a surname and a fare) tend
to share a fate, the women and children of a group most of all. `fit_state` learns, from the
training rows only, how many of each group's women and children survived and died; `derive`
gives a passenger those counts for the group it belongs to (0, 0 for no known group). On the
training rows themselves (`labels` given) each row's own label is taken out of its group's
counts first (leave-one-out), so no training row ever sees its own outcome. The state is plain
JSON (lists and ints under string keys): the registered ONNX graph carries it, and serving
passes it back to `derive_rows(rows, state)`.
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
                    "FarePerPerson", "HasCabin", "GroupSurvived", "GroupDied"]  # fmt: skip
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


GROUPS = "groups"  # the state's table: group key -> [women and children survived, died]
_NOT_A_KEY_CHARACTER = re.compile(r"[^0-9A-Z]")


def ticket_key(ticket: Any) -> str | None:
    """'C.A. 2343' and 'CA 2343' are one ticket: letters and digits only, upper case."""
    text = _text(ticket)
    key = _NOT_A_KEY_CHARACTER.sub("", text.upper()) if text else ""
    return f"ticket:{key}" if key else None


def surname_fare_key(name: Any, fare: float) -> str | None:
    """A family without a ticket number: the surname before the comma, and the fare they paid."""
    text = _text(name)
    if not text or "," not in text or not math.isfinite(fare):
        return None
    surname = text.split(",", 1)[0].strip().lower()
    return f"name:{surname}|{fare:.4f}" if surname else None


def group_keys(row: Mapping[str, Any]) -> list[str]:
    """The groups a passenger can belong to, the most specific (the ticket) first."""
    keys = (
        ticket_key(row.get("Ticket")),
        surname_fare_key(row.get("Name"), _number(row.get("Fare"))),
    )
    return [key for key in keys if key is not None]


def sex_and_title(row: Mapping[str, Any]) -> tuple[str, str]:
    return _text(row.get("Sex")) or MISSING, title_of(_text(row.get("Name")))


def is_woman_or_child(sex: str, title: str) -> bool:
    return sex == "female" or title == "Master"


def fit_state(rows: Iterable[Mapping[str, Any]], labels: Iterable[int]) -> dict[str, Any]:
    """The groups of the labelled training rows: how many of their women and children survived
    and died (men are left out: they mostly died whatever their group did)."""
    groups: dict[str, list[int]] = {}
    for row, label in zip(rows, labels, strict=True):
        if not is_woman_or_child(*sex_and_title(row)):
            continue
        for key in group_keys(row):
            counts = groups.setdefault(key, [0, 0])
            counts[0 if int(label) == 1 else 1] += 1
    return {GROUPS: dict(sorted(groups.items()))}


def group_outcome(
    row: Mapping[str, Any], state: Mapping[str, Any] | None, own_label: int | None, counted: bool
) -> tuple[float, float]:
    """(survived, died) among the other women and children of the row's first known group.

    `own_label`: the row is one of the training rows `state` was fitted on, and `counted` says
    whether it was counted there: its own outcome is taken out first (leave-one-out).
    """
    table = state.get(GROUPS, {}) if state else {}
    for key in group_keys(row):
        counts = table.get(key)
        if not counts:
            continue
        survived, died = counts
        if own_label is not None and counted:
            survived, died = (survived - 1, died) if own_label == 1 else (survived, died - 1)
        if survived + died > 0:
            return float(survived), float(died)
    return 0.0, 0.0


def derive(
    row: Mapping[str, Any], state: Mapping[str, Any] | None = None, own_label: int | None = None
) -> tuple[list[float], list[str]]:
    """One raw passenger -> (numeric features, categorical features) in FEATURES order.

    `state`: a fitted `fit_state` (None: no groups known). `own_label`: the row's label when the
    row is one of the rows `state` was fitted on (leave-one-out, see `group_outcome`).
    """
    sibsp, parch = _number(row.get("SibSp")), _number(row.get("Parch"))
    family = 1.0 + (0.0 if math.isnan(sibsp) else sibsp) + (0.0 if math.isnan(parch) else parch)
    fare = _number(row.get("Fare"))
    cabin = _text(row.get("Cabin"))
    sex, title = sex_and_title(row)
    survived, died = group_outcome(row, state, own_label, is_woman_or_child(sex, title))
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
        survived,
        died,
    ]
    categorical = [
        sex,
        _text(row.get("Embarked")) or MISSING,
        title,
        cabin[0].upper() if cabin else MISSING,
    ]
    return numeric, categorical


def derive_rows(
    rows: Iterable[Mapping[str, Any]],
    state: Mapping[str, Any] | None = None,
    labels: Iterable[int] | None = None,
) -> tuple[list[list[float]], list[list[str]]]:
    """Raw rows -> (numeric rows, categorical rows) in FEATURES order.

    The serving fast path calls `derive_rows(rows, state)`; `labels` only in training, for the
    rows `state` was fitted on (each row's own label is left out of its group).
    """
    rows = list(rows)
    own = [None] * len(rows) if labels is None else [int(label) for label in labels]
    numeric: list[list[float]] = []
    categorical: list[list[str]] = []
    for row, label in zip(rows, own, strict=True):
        values, names = derive(row, state, label)
        numeric.append(values)
        categorical.append(names)
    return numeric, categorical
