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
        """Each value's bin, in bulk (None and NaN: the missing bin)."""
        missing = self.missing_bin
        if self.kind == "categorical":
            lookup = {category: i for i, category in enumerate(self.categories)}
            other = len(self.categories)
            return np.fromiter(
                (missing if _is_missing(v) else lookup.get(str(v), other) for v in values),
                dtype=np.int16,
                count=len(values),
            )
        if self.kind == "text":
            numbers = [math.nan if _is_missing(v) else float(len(str(v))) for v in values]
        else:
            numbers = [math.nan if _is_missing(v) else _as_float(v) for v in values]
        array = np.asarray(numbers, dtype=np.float64)
        indices = np.searchsorted(np.asarray(self.edges, dtype=np.float64), array, side="left")
        indices[np.isnan(array)] = missing
        return indices.astype(np.int16)

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
        numbers = [math.nan if _is_missing(v) else float(len(str(v))) for v in values]
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


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
