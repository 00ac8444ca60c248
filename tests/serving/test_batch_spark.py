"""The Spark engine in local[2]: the pandas engine's answers, order, types and metadata, written
as part files by the tasks (or one file with --coalesce)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import cli as batch
from training.config import REPO_ROOT

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

TEST_CSV = REPO_ROOT / "data" / "raw" / "test.csv"
# small input splits: even test.csv is read, scored and written by several tasks
SPARK = ["--engine", "spark", "--spark-master", "local[2]",
         "--spark-conf", "spark.sql.files.maxPartitionBytes=8192"]  # fmt: skip


def parts_table(output: Path) -> pa.Table:
    """A directory of part files read in name order (the input's order), or one file."""
    if output.is_file():
        return pq.read_table(output) if output.suffix == ".parquet" else read_csv_text(output)
    files = sorted(output.glob("part-*"))
    assert files and (output / "_SUCCESS").exists()
    tables = [pq.read_table(f) if f.suffix == ".parquet" else read_csv_text(f) for f in files]
    return pa.concat_tables(tables)


def read_csv_text(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    names = pacsv.open_csv(path).schema.names
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                   strings_can_be_null=True)  # fmt: skip
    return pacsv.read_csv(path, convert_options=options)


@pytest.mark.parametrize(
    ("name", "extra"),
    [("out.csv", []), ("out.parquet", ["--infer-types"]), ("one.csv", ["--coalesce"])],
)
def test_spark_csv_is_the_pandas_engines_output(registry_env, tmp_path, capsys, name, extra):
    pandas_out = tmp_path / f"pandas-{name}"
    assert batch.main(["--input", str(TEST_CSV), "--output", str(pandas_out), *extra]) == 0
    output = tmp_path / name
    code = batch.main(
        ["--input", str(TEST_CSV), "--output", str(output), "--chunk-size", "100", *SPARK, *extra]
    )
    assert code == 0, capsys.readouterr().err
    assert output.is_file() == ("--coalesce" in extra)
    if output.is_dir():
        assert len(list(output.glob("part-*"))) > 1
    got, want = parts_table(output), parts_table(pandas_out)
    assert got.schema.remove_metadata() == want.schema.remove_metadata()
    assert got.equals(want)  # every cell, every row, in order
    if "--coalesce" in extra:
        assert output.read_bytes() == pandas_out.read_bytes()

    sidecar = json.loads((tmp_path / f"{name}.meta.json").read_text())
    assert sidecar["engine"] == "spark"
    assert sidecar["layout"] == ("file" if "--coalesce" in extra else "directory")
    assert sidecar["model"]["version"] == registry_env.version
    assert sidecar["rows"] == 418 and sidecar["errors"] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_spark_parquet_keeps_types_bad_rows_and_metadata(registry_env, raw_test, tmp_path, capsys):
    """Parquet in and out; Pclass as text with one bad value, an empty Sex, a null SibSp."""
    rows = raw_test.astype({"Pclass": str, "PassengerId": "int32"})
    rows["SibSp"] = rows["SibSp"].astype("Int64")
    rows.loc[5, "Pclass"] = "abc"
    rows.loc[309, "Sex"] = None
    rows.loc[11, "SibSp"] = None
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), source, row_group_size=100)
    pandas_out = tmp_path / "pandas.parquet"
    assert batch.main(["--input", str(source), "--output", str(pandas_out)]) == 0
    output = tmp_path / "out.parquet"
    code = batch.main(["--input", str(source), "--output", str(output), *SPARK])
    assert code == 0, capsys.readouterr().err

    got, want = parts_table(output), pq.read_table(pandas_out)
    assert len(list(output.glob("part-*"))) > 1
    assert got.schema.field("PassengerId").type == pa.int32()
    assert got.equals(want)
    out = got.to_pandas()
    assert out["error"].notna().tolist() == [i in (5, 309) for i in range(418)]
    assert out.loc[5, "error"] == "Pclass: 'abc' is not an integer"
    assert out.loc[309, "error"] == "Sex: required value is empty"
    for part in sorted(output.glob("part-*")):
        meta = pq.read_schema(part).metadata
        assert meta[b"model.name"].decode() == registry_env.name
        assert meta[b"model.version"].decode() == registry_env.version
    sidecar = json.loads((tmp_path / "out.parquet.meta.json").read_text())
    assert sidecar["errors"] == 2 and sidecar["rows"] == 418
    assert sidecar["first_errors"] == [
        "row 6: Pclass: 'abc' is not an integer",
        "row 310: Sex: required value is empty",
    ]
    assert pd.read_parquet(output)["PassengerId"].tolist() == rows["PassengerId"].tolist()


def test_spark_never_replaces_a_directory_of_other_files(registry_env, tmp_path, capsys):
    output = tmp_path / "out.parquet"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    code = batch.main(["--input", str(TEST_CSV), "--output", str(output), *SPARK])
    assert code == 2
    assert "holding other files (notes.txt)" in capsys.readouterr().err
    assert (output / "notes.txt").read_text() == "mine"
