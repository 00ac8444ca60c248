"""One raw passenger -> engineered features, in plain Python (the standard library only).

The model's `features` step (`training.features.PassengerFeatures`) runs these functions on
DataFrames in training; the serving fast path runs the very same file, from the registered
model's own copy of the code, on the typed rows of a request, without pandas or scikit-learn.
Nothing here may import beyond the standard library at import time: a serving worker loads this
file alone. Batch scoring calls `derive_columns`, the same features for a whole chunk at once,
which imports numpy and pyarrow when it is called (see below).

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
    kind = type(value)
    if kind is float or kind is int:  # a served row's numbers: one test (bool is neither)
        return float(value)
    if value is None or isinstance(value, bool | str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (whose comparisons have no truth value), without pandas."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _text(value: Any) -> str | None:
    if type(value) is str:  # a served row's strings: one test
        return value.strip() or None
    if missing(value):
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


# -- the same features for a whole chunk at once (batch scoring) -------------------------------
#
# `derive_columns(columns, state)` is `derive_rows(rows, state)` on columns: what a batch job
# calls once per chunk instead of once per row. numpy and pyarrow are imported inside it, so
# importing this file still needs the standard library only (a serving worker never calls it).
# Its answers are the row function's exactly, by construction where the vector kernels might
# differ from Python: the whitespace `str.strip` and `\s` see is spelt out, fares are formatted
# by Python once per distinct value, and a row with any non-ASCII text (where Unicode case and
# whitespace rules could part) is derived by `derive` itself. The parity tests check it on every
# row of train.csv and test.csv and on generated rows; batch scoring checks it again on the
# graph's check rows before it uses it.

# What `str.strip()` strips and `\s` matches in an ASCII string.
_ASCII_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_ASCII_SPACE_CLASS = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
_COLUMN_TITLE = ",(?:" + _ASCII_SPACE_CLASS + r")*(?P<title>[^.]+)\."  # TITLE_PATTERN
_COLUMN_SURNAME = r"^(?P<surname>[^,]*),"
NUMBER_INPUTS = ("Pclass", "Age", "Fare", "SibSp", "Parch")
TEXT_INPUTS = ("Name", "Sex", "Cabin", "Embarked", "Ticket")


def _group_tables(state: Mapping[str, Any] | None) -> dict[str, tuple[list[str], list[float]]]:
    """The state's groups that `group_outcome` can answer with (counts summing above 0), by key
    kind ("ticket", "name"), the kind's prefix dropped: (keys, [survived, died, ...])."""
    tables: dict[str, tuple[list[str], list[float]]] = {"ticket": ([], []), "name": ([], [])}
    for key, counts in (state.get(GROUPS, {}) if state else {}).items():
        if not counts:
            continue
        survived, died = counts
        kind, _, rest = key.partition(":")
        if survived + died > 0 and kind in tables:
            keys, values = tables[kind]
            keys.append(rest)
            values.extend((float(survived), float(died)))
    return tables


