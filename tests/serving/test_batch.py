"""serving/batch.py, pandas engine: real registry, real files, the CLI's own entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from serving.batch import cli as batch
from serving.batch.files import ADDED_COLUMNS
from training.config import REPO_ROOT

TEST_CSV = REPO_ROOT / "data" / "raw" / "test.csv"


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def score(tmp_path: Path, source: Path, name: str, *extra: str) -> tuple[int, pd.DataFrame]:
    output = tmp_path / name
    code = batch.main(["--input", str(source), "--output", str(output), *extra])
    return code, read(output) if code == 0 else pd.DataFrame()


def assert_matches(out: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(out) == len(expected)
    assert out["PassengerId"].astype(int).tolist() == expected["PassengerId"].tolist()
    assert out["prediction"].astype(int).tolist() == expected["prediction"].tolist()
    assert np.max(np.abs(out["probability"].to_numpy() - expected["probability"])) < 1e-6
    assert out["error"].isna().all()


def error_line(stderr: str) -> str:
    """The one line the command prints for a bad input (MLflow may log other lines)."""
    lines = [line for line in stderr.splitlines() if line.startswith("serving.batch: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def parquet_input(tmp_path_factory: pytest.TempPathFactory, raw_test: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("parquet") / "test.parquet"
    raw_test.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("csv", "out.csv"),
        ("csv", "out.parquet"),
        ("parquet", "out.parquet"),
        ("parquet", "out.csv"),
    ],
)
def test_scores_every_row_in_order_like_pyfunc(
    registry_env, expected, parquet_input, tmp_path, capsys, source, name
):
    code, out = score(tmp_path, TEST_CSV if source == "csv" else parquet_input, name)
    assert code == 0, capsys.readouterr().err
    assert_matches(out, expected)
    # every input column is kept, then the three answers
    assert list(out.columns) == [*pd.read_csv(TEST_CSV, nrows=0).columns, *ADDED_COLUMNS]

    sidecar = json.loads((tmp_path / f"{name}.meta.json").read_text())
    assert sidecar["model"]["name"] == registry_env.name
    assert sidecar["model"]["version"] == registry_env.version
    assert sidecar["model"]["run_id"]
    assert sidecar["rows"] == 418 and sidecar["errors"] == 0
    if name.endswith(".parquet"):
        meta = pq.read_schema(tmp_path / name).metadata
        assert meta[b"model.name"].decode() == registry_env.name
        assert meta[b"model.version"].decode() == registry_env.version
        assert meta[b"model.run_id"].decode() == sidecar["model"]["run_id"]
    assert not list(tmp_path.glob(".*partial*"))


def test_csv_output_keeps_input_cells_as_text(registry_env, tmp_path):
    code, _ = score(tmp_path, TEST_CSV, "out.csv")
    assert code == 0
    source = pd.read_csv(TEST_CSV, dtype=str, keep_default_na=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(out[source.columns], source)


def test_csv_to_parquet_types_the_signature_columns(registry_env, tmp_path):
    code, _ = score(tmp_path, TEST_CSV, "out.parquet")
    assert code == 0
    schema = pq.read_schema(tmp_path / "out.parquet")
    types = {name: str(schema.field(name).type) for name in schema.names}
    assert types["Pclass"] == "int64" and types["Age"] == "double" and types["Sex"] == "string"
    assert types["PassengerId"] == "string"  # not a model input: the CSV's text
    assert types["prediction"] == "int64" and types["probability"] == "double"


def test_small_chunks_give_the_same_file_as_one_chunk(registry_env, tmp_path):
    assert batch.main(["--input", str(TEST_CSV), "--output", str(tmp_path / "one.csv")]) == 0
    small = ["--input", str(TEST_CSV), "--output", str(tmp_path / "small.csv")]
    assert batch.main([*small, "--chunk-size", "37"]) == 0
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_chunks_with_all_null_or_all_whole_ages_score_as_the_full_file(
    registry_env, expected, raw_test, tmp_path
):
    """Chunk 1 has no Age at all, chunk 2 only whole-number Ages (pandas alone would read them
    as float64 with NaN, then int64), the rest mixed: typing by the signature must not care."""
    null_age = raw_test["Age"].isna()
    whole = raw_test["Age"].notna() & (raw_test["Age"] % 1 == 0)
    first = list(raw_test.index[null_age][:37])
    second = list(raw_test.index[whole][:37])
    order = [*first, *second, *raw_test.index.difference(first + second)]
    source = tmp_path / "shuffled.csv"
    raw_test.loc[order].to_csv(source, index=False)
    for out_name in ("out.csv", "out.parquet"):
        code, out = score(tmp_path, source, out_name, "--chunk-size", "37")
        assert code == 0
        assert_matches(out, expected.loc[order].reset_index(drop=True))


def test_fast_path_and_pipeline_agree(registry_env, expected, tmp_path):
    code, fast = score(tmp_path, TEST_CSV, "fast.csv")
    assert code == 0
    code, plain = score(tmp_path, TEST_CSV, "plain.csv", "--no-fast-path")
    assert code == 0
    assert_matches(fast, expected)
    assert_matches(plain, expected)
    used = json.loads((tmp_path / "plain.csv.meta.json").read_text())["scoring"]
    assert used.startswith("sklearn")


def test_bad_rows_are_kept_with_an_error(registry_env, raw_test, expected, tmp_path, capsys):
    rows = raw_test.head(10).astype({"Pclass": object, "Age": object})
    rows.loc[2, "Pclass"] = "abc"
    rows.loc[4, "Sex"] = None
    rows.loc[6, "Age"] = "inf"
    source = tmp_path / "bad.csv"
    rows.to_csv(source, index=False)
    code, out = score(tmp_path, source, "out.csv", "--chunk-size", "3")
    assert code == 0
    assert out["PassengerId"].tolist() == rows["PassengerId"].tolist()
    bad = out["error"].notna()
    assert bad.tolist() == [i in (2, 4, 6) for i in range(10)]
    assert out.loc[2, "error"] == "Pclass: 'abc' is not an integer"
    assert out.loc[4, "error"] == "Sex: required value is empty"
    assert out.loc[6, "error"] == "Age: 'inf' is not a finite number"
    assert out.loc[bad, ["prediction", "probability"]].isna().all().all()
    good = expected.head(10)[~bad.to_numpy()]
    assert out.loc[~bad, "prediction"].astype(int).tolist() == good["prediction"].tolist()
    assert np.allclose(out.loc[~bad, "probability"], good["probability"], atol=1e-6)
    err = capsys.readouterr().err
    assert "3 of 10 rows could not be scored" in err and "row 3: Pclass" in err
    sidecar = json.loads((tmp_path / "out.csv.meta.json").read_text())
    assert sidecar["errors"] == 3 and sidecar["first_errors"][0].startswith("row 3: Pclass")


def test_a_chunk_of_only_bad_rows(registry_env, raw_test, tmp_path):
    rows = raw_test.head(6).astype({"Pclass": object})
    rows.loc[:2, "Pclass"] = "first"
    source = tmp_path / "bad.csv"
    rows.to_csv(source, index=False)
    for name in ("out.csv", "out.parquet"):
        code, out = score(tmp_path, source, name, "--chunk-size", "3")
        assert code == 0
        assert out["error"].notna().tolist() == [True] * 3 + [False] * 3
        assert out["prediction"].isna().tolist() == [True] * 3 + [False] * 3


def test_optional_columns_may_be_absent(registry_env, raw_test, tmp_path):
    source = tmp_path / "minimal.csv"
    raw_test[["PassengerId", "Pclass", "Sex"]].to_csv(source, index=False)
    code, out = score(tmp_path, source, "out.parquet")
    assert code == 0
    assert len(out) == 418 and out["error"].isna().all()
    assert out["probability"].between(0, 1).all()


@pytest.mark.parametrize("missing", ["Sex", "Pclass"])
def test_missing_required_column_stops(registry_env, raw_test, tmp_path, capsys, missing):
    source = tmp_path / "no_column.csv"
    raw_test.drop(columns=[missing]).to_csv(source, index=False)
    output = tmp_path / "out.csv"
    assert batch.main(["--input", str(source), "--output", str(output)]) == 2
    err = error_line(capsys.readouterr().err)
    assert f"'{missing}'" in err and str(source) in err
    assert not output.exists()


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("absent.csv", None, "no such file"),
        ("empty.csv", b"", "empty file"),
        ("garbage.parquet", b"not parquet at all", "not a readable Parquet file"),
        ("binary.csv", bytes(range(256)) * 4, "required columns 'Pclass', 'Sex' missing"),
        ("notes.txt", b"x", "unknown file type"),
    ],
)
def test_unreadable_input_stops(registry_env, tmp_path, capsys, name, content, says):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    output = tmp_path / "out.csv"
    assert batch.main(["--input", str(source), "--output", str(output)]) == 2
    err = error_line(capsys.readouterr().err)
    assert says in err and str(source) in err
    assert not output.exists()


def test_command_line_exit_status_and_no_traceback(registry_env, raw_test, tmp_path):
    """The real `python -m serving.batch` process: help, a bad file, a good one."""
    run = [sys.executable, "-m", "serving.batch"]
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert helped.returncode == 0
    for flag in ("--input", "--output", "--engine", "--model-uri", "--chunk-size", "error"):
        assert flag in helped.stdout

    source = tmp_path / "no_sex.csv"
    raw_test.drop(columns=["Sex"]).to_csv(source, index=False)
    failed = subprocess.run(
        [*run, "--input", str(source), "--output", str(tmp_path / "out.csv")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert "required column 'Sex' missing" in failed.stderr

    done = subprocess.run(
        [*run, "--input", str(TEST_CSV), "--output", str(tmp_path / "ok.parquet")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_metadata(tmp_path / "ok.parquet").num_rows == 418
