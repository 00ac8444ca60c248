"""The training profile: what each input column looked like in the training rows, and how far a
window of served rows has drifted from it (the population stability index, PSI).

The one definition of the format, written at registration (training/profile.py builds it from the
training split; it travels in the model's MLmodel as `metadata: {profile: ...}`, beside the
domain) and read by the server (serving.evidence.drift). Per column, a list of bins and each bin's
share of the training rows, the last bin always "missing" (null):

- `numeric`: bins cut at the training values' deciles (`edges`, deduplicated): value <= edges[0],
  edges[0] < value <= edges[1], ..., value > edges[-1];
- `categorical` (a string column with at most MAX_CATEGORIES distinct values): one bin per
  training category, then "other" (a value training never saw);
- `text` (a string column with more distinct values: names, tickets, cabins): bins of the text's
  length, cut at its deciles as for a number.

    {"format": 1, "rows": 712, "columns": {"Sex": {"kind": "categorical",
     "categories": ["male", "female"], "expected": [0.65, 0.35, 0.0, 0.0]}, ...}}

`expected` has one share per bin (value bins, then "other" for categorical, then "missing"), and
sums to 1. PSI = sum over bins of (a - e) * ln(a / e), shares floored at EPSILON; by the usual
reading, below 0.1 is stable, 0.1 to 0.2 a moderate shift, above 0.2 a significant one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

FORMAT = 1
METADATA_KEY = "profile"  # MLmodel's metadata: {domain: ..., profile: ...}
MAX_CATEGORIES = 20
QUANTILES = tuple(q / 10 for q in range(1, 10))
EPSILON = 1e-4
KINDS = ("numeric", "categorical", "text")


@dataclass(frozen=True)
class ColumnProfile:
    kind: str
    expected: tuple[float, ...]  # one share per bin, the last "missing"
    edges: tuple[float, ...] = ()  # numeric and text: the cut points
    categories: tuple[str, ...] = ()  # categorical: the training categories

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown profile kind {self.kind!r}")
        if len(self.expected) != self.bins:
            raise ValueError(f"{len(self.expected)} expected shares for {self.bins} bins")

    @property
    def bins(self) -> int:
        """How many bins, "missing" (the last) included."""
        if self.kind == "categorical":
            return len(self.categories) + 2  # + other + missing
        return len(self.edges) + 2  # len(edges) + 1 value bins + missing

    @property
    def missing_bin(self) -> int:
        return self.bins - 1

    def bin_indices(self, values: Sequence[Any]) -> np.ndarray:
        """Each value's bin, in bulk (None and NaN: the missing bin).

        The values the contract types (str, int, float or None) take one pass in C; anything
        else (pandas' NA, a number in a string column) the general rule below.
        """
        if self.kind == "categorical":
            try:
                codes = [self._codes[v] for v in values]
            except (KeyError, TypeError):  # an unseen value, NaN, or another type
                codes = [self._code(v) for v in values]
            return np.array(codes, dtype=np.int16)
        if self.kind == "text":
            numbers = [float(len(v)) if type(v) is str else _text_length(v) for v in values]
            array = np.asarray(numbers, dtype=np.float64)
        else:
            try:  # None -> NaN; a str that is no number raises
                array = np.array(values, dtype=np.float64)
            except (TypeError, ValueError):
                array = None
            if array is None or array.shape != (len(values),):  # (or a value held a list)
                array = np.array([_as_float(v) for v in values], dtype=np.float64)
        indices = np.searchsorted(self._edges, array, side="left")
        indices[np.isnan(array)] = self.missing_bin
        return indices.astype(np.int16)

    @cached_property
    def _codes(self) -> dict[Any, int]:
        """Each training category's bin, and None's (the missing bin)."""
        return {None: self.missing_bin, **{c: i for i, c in enumerate(self.categories)}}

    def _code(self, value: Any) -> int:
        if _is_missing(value):
            return self.missing_bin
        return self._codes.get(str(value), len(self.categories))  # not seen: "other"

    @cached_property
    def _edges(self) -> np.ndarray:
        return np.asarray(self.edges, dtype=np.float64)

    def psi(self, counts: Sequence[int] | np.ndarray) -> float | None:
        """The PSI of a window with these bin counts against training; None for no rows."""
        return psi(self.expected, counts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "expected": list(self.expected)}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        else:
            out["edges"] = list(self.edges)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            kind=str(raw["kind"]),
            expected=tuple(float(e) for e in raw["expected"]),
            edges=tuple(float(e) for e in raw.get("edges") or ()),
            categories=tuple(str(c) for c in raw.get("categories") or ()),
        )


@dataclass(frozen=True)
class Profile:
    rows: int
    columns: Mapping[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Profile:
        if raw.get("format") != FORMAT:
            raise ValueError(f"unknown profile format {raw.get('format')!r} (this reads {FORMAT})")
        columns = {str(n): ColumnProfile.from_dict(c) for n, c in raw["columns"].items()}
        return cls(rows=int(raw["rows"]), columns=columns)


def psi(expected: Sequence[float], counts: Sequence[int] | np.ndarray) -> float | None:
    """sum((a - e) * ln(a / e)) over bins, a the window's shares, both floored at EPSILON."""
    observed = np.asarray(counts, dtype=np.float64)
    total = observed.sum()
    if total <= 0:
        return None
    actual = np.maximum(observed / total, EPSILON)
    base = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    return float(np.sum((actual - base) * np.log(actual / base)))


def shares(counts: np.ndarray, rows: int) -> tuple[float, ...]:
    return tuple(float(c) / rows for c in counts) if rows else tuple(0.0 for _ in counts)


def numeric_profile(values: Sequence[Any], text: bool = False) -> ColumnProfile:
    """A number column's profile (or a text column's, by length) from its training values."""
    if text:
        numbers = [_text_length(v) for v in values]
    else:
        numbers = [math.nan if _is_missing(v) else _as_float(v) for v in values]
    array = np.asarray(numbers, dtype=np.float64)
    present = array[~np.isnan(array)]
    cuts = np.quantile(present, QUANTILES) if present.size else []
    edges = tuple(sorted({float(q) for q in cuts}))
    column = ColumnProfile("text" if text else "numeric", (0.0,) * (len(edges) + 2), edges=edges)
    counts = np.bincount(column.bin_indices(values), minlength=column.bins)
    return ColumnProfile(column.kind, shares(counts, len(values)), edges=edges)


def string_profile(values: Sequence[Any]) -> ColumnProfile:
    """A string column's profile: its categories, or the length of its text past
    MAX_CATEGORIES distinct values."""
    seen: dict[str, int] = {}
    for value in values:
        if not _is_missing(value):
            seen[str(value)] = seen.get(str(value), 0) + 1
    if len(seen) > MAX_CATEGORIES:
        return numeric_profile(values, text=True)
    categories = tuple(sorted(seen, key=lambda c: (-seen[c], c)))
    column = ColumnProfile("categorical", (0.0,) * (len(categories) + 2), categories=categories)
    counts = np.bincount(column.bin_indices(values), minlength=column.bins)
    return ColumnProfile("categorical", shares(counts, len(values)), categories=categories)


def read_profile(model_dir: Path) -> Profile | None:
    """The profile in a model directory's MLmodel metadata, or None (a model logged without)."""
    mlmodel = yaml.load((Path(model_dir) / "MLmodel").read_text(), Loader=yaml.CSafeLoader)
    raw = ((mlmodel or {}).get("metadata") or {}).get(METADATA_KEY)
    return Profile.from_dict(raw) if raw else None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text_length(value: Any) -> float:
    return math.nan if _is_missing(value) else float(len(str(value)))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
