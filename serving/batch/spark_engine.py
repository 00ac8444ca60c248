"""The Spark engine: read with Spark, type and score in mapInPandas and MLflow's spark_udf,
write one ordered output file."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.batch.columns import model_frame, type_rows
from serving.batch.files import BatchError, _one_line, _partial, _restamp_parquet, check_columns
from serving.batch.scorer import MAX_REPORTED_ERRORS, Counts, Scorer
from serving.contract import InputSpec

_SPARK_MODELS: dict[str, Any] = {}  # per Python worker: model dir -> the sklearn pipeline


def _spark_prepare(
    spec: InputSpec, model_dir_name: str, positive: int, typed_names: dict[str, str]
):
    """The mapInPandas function: type each batch, add probability, error and placeholder inputs."""

    def prepare(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import mlflow
        from pyspark import SparkFiles

        path = SparkFiles.get(model_dir_name)
        if path not in _SPARK_MODELS:
            _SPARK_MODELS[path] = mlflow.pyfunc.load_model(path).get_raw_model()
        pipeline = _SPARK_MODELS[path]
        integers = [c.name for c in spec.columns if c.kind in ("long", "integer")]
        for frame in batches:
            typed = type_rows(frame, spec)
            good = typed.good
            n = len(frame)
            # pyfunc rejects a null in an integer column (mlflow#5207; pyfunc.predict on pandas
            # does too): such rows take their label from the pipeline's predict (what pyfunc
            # would call) here, and the UDF gets a placeholder whose answer is dropped.
            gap = np.zeros(n, dtype=bool)
            for name in integers:
                gap |= typed.nulls[name]
            gap &= good
            probability = np.full(n, np.nan)
            label = np.zeros(n, dtype=np.int64)
            if good.any():
                rows = model_frame(typed, spec, good)
                probability[good] = pipeline.predict_proba(rows)[:, positive]
            if gap.any():
                label[gap] = np.asarray(pipeline.predict(model_frame(typed, spec, gap)))
            out = frame.copy()
            for column in spec.columns:
                values = typed.columns[column.name].copy()
                placeholder = column.type.example
                if column.type.exact is int:
                    fill = typed.nulls[column.name] | ~good
                    out[typed_names[column.name]] = np.where(fill, placeholder, values).astype(
                        np.int64
                    )
                elif not column.type.numeric:
                    values[~good] = placeholder if column.required else None
                    out[typed_names[column.name]] = values
                else:
                    values[~good] = placeholder if column.required else np.nan
                    out[typed_names[column.name]] = values
            out["__label"] = pd.array(np.where(gap, label, 0), dtype="Int64")
            out.loc[~gap, "__label"] = pd.NA
            out["probability"] = np.where(good, probability, np.nan)
            out["error"] = pd.Series(typed.errors, dtype=object, index=out.index)
            yield out

    return prepare


def _zip_package(directory: Path) -> Path:
    """This `serving` package as a zip for SparkContext.addPyFile (executors import it)."""
    package = Path(__file__).resolve().parents[1]
    target = directory / "serving.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for file in package.rglob("*.py"):
            archive.write(file, Path("serving") / file.relative_to(package))
    return target


def run_spark(
    scorer: Scorer,
    input_path: Path,
    in_fmt: str,
    output: Path,
    out_fmt: str,
    master: str,
    metadata: dict[bytes, bytes],
    tracking_uri: str,
) -> Counts:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)  # spark_udf resolves models:/ URIs through it
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.utils import AnalysisException

    spec = scorer.spec
    work = Path(tempfile.mkdtemp(prefix="batch-spark-", dir=output.parent))
    builder = SparkSession.builder
    if master != "spark-submit":
        builder = builder.master(master)
    spark = (
        builder.appName("titanic-batch-scoring")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark.sparkContext.addPyFile(str(_zip_package(work)))
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=scorer.info.resolved_uri, dst_path=str(work / "model")
            )
        )
        spark.sparkContext.addFile(str(model_dir), recursive=True)

        reader = spark.read
        try:
            if in_fmt == "csv":
                frame = (
                    reader.option("header", True)
                    .option("escape", '"')
                    .option("mode", "FAILFAST")
                    .csv(str(input_path))
                )
            else:
                frame = reader.parquet(str(input_path))
        except AnalysisException as exc:
            raise BatchError(f"input {input_path}: cannot read ({_one_line(exc)})") from None
        check_columns(input_path, frame.columns, spec)
        original = list(frame.columns)
        frame = frame.withColumn("_row", F.monotonically_increasing_id())

        typed_names = {c.name: f"__input_{c.name}" for c in spec.columns}
        fields = [
            *frame.schema.fields,
            *(T.StructField(typed_names[c.name], getattr(T, c.type.spark)()) for c in spec.columns),
            T.StructField("__label", T.LongType()),
            T.StructField("probability", T.DoubleType()),
            T.StructField("error", T.StringType()),
        ]
        prepared = frame.mapInPandas(
            _spark_prepare(spec, model_dir.name, scorer.loaded.positive_column, typed_names),
            T.StructType(fields),
        )
        predict = mlflow.pyfunc.spark_udf(
            spark, scorer.info.resolved_uri, result_type="long", env_manager="local"
        )
        label = predict(*[F.col(typed_names[c.name]) for c in spec.columns])
        scored = prepared.withColumn(
            "prediction",
            F.when(F.col("error").isNull(), F.coalesce(F.col("__label"), label)).otherwise(
                F.lit(None)
            ),
        ).select(*original, "prediction", "probability", "error", "_row")
        ordered = scored.repartition(1).sortWithinPartitions("_row").drop("_row")
        ordered = ordered.cache()
        target = work / "out"
        try:
            writer = ordered.write.mode("overwrite")
            if out_fmt == "csv":
                (
                    writer.option("header", True)
                    .option("escape", '"')
                    .option("ignoreLeadingWhiteSpace", False)  # keep each cell's text as is
                    .option("ignoreTrailingWhiteSpace", False)
                    .csv(str(target))
                )
            else:
                writer.parquet(str(target))
            counts_row = ordered.agg(
                F.count(F.lit(1)).alias("rows"), F.count("error").alias("errors")
            ).first()
            first = (
                ordered.where(F.col("error").isNotNull()).limit(MAX_REPORTED_ERRORS).collect()
                if counts_row["errors"]
                else []
            )
        except Exception as exc:  # Py4JJavaError wraps FAILFAST parse errors and the like
            if "Malformed" in str(exc) or "FAILFAST" in str(exc):
                raise BatchError(f"input {input_path}: malformed CSV ({_one_line(exc)})") from None
            raise
        parts = sorted(target.glob("part-*"))
        if len(parts) != 1:
            raise RuntimeError(f"Spark wrote {len(parts)} part files, expected 1")
        partial = _partial(output)
        if out_fmt == "parquet":
            _restamp_parquet(parts[0], partial, metadata)
        else:
            shutil.move(str(parts[0]), partial)
        os.replace(partial, output)
        counts = Counts(rows=counts_row["rows"], errors=counts_row["errors"])
        counts.first_errors = [f"error: {r['error']}" for r in first]
        return counts
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
