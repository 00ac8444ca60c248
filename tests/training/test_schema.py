"""The raw-data schema: good Kaggle CSVs pass, bad ones fail naming the column and the rows."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import make_layout
from tests.processes import venv_env
from training import schema
from training.config import REPO_ROOT, PrepareParams
from training.prepare import read_raw, split


def test_the_real_raw_data_is_valid(raw_train, raw_test):
    labelled = schema.validate(raw_train, schema.LABELLED)
    unlabelled = schema.validate(raw_test, schema.UNLABELLED)
    assert len(labelled) == 891 and len(unlabelled) == 418
    assert labelled["Age"].dtype == "float64" and labelled["Pclass"].dtype == "int64"


def bad_copy(raw_train: pd.DataFrame) -> pd.DataFrame:
    return raw_train.head(50).copy()


def raises(frame: pd.DataFrame, frame_schema=schema.LABELLED) -> str:
    with pytest.raises(schema.RawDataError) as failure:
        schema.validate(frame, frame_schema)
    return str(failure.value)


def test_a_pclass_of_4_names_column_and_row(raw_train):
    frame = bad_copy(raw_train)
    frame.loc[7, "Pclass"] = 4
    message = raises(frame)
    assert "train.csv does not match" in message
    assert "'Pclass'" in message and "rows 7" in message and "4" in message


def test_a_sex_of_x_names_column_and_rows(raw_train):
    frame = bad_copy(raw_train)
    frame.loc[[3, 11], "Sex"] = "x"
    message = raises(frame)
    assert "'Sex'" in message and "rows 3, 11" in message and "'x'" in message


def test_a_missing_column_is_named(raw_train):
    message = raises(bad_copy(raw_train).drop(columns=["Fare"]))
    assert "missing column 'Fare'" in message


def test_a_non_numeric_age_names_column_and_row(raw_train):
    frame = bad_copy(raw_train)
    frame["Age"] = frame["Age"].astype(object)
    frame.loc[5, "Age"] = "about forty"
    message = raises(frame)
    assert "'Age'" in message and "rows 5" in message and "about forty" in message


def test_every_violation_is_reported_at_once(raw_train):
    frame = bad_copy(raw_train).drop(columns=["Embarked"])
    frame.loc[1, "Pclass"] = 0
    frame.loc[2, "Survived"] = 2
    frame.loc[4, "PassengerId"] = frame.loc[3, "PassengerId"]  # duplicate id
    message = raises(frame)
    for expected in ("missing column 'Embarked'", "'Pclass'", "'Survived'", "'PassengerId'"):
        assert expected in message


def test_unexpected_columns_and_a_label_in_test_csv_are_rejected(raw_train, raw_test):
    assert "unexpected column 'Extra'" in raises(raw_train.head(5).assign(Extra=1))
    message = raises(raw_train.head(5), schema.UNLABELLED)
    assert "test.csv" in message and "unexpected column 'Survived'" in message


def test_nulls_allowed_only_where_the_data_has_gaps(raw_train):
    frame = bad_copy(raw_train)
    frame.loc[0, ["Age", "Cabin", "Embarked", "Fare"]] = None
    schema.validate(frame, schema.LABELLED)  # all nullable
    frame.loc[0, "Sex"] = None
    assert "'Sex'" in raises(frame)


def test_out_of_range_numbers(raw_train):
    frame = bad_copy(raw_train)
    frame.loc[2, "Age"] = -1.0
    frame.loc[6, "Fare"] = -5.0
    message = raises(frame)
    assert "'Age'" in message and "rows 2" in message
    assert "'Fare'" in message and "rows 6" in message


def outside(allowed: dict) -> list:
    """Values just outside a DOMAIN entry: an unlisted value, or one past each bound."""
    if "values" in allowed:
        values = allowed["values"]
        return ["x"] if isinstance(values[0], str) else [max(values) + 1, min(values) - 1]
    return [bound + step for key, step in (("min", -1), ("max", 1)) if (bound := allowed.get(key))
            is not None]  # fmt: skip


@pytest.mark.parametrize("column", sorted(schema.DOMAIN))
def test_the_checks_are_the_domain(raw_train, column):
    """Every DOMAIN entry (the one that travels with the model) is what validation enforces:
    each value past it fails, naming the column and the row; its edges pass."""
    allowed = schema.DOMAIN[column]
    for value in outside(allowed):
        frame = bad_copy(raw_train)
        frame[column] = frame[column].astype(object)
        frame.loc[3, column] = value
        message = raises(frame)
        assert f"'{column}'" in message and "rows 3" in message, (column, value)
    edges = allowed.get("values") or [allowed[k] for k in ("min", "max") if k in allowed]
    frame = bad_copy(raw_train)
    frame[column] = frame[column].astype(object)
    for row, value in enumerate(edges):
        frame.loc[row, column] = value
    schema.validate(frame, schema.LABELLED)


def test_split_is_stratified_seeded_and_disjoint(tmp_path, raw_train):
    path = tmp_path / "train.csv"
    raw_train.to_csv(path, index=False)
    labelled = read_raw(path, labelled=True)
    params = PrepareParams(valid_size=0.2, seed=7)
    train, valid = split(labelled, params)
    again, _ = split(labelled, params)
    assert len(valid) == math.ceil(0.2 * len(labelled)) and len(train) + len(valid) == len(labelled)
    assert set(train["PassengerId"]).isdisjoint(valid["PassengerId"])
    assert train.equals(again)
    assert abs(train["Survived"].mean() - valid["Survived"].mean()) < 0.01


def run_prepare(root) -> subprocess.CompletedProcess:
    """`python -m training.prepare` in a temp layout holding its own copy of training/."""
    return subprocess.run(
        [sys.executable, "-m", "training.prepare"],
        cwd=root,
        env=venv_env(PYTHONPATH=None),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_m_prepare_on_bad_data_exits_non_zero_with_the_message(tmp_path):
    """`python -m training.prepare` in a temp layout (with its own copy of the package)."""
    paths = make_layout(tmp_path)
    shutil.copytree(
        REPO_ROOT / "training", tmp_path / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    frame = pd.read_csv(paths.raw_train)
    frame.loc[10, "Pclass"] = 4
    frame.loc[20, "Sex"] = "x"
    frame.to_csv(paths.raw_train, index=False)
    done = run_prepare(tmp_path)
    assert done.returncode != 0
    assert "prepare: train.csv does not match the raw passenger schema" in done.stderr
    assert "'Pclass'" in done.stderr and "rows 10" in done.stderr
    assert "'Sex'" in done.stderr and "rows 20" in done.stderr
    assert not paths.train_split.exists()


def test_python_m_prepare_on_good_data_writes_the_splits(tmp_path):
    paths = make_layout(tmp_path)
    shutil.copytree(
        REPO_ROOT / "training", tmp_path / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = run_prepare(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "891 labelled rows valid" in done.stdout
    assert paths.train_split.exists() and paths.valid_split.exists()
