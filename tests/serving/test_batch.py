"""serving/batch.py, pandas engine: real registry, real files, the CLI's own entry point."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import cli as batch
from serving.batch.files import ADDED_COLUMNS, ADDED_FIELDS, read_chunks
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


def test_csv_to_parquet_keeps_the_text_unless_asked_to_infer_types(registry_env, tmp_path):
    code, _ = score(tmp_path, TEST_CSV, "text.parquet")
    assert code == 0
    text = pq.read_table(tmp_path / "text.parquet")
    with TEST_CSV.open(newline="") as file:
        cells = list(csv.DictReader(file))  # the file's own text; an empty cell is null
    for name in cells[0]:
        assert text.schema.field(name).type == "string"
        assert text.column(name).to_pylist() == [row[name] or None for row in cells]
    assert [str(text.schema.field(n).type) for n in ADDED_COLUMNS] == ["int64", "double", "string"]

    code, _ = score(tmp_path, TEST_CSV, "typed.parquet", "--infer-types")
    assert code == 0
    typed = pq.read_table(tmp_path / "typed.parquet")
    types = {name: str(typed.schema.field(name).type) for name in typed.schema.names}
    assert types == {
        "PassengerId": "int64",  # not a model input: every cell a whole number
        "Pclass": "int64", "Name": "string", "Sex": "string", "Age": "double",
        "SibSp": "int64", "Parch": "int64", "Ticket": "string", "Fare": "double",
        "Cabin": "string", "Embarked": "string",
        "prediction": "int64", "probability": "double", "error": "string",
    }  # fmt: skip
    # the caller's own integer ids join the output
    ids = pd.DataFrame({"PassengerId": pd.read_csv(TEST_CSV)["PassengerId"]})
    assert len(ids.merge(typed.to_pandas(), on="PassengerId")) == 418
    assert typed.column("prediction").to_pylist() == text.column("prediction").to_pylist()


def test_parquet_input_keeps_its_types(registry_env, raw_test, expected, tmp_path):
    rows = raw_test.astype({"SibSp": "Int64", "PassengerId": "int32"})
    rows.loc[3, "SibSp"] = None
    rows["Boarded"] = pd.Timestamp("1912-04-10")
    source = tmp_path / "in.parquet"
    table = pa.Table.from_pandas(rows, preserve_index=False)
    pq.write_table(table, source)
    for name in ("out.parquet", "out.csv"):
        code, out = score(tmp_path, source, name)
        assert code == 0
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.remove_metadata() == pa.schema([*table.schema.remove_metadata(),
                                                      *ADDED_FIELDS])  # fmt: skip
    assert out.select(table.column_names).equals(table.select(table.column_names))
    assert out.column("error").null_count == 418


def test_bad_later_cell_under_infer_types_stops_naming_it(registry_env, raw_test, tmp_path, capsys,
                                                          monkeypatch):  # fmt: skip
    monkeypatch.setattr("serving.batch.schema.INFER_ROWS", 100)
    rows = raw_test.astype({"PassengerId": object})
    rows.loc[250, "PassengerId"] = "P-250"
    source = tmp_path / "ids.csv"
    rows.to_csv(source, index=False)
    output = tmp_path / "out.parquet"
    code = batch.main(["--input", str(source), "--output", str(output), "--infer-types",
                       "--chunk-size", "64"])  # fmt: skip
    assert code == 2
    err = error_line(capsys.readouterr().err)
    assert "'PassengerId' holds 'P-250' at row 251" in err and "without --infer-types" in err
    assert not output.exists() and not list(tmp_path.glob(".*partial*"))


def test_small_chunks_give_the_same_file_as_one_chunk(registry_env, tmp_path):
    assert batch.main(["--input", str(TEST_CSV), "--output", str(tmp_path / "one.csv")]) == 0
    small = ["--input", str(TEST_CSV), "--output", str(tmp_path / "small.csv")]
    assert batch.main([*small, "--chunk-size", "37"]) == 0
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    # chunks scored side by side are written in input order all the same
    for threads in ("1", "3"):
        assert batch.main([*small, "--chunk-size", "37", "--threads", threads]) == 0
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
        ("binary.csv", bytes(range(256)) * 4, "not a readable CSV file"),
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


@pytest.mark.parametrize("csv_name", ["train.csv", "test.csv"])
def test_columns_rows_and_pipeline_score_every_passenger_alike(
    registry_env, raw_train, raw_test, csv_name
):
    """The columnar path (derive_columns, one graph run per chunk), the server's row path
    (derive_rows, then FastModel.predict: what /predict runs) and the pipeline give the same
    label for every row of the data, and the same probability within the fast path's
    tolerance (the two fast paths: bit for bit)."""
    from serving.batch.chunks import score_chunk
    from serving.batch.files import open_input
    from serving.batch.schema import plan_output
    from serving.batch.scorer import Scorer, load_scorer

    source = open_input(REPO_ROOT / "data" / "raw" / csv_name, "csv")
    columnar = load_scorer(registry_env.champion_uri, registry_env.tracking_uri)
    assert columnar.columnar is not None and columnar.fast is not None
    rows = Scorer(columnar.loaded, columnar.fast, None, "rows")
    pipeline = Scorer(columnar.loaded, None, None, "sklearn")
    plan = plan_output(source, columnar.spec, infer_types=False)
    chunk = next(iter(read_chunks(source, 10_000)))
    answers = {}
    for name, scorer in {"columns": columnar, "rows": rows, "sklearn": pipeline}.items():
        out, stats = score_chunk(scorer, plan, chunk)
        assert stats.rows == len(raw_train if csv_name == "train.csv" else raw_test)
        assert stats.errors == 0
        answers[name] = out.select(["prediction", "probability"]).to_pandas()
    assert answers["columns"].equals(answers["rows"])
    assert answers["columns"]["prediction"].tolist() == answers["sklearn"]["prediction"].tolist()
    assert np.allclose(answers["columns"]["probability"], answers["sklearn"]["probability"],
                       rtol=0, atol=1e-9)  # fmt: skip

    # and the server's own entry point, request rows typed by the contract, says the same
    from serving.contract import parse_batch

    frame = raw_train if csv_name == "train.csv" else raw_test
    body = json.loads(frame.to_json(orient="records"))
    labels, proba = columnar.fast.predict(parse_batch(body, columnar.spec, len(frame)).rows)
    assert labels == answers["columns"]["prediction"].tolist()
    assert proba == answers["columns"]["probability"].tolist()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--threads", "0"], "--threads must be at least 1"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
        (["--spark-conf", "nonsense"], "--spark-conf takes KEY=VALUE"),
    ],
)
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, flags, says):
    output = tmp_path / "out.csv"
    with pytest.raises(SystemExit) as stopped:
        batch.main(["--input", str(TEST_CSV), "--output", str(output), *flags])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err
    assert not output.exists()
