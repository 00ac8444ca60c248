"""The raw Kaggle Titanic columns: names, types and allowed values, checked before training."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import pandas as pd


@contextlib.contextmanager
def _without_pyspark_pandas_warning() -> Iterator[None]:
    """pandera imports pyspark.pandas whenever PySpark is installed (the `spark` extra, for batch
    scoring): on import, and again when its first validation registers the pandas backends. And
    PySpark 4 warns on that import that it does not fully support pandas 3. PySpark is not used
    here: the warning is about PySpark, not about this data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\.|$)")
        yield


with _without_pyspark_pandas_warning():
    import pandera.pandas as pa

TARGET = "Survived"

# The allowed values of the raw columns the model reads, defined once: the checks below are built
# from it, and it travels with every registered model as MLflow model metadata (MLmodel's
# `metadata: {domain: ...}`), where a server reads it. An enumerated column lists its `values`; a
# numeric one its inclusive bounds, `min` and/or `max`. Name, Cabin and Ticket are free text: no
# entry.
Domain = dict[str, dict[str, Any]]
DOMAIN: Domain = {
    "Pclass": {"values": [1, 2, 3]},
    "Sex": {"values": ["male", "female"]},
    "Age": {"min": 0, "max": 120},
    "SibSp": {"min": 0, "max": 20},
    "Parch": {"min": 0, "max": 20},
    "Fare": {"min": 0},
    "Embarked": {"values": ["C", "Q", "S"]},
}


def domain_checks(column: str) -> list[pa.Check]:
    """The pandera checks of `column`'s DOMAIN entry (none for a column without one)."""
    allowed = DOMAIN.get(column, {})
    if "values" in allowed:
        return [pa.Check.isin(allowed["values"])]
    low, high = allowed.get("min"), allowed.get("max")
    if low is not None and high is not None:
        return [pa.Check.in_range(low, high)]
    if low is not None:
        return [pa.Check.ge(low)]
    if high is not None:
        return [pa.Check.le(high)]
    return []


PASSENGER_COLUMNS: dict[str, pa.Column] = {
    "PassengerId": pa.Column(int, pa.Check.ge(1), unique=True),
    "Pclass": pa.Column(int, domain_checks("Pclass")),
    "Name": pa.Column(str, pa.Check.str_length(min_value=1)),
    "Sex": pa.Column(str, domain_checks("Sex")),
    "Age": pa.Column(float, domain_checks("Age"), nullable=True),
    "SibSp": pa.Column(int, domain_checks("SibSp")),
    "Parch": pa.Column(int, domain_checks("Parch")),
    "Ticket": pa.Column(str),
    "Fare": pa.Column(float, domain_checks("Fare"), nullable=True),
    "Cabin": pa.Column(str, nullable=True),
    "Embarked": pa.Column(str, domain_checks("Embarked"), nullable=True),
}

UNLABELLED = pa.DataFrameSchema(PASSENGER_COLUMNS, strict=True, coerce=True, name="test.csv")
LABELLED = pa.DataFrameSchema(
    {**PASSENGER_COLUMNS, TARGET: pa.Column(int, pa.Check.isin([0, 1]))},
    strict=True,
    coerce=True,
    name="train.csv",
)


class RawDataError(ValueError):
    """Raw data that breaks the schema; the message names each column, check and row."""


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Return `frame` coerced to `schema`, or raise RawDataError listing every violation."""
    try:
        with _without_pyspark_pandas_warning():
            return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise RawDataError(_describe(schema.name, exc.failure_cases)) from None


def _describe(source: str | None, failures: pd.DataFrame) -> str:
    lines = [f"{source or 'data'} does not match the raw passenger schema:"]
    for (column, check), group in failures.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            lines.append(f"  missing column {group['failure_case'].iloc[0]!r}")
            continue
        if check == "column_in_schema":
            lines.append(f"  unexpected column {group['failure_case'].iloc[0]!r}")
            continue
        rows = [str(int(i)) for i in group["index"].dropna().tolist()[:10]]
        values = [repr(v) for v in group["failure_case"].tolist()[:5]]
        where = f" at rows {', '.join(rows)}" if rows else ""
        more = f" (+{len(group) - len(values)} more)" if len(group) > len(values) else ""
        lines.append(f"  column {column!r} fails {check}{where}{more}; values: {', '.join(values)}")
    return "\n".join(lines)