def derive_columns(
    columns: Mapping[str, Any], state: Mapping[str, Any] | None = None, size: int | None = None
) -> tuple[Any, Any]:
    """Typed columns -> (numeric [N, k] float64 array, categorical [N, m] object array): exactly
    `derive_rows(rows, state)` for the same N rows, in FEATURES order.

    `columns`: column name -> pyarrow array (or anything `pyarrow.array` takes): numbers (nulls
    and NaN missing) for Pclass, Age, Fare, SibSp, Parch; strings (nulls missing) for Name, Sex,
    Cabin, Embarked, Ticket; an absent column is all missing. `size`: N, when no column is given.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = size if size is not None else len(next(iter(columns.values()))) if columns else 0

    def array(name: str, kind: Any) -> Any:
        values = columns.get(name)
        if values is None:
            return pa.nulls(n, kind)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        elif not isinstance(values, pa.Array):
            values = pa.array(values, from_pandas=True)
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values, expected {n}")
        return values.cast(kind, safe=False)  # an int past 2**53 -> float, as float() does

    numbers = {}
    for name in NUMBER_INPUTS:
        values = array(name, pa.float64()).to_numpy(zero_copy_only=False)  # null -> NaN
        numbers[name] = np.asarray(values, dtype=np.float64)
    raw, texts = {}, {}
    for name in TEXT_INPUTS:
        raw[name] = array(name, pa.string())
        texts[name] = _nonempty(pc.utf8_trim(raw[name], characters=_ASCII_SPACE))

    sibsp, parch, fare = numbers["SibSp"], numbers["Parch"], numbers["Fare"]
    family = 1.0 + np.where(np.isnan(sibsp), 0.0, sibsp) + np.where(np.isnan(parch), 0.0, parch)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_person = fare / family
    cabin, name = texts["Cabin"], texts["Name"]

    matched = pc.extract_regex(name, _COLUMN_TITLE)
    honorific = pc.utf8_trim(pc.struct_field(matched, "title"), characters=_ASCII_SPACE)
    known = list(TITLES)
    grouped = pc.take(pa.array(list(TITLES.values())), pc.index_in(honorific, pa.array(known)))
    title = pc.if_else(pc.is_valid(matched), pc.fill_null(grouped, "Rare"), MISSING)

    survived, died = _columns_group_outcome(texts, fare, state, n)
    numeric = np.column_stack(
        [
            numbers["Pclass"],
            numbers["Age"],
            fare,
            sibsp,
            parch,
            family,
            (family == 1.0).astype(np.float64),
            per_person,
            pc.is_valid(cabin).to_numpy(zero_copy_only=False).astype(np.float64),
            survived,
            died,
        ]
    )
    deck = pc.utf8_upper(pc.utf8_slice_codeunits(cabin, 0, 1))
    categorical = np.empty((n, len(CATEGORICAL_FEATURES)), dtype=object)
    for i, values in enumerate(
        (texts["Sex"], texts["Embarked"], title, deck)
    ):  # each a handful of distinct strings: decode them once, then share the objects
        encoded = pc.dictionary_encode(pc.fill_null(values, MISSING))
        strings = np.asarray(encoded.dictionary.to_pylist() or [MISSING], dtype=object)
        categorical[:, i] = strings[encoded.indices.to_numpy(zero_copy_only=False)]

    ascii_only = np.ones(n, dtype=bool)
    for values in raw.values():
        ascii_only &= pc.fill_null(pc.string_is_ascii(values), True).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ascii_only).tolist():  # Unicode text: the row function itself
        row = {key: (None if math.isnan(v[i]) else float(v[i])) for key, v in numbers.items()}
        row.update({key: values[i].as_py() for key, values in raw.items()})
        numeric[i], categorical[i] = derive(row, state)
    return numeric, categorical


def _nonempty(strings: Any) -> Any:
    """Empty strings as nulls (what `_text` gives for blank text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)


def _columns_group_outcome(texts: Mapping[str, Any], fare: Any, state: Any, n: int) -> Any:
    """`group_outcome` for every row (own_label None): the ticket's group, else the surname and
    fare's, else (0, 0)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = _group_tables(state)
    survived, died = np.zeros(n), np.zeros(n)
    pending = np.ones(n, dtype=bool)
    ticket = pc.replace_substring_regex(pc.utf8_upper(texts["Ticket"]), "[^0-9A-Z]", "")
    name = texts["Name"]
    surname = _nonempty(
        pc.utf8_lower(
            pc.utf8_trim(
                pc.struct_field(pc.extract_regex(name, _COLUMN_SURNAME), "surname"),
                characters=_ASCII_SPACE,
            )
        )
    )
    for kind in ("ticket", "name"):
        keys, values = tables[kind]
        if not keys or not pending.any():
            continue
        if kind == "ticket":
            wanted = ticket
        else:
            finite = np.isfinite(fare) & pending
            bits = np.where(finite, fare, 0.0).view(np.int64)  # -0.0 and 0.0 print apart
            distinct, inverse = np.unique(bits[finite], return_inverse=True)
            shown = [f"{v:.4f}" for v in distinct.view(np.float64).tolist()]
            indices = np.zeros(n, dtype=np.int32)
            indices[finite] = inverse
            fares = pa.DictionaryArray.from_arrays(
                pa.array(indices, mask=~finite), pa.array(shown, pa.string())
            ).dictionary_decode()
            wanted = pc.binary_join_element_wise(surname, fares, "|")
        wanted = _nonempty(wanted)
        found = pc.index_in(wanted, pa.array(keys, pa.string()))
        hit = pc.is_valid(found).to_numpy(zero_copy_only=False) & pending
        where = pc.fill_null(found, 0).to_numpy(zero_copy_only=False)[hit]
        table = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        survived[hit], died[hit] = table[where, 0], table[where, 1]
        pending &= ~hit
    return survived, died
