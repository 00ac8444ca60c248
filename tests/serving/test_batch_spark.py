"""serving/batch.py, Spark engine (local[2]): same answers, order and metadata as pyfunc/pandas."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import cli as batch
from training.config import REPO_ROOT

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

TEST_CSV = REPO_ROOT / "data" / "raw" / "test.csv"
SPARK = ["--engine", "spark", "--spark-master", "local[2]"]


def test_spark_csv_matches_pyfunc_row_for_row(registry_env, expected, tmp_path, capsys):
    output = tmp_path / "out.csv"
    code = batch.main(["--input", str(TEST_CSV), "--output", str(output), *SPARK])
    assert code == 0, capsys.readouterr().err
    out = pd.read_csv(output)
    assert len(out) == 418
    assert out["PassengerId"].tolist() == expected["PassengerId"].tolist()
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    assert np.max(np.abs(out["probability"] - expected["probability"])) < 1e-6
    assert out["error"].isna().all()
    # the input cells come back as the same text (names with quotes, trailing spaces, ...)
    source = pd.read_csv(TEST_CSV, dtype=str, keep_default_na=False)
    text = pd.read_csv(output, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(text[source.columns], source)

    sidecar = json.loads((tmp_path / "out.csv.meta.json").read_text())
    assert sidecar["engine"] == "spark"
    assert sidecar["model"]["name"] == registry_env.name
    assert sidecar["model"]["version"] == registry_env.version
    assert sidecar["rows"] == 418 and sidecar["errors"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".", "batch-spark-"))]


def test_spark_parquet_keeps_bad_rows_and_metadata(
    registry_env, expected, raw_test, tmp_path, capsys
):
    """Parquet in and out; Pclass as text with one bad value, an empty Sex, a null SibSp."""
    rows = raw_test.astype({"Pclass": str})
    rows["SibSp"] = rows["SibSp"].astype("Int64")
    rows.loc[5, "Pclass"] = "abc"
    rows.loc[9, "Sex"] = None
    rows.loc[11, "SibSp"] = None
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), source)
    output = tmp_path / "out.parquet"

    code = batch.main(["--input", str(source), "--output", str(output), *SPARK])
    assert code == 0, capsys.readouterr().err
    out = pd.read_parquet(output)
    assert out["PassengerId"].tolist() == expected["PassengerId"].tolist()
    bad = out["error"].notna()
    assert bad[bad].index.tolist() == [5, 9]
    assert out.loc[5, "error"] == "Pclass: 'abc' is not an integer"
    assert out.loc[9, "error"] == "Sex: required value is empty"
    assert out.loc[bad, ["prediction", "probability"]].isna().all().all()

    # the null SibSp row is scored as pyfunc scores it
    mlflow.set_tracking_uri(registry_env.tracking_uri)
    model = mlflow.pyfunc.load_model(registry_env.champion_uri)
    single = raw_test.loc[[11]].astype({"SibSp": "float64"})
    single["SibSp"] = np.nan
    pipeline = model.get_raw_model()
    assert out.loc[11, "prediction"] == int(pipeline.predict(single)[0])
    good = ~bad & (out.index != 11)
    assert out.loc[good, "prediction"].tolist() == expected.loc[good, "prediction"].tolist()
    assert np.allclose(out.loc[good, "probability"], expected.loc[good, "probability"], atol=1e-6)

    meta = pq.read_schema(output).metadata
    assert meta[b"model.name"].decode() == registry_env.name
    assert meta[b"model.version"].decode() == registry_env.version
    sidecar = json.loads((tmp_path / "out.parquet.meta.json").read_text())
    assert sidecar["errors"] == 2 and sidecar["rows"] == 418
