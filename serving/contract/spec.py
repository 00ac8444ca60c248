"""The model's input columns (`InputSpec`), a parsed request (`Batch`), and the training domain's
rule: a required value outside it is refused, an optional one becomes unknown and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from serving.contract.kinds import KINDS, Converter, Kind
from serving.errors import ApiError


@dataclass(frozen=True)
class Domain:
    """What a column held in training: a set of values, or a range (either bound optional)."""

    values: frozenset[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Domain:
        values = spec.get("values")
        return cls(
            values=frozenset(values) if values is not None else None,
            minimum=spec.get("min"),
            maximum=spec.get("max"),
        )

    def admits(self, value: Any) -> bool:
        if self.values is not None and value not in self.values:
            return False
        if self.minimum is not None and not value >= self.minimum:
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        return f"at least {self.minimum}" if self.minimum is not None else f"at most {self.maximum}"

    def public(self) -> dict[str, Any]:
        """The same JSON shape `from_json` reads (for /version and the documentation)."""
        shown: dict[str, Any] = {}
        if self.values is not None:
            shown["values"] = sorted(self.values, key=str)
        if self.minimum is not None:
            shown["min"] = self.minimum
        if self.maximum is not None:
            shown["max"] = self.maximum
        return shown


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of KINDS: MLflow's DataType names
    required: bool = True
    domain: Domain | None = None  # what training saw; None: any value of the kind

    @property
    def type(self) -> Kind:
        return KINDS[self.kind]


@dataclass(frozen=True)
class InputSpec:
    """The model's input columns: names, types and which are required."""

    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        unsupported = [f"{c.name}: {c.kind}" for c in self.columns if c.kind not in KINDS]
        if unsupported:
            raise ValueError(f"unsupported input column types: {', '.join(unsupported)}")

    @classmethod
    def from_signature_json(
        cls, inputs: str | None, domain: Mapping[str, Any] | None = None
    ) -> InputSpec:
        """From a model signature's inputs as MLmodel stores them (`Schema.to_json()`): a JSON
        list of named column specs; `domain`: MLmodel's `metadata.domain`, if any."""
        columns = json.loads(inputs) if isinstance(inputs, str) else None
        if not columns or not all(isinstance(c, dict) and c.get("name") for c in columns):
            raise ValueError("the model has no input signature with named columns")
        domain = domain if isinstance(domain, Mapping) else {}
        return cls(
            tuple(
                Column(
                    str(c["name"]),
                    str(c["type"]),
                    bool(c.get("required", True)),
                    Domain.from_json(domain[c["name"]])
                    if isinstance(domain.get(c["name"]), Mapping)
                    else None,
                )
                for c in columns
            )
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @cached_property
    def _plan(self) -> tuple[tuple[Column, type, tuple[Any, Any] | None, Converter], ...]:
        """Per column: the type taken as it is (within bounds, if any) and the full converter."""
        return tuple((c, c.type.exact, c.type.bounds, c.type.convert) for c in self.columns)

    @cached_property
    def _required(self) -> tuple[str, ...]:
        return tuple(self.required)

    @cached_property
    def bounded(self) -> tuple[Column, ...]:
        """The columns that carry a training domain."""
        return tuple(c for c in self.columns if c.domain is not None)


@dataclass(frozen=True)
class Batch:
    index: list[str]  # row keys, in pd.DataFrame(body) order
    rows: list[dict[str, Any]]  # one dict per row: every schema column, typed, None if missing
    unknown: dict[str, int] = field(default_factory=dict)  # optional values outside the domain


def out_of_domain(column: Column, value: Any, row: str) -> ApiError:
    """422: a required column's value that training never saw."""
    assert column.domain is not None
    shown = value if isinstance(value, int | float) else repr(value)[:80]
    return ApiError(
        "out_of_domain",
        f"column {column.name!r} at row {row!r}: {shown} is outside the model's training "
        f"domain; expected {column.domain.describe()}",
        status=422,
        column=column.name,
        row=row,
        domain=column.domain.public(),
    )


def apply_domain(batch: Batch, spec: InputSpec) -> Batch:
    """Refuse a required value outside its column's domain; an optional one becomes None, and
    counted (`Batch.unknown`)."""
    for column in spec.bounded:
        domain, name = column.domain, column.name
        assert domain is not None
        for key, row in zip(batch.index, batch.rows, strict=True):
            value = row[name]
            if value is None or domain.admits(value):
                continue
            if column.required:
                raise out_of_domain(column, value, key)
            row[name] = None
            batch.unknown[name] = batch.unknown.get(name, 0) + 1
    return batch


def require_rows(batch: Batch) -> Batch:
    """The one rule for empty input, on every endpoint: a request holds at least one row."""
    if not batch.rows:
        raise ApiError(
            "no_rows",
            "the request holds no rows; send at least one passenger",
            status=422,
        )
    return batch
