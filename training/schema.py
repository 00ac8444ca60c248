"""The raw Kaggle Titanic columns: names, types and allowed values, checked before training."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

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

PASSENGER_COLUMNS: dict[str, pa.Column] = {
    "PassengerId": pa.Column(int, pa.Check.ge(1), unique=True),
    "Pclass": pa.Column(int, pa.Check.isin([1, 2, 3])),
    "Name": pa.Column(str, pa.Check.str_length(min_value=1)),
    "Sex": pa.Column(str, pa.Check.isin(["male", "female"])),
    "Age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True),
    "SibSp": pa.Column(int, pa.Check.in_range(0, 20)),
    "Parch": pa.Column(int, pa.Check.in_range(0, 20)),
    "Ticket": pa.Column(str),
    "Fare": pa.Column(float, pa.Check.ge(0), nullable=True),
    "Cabin": pa.Column(str, nullable=True),
    "Embarked": pa.Column(str, pa.Check.isin(["C", "Q", "S"]), nullable=True),
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
