"""The Spark engine on a real standalone cluster: a master and two workers, each its own process
started from PySpark's launch classes, and `python -m serving.batch --engine spark` submitted to
it as its own process. Every cell of its output equals the pandas engine's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import cli as batch
from training.config import REPO_ROOT

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

ROWS = 100_000
BAD = {10: "abc", 99_990: "first"}  # Pclass cells that are no integer, in the first and last task


@pytest.fixture(scope="module")
def passengers(raw_test, tmp_path_factory) -> Path:
    """ROWS passengers sampled from test.csv (fresh ids), two of them with a bad Pclass."""
    rng = np.random.default_rng(18)
    frame = raw_test.iloc[rng.integers(0, len(raw_test), ROWS)].reset_index(drop=True)
    frame["PassengerId"] = np.arange(1, ROWS + 1)
    frame = frame.astype({"Pclass": object})
    for row, value in BAD.items():
        frame.loc[row, "Pclass"] = value
    path = tmp_path_factory.mktemp("cluster-input") / "passengers.csv"
    frame.to_csv(path, index=False)
    return path


def test_standalone_cluster_scores_every_row_as_the_pandas_engine(
    registry_env, passengers, tmp_path
):
    from bench.spark_cluster import cluster_env, standalone_cluster

    expected = tmp_path / "pandas.parquet"
    assert batch.main(["--input", str(passengers), "--output", str(expected)]) == 0

    output = tmp_path / "out.parquet"
    with standalone_cluster(tmp_path, workers=2, cores=1, memory="1g") as master:
        done = subprocess.run(
            [sys.executable, "-m", "serving.batch", "--engine", "spark", "--spark-master",
             master, "--input", str(passengers), "--output", str(output),
             "--spark-conf", "spark.executor.memory=512m"],
            cwd=REPO_ROOT,
            env={**cluster_env(), "MLFLOW_TRACKING_URI": registry_env.tracking_uri},
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]

    parts = sorted(output.glob("part-*.parquet"))
    assert len(parts) >= 2 and (output / "_SUCCESS").exists()  # written by several tasks
    # ... on both workers: each ran an executor for the job
    for worker in ("spark-worker-0", "spark-worker-1"):
        assert list((tmp_path / worker).glob("app-*/*/stderr")), worker
    got = pa.concat_tables(pq.read_table(part) for part in parts)
    want = pq.read_table(expected)
    assert got.num_rows == ROWS
    assert got.schema.remove_metadata() == want.schema.remove_metadata()
    assert got.equals(want)  # every prediction, probability and error, in input order
    assert got.column("PassengerId").to_pylist() == [str(i) for i in range(1, ROWS + 1)]
    errors = got.column("error").to_pylist()
    assert [i for i, e in enumerate(errors) if e] == list(BAD)
    meta = pq.read_schema(parts[-1]).metadata
    assert meta[b"model.version"].decode() == registry_env.version

    sidecar = json.loads((tmp_path / "out.parquet.meta.json").read_text())
    assert sidecar["engine"] == "spark" and sidecar["layout"] == "directory"
    assert sidecar["rows"] == ROWS and sidecar["errors"] == len(BAD)
    assert sidecar["first_errors"] == [
        f"row {row + 1}: Pclass: {value!r} is not an integer" for row, value in BAD.items()
    ]
    assert sidecar["scoring"].startswith(f"spark ({master})")
