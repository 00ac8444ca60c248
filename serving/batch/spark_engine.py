"""The Spark engine: Spark reads and splits the input; every task scores its partition with the
pandas engine's own chunk function and writes its own part file; the driver tallies.

Each row gets an explicit row number as it is read (`monotonically_increasing_id`: the input
partition in the high bits, the row within it in the low ones, so ordered as the file is for a
single input file). A task (mapInArrow, one Arrow batch of at most --chunk-size rows at a time)
puts its batches in row-number order, scores them (serving.batch.chunks.score_chunk; the model is
loaded once per Python worker from its directory, shipped as a zip with SparkContext.addArchive
and unpacked on each node) and appends them to `part-NNNNN.<ext>`, NNNNN being its input
partition: the same Arrow writer, the same schema and the same metadata as the pandas engine's
one file, so the part files read in name order are the pandas engine's output, row for row. It
hands back only its tally (rows, errors, the first messages), from which the driver numbers the
rows of its messages.

All tasks write in parallel into a temp directory beside the output, renamed into place when the
job is complete; with `--coalesce` the driver then concatenates the parts into one file (CSV:
bytes; Parquet: batch by batch). The input and output paths must be on a filesystem that the
driver and every executor see, and the executors need this Python environment (PYSPARK_PYTHON;
the package itself is shipped as a zip with SparkContext.addPyFile).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from serving.batch.chunks import score_chunk, use_lean_memory_pool
from serving.batch.files import (
    BatchError,
    InputFile,
    OutputWriter,
    merge_csv,
    merge_parquet,
    partial_path,
)
from serving.batch.schema import OutputPlan
from serving.batch.scorer import ChunkStats, Counts, Scorer, scorer_from_dir
from serving.model.identity import ModelInfo

ROW = "__row"  # the explicit row number, dropped before anything is written
PARTITION_BITS = 33  # monotonically_increasing_id: partition index << 33 | row in partition
SUFFIX = {"csv": ".csv", "parquet": ".parquet"}
TALLY_FIELDS = (
    ("part", "LongType"),
    ("rows", "LongType"),
    ("errors", "LongType"),
    ("first_errors", "StringType"),
    ("unknown", "StringType"),
)

_WORKER_SCORERS: dict[str, Scorer] = {}  # per Python worker: model directory -> its scorer


def part_name(index: int, out_fmt: str) -> str:
    return f"part-{index:05d}{SUFFIX[out_fmt]}"


def _scorer(model_dir: str, info: ModelInfo, fast_path: bool) -> Scorer:
    if model_dir not in _WORKER_SCORERS:
        _WORKER_SCORERS[model_dir] = scorer_from_dir(Path(model_dir), info, fast_path)
    return _WORKER_SCORERS[model_dir]


def _score_partition(
    model_name: str,
    info: ModelInfo,
    fast_path: bool,
    plan: OutputPlan,
    input_schema: pa.Schema,
    output_schema: pa.Schema,
    metadata: dict[bytes, bytes],
    parts: str,
    out_fmt: str,
) -> Any:
    """The mapInArrow function: score and write one partition, yield its tally (one row)."""

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import SparkFiles

        use_lean_memory_pool()
        scorer = _scorer(SparkFiles.get(model_name), info, fast_path)
        writer: OutputWriter | None = None
        tally = ChunkStats()
        part = -1
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                rows = batch.column(ROW).to_numpy()
                if writer is None:
                    part = int(rows[0]) >> PARTITION_BITS
                    target = Path(parts) / part_name(part, out_fmt)
                    writer = OutputWriter(target, out_fmt, output_schema, metadata)
                table = pa.Table.from_batches([batch])
                if len(rows) > 1 and not (np.diff(rows) > 0).all():
                    table = table.take(np.argsort(rows, kind="stable"))
                table = table.drop_columns([ROW]).cast(input_schema)  # the file's own types
                out, stats = score_chunk(scorer, plan, table)
                writer.write(out)
                tally.extend(stats)
            if writer is not None:
                writer.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if part >= 0:
            yield pa.RecordBatch.from_pylist(
                [
                    {
                        "part": part,
                        "rows": tally.rows,
                        "errors": tally.errors,
                        "first_errors": json.dumps(tally.first_errors),
                        "unknown": json.dumps(tally.unknown),
                    }
                ]
            )

    return score


def _zip_package(directory: Path) -> Path:
    """This `serving` package as a zip for SparkContext.addPyFile (executors import it)."""
    package = Path(__file__).resolve().parents[1]
    target = directory / "serving.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for file in package.rglob("*.py"):
            archive.write(file, Path("serving") / file.relative_to(package))
    return target


def _check_output(output: Path, coalesce: bool) -> None:
    """A directory of part files replaces only an earlier one (part files and markers)."""
    if output.is_dir():
        foreign = [p.name for p in output.iterdir() if not p.name.startswith(("part-", "_"))]
        if coalesce or foreign:
            raise BatchError(
                f"output {output}: is a directory"
                + (f" holding other files ({', '.join(sorted(foreign)[:3])})" if foreign else "")
                + "; choose another path"
            )


def _read(spark: Any, source: InputFile) -> Any:
    reader = spark.read
    if source.fmt == "parquet":
        return reader.parquet(str(source.path))
    # every cell as text, kept as it is (RFC 4180 quotes doubled); a row with more or fewer
    # cells than the header stops the job, as it does in the pandas engine
    return (
        reader.option("header", True)
        .option("inferSchema", False)
        .option("escape", '"')
        .option("mode", "FAILFAST")
        .option("ignoreLeadingWhiteSpace", False)
        .option("ignoreTrailingWhiteSpace", False)
        .csv(str(source.path))
    )


def _batch_error(exc: BaseException, source: InputFile) -> BatchError | None:
    """A task's BatchError, or Spark's own word on a malformed CSV, as the job's one line."""
    text = str(exc)
    marker = "BatchError: "
    if marker in text:
        return BatchError(text.split(marker, 1)[1].splitlines()[0])
    if "Malformed" in text or "FAILFAST" in text:
        first = next((line for line in text.splitlines() if "Malformed" in line), "")
        return BatchError(f"input {source.path}: malformed CSV ({first.strip()[:300]})")
    return None


def run_spark(
    scorer: Scorer,
    source: InputFile,
    plan: OutputPlan,
    output: Path,
    out_fmt: str,
    master: str,
    metadata: dict[bytes, bytes],
    chunk_size: int,
    coalesce: bool,
    settings: dict[str, str] | None = None,
) -> tuple[Counts, str]:
    """Score `source` into `output` (a directory of part files, or one file with `coalesce`);
    (the tally, "directory" or "file")."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.utils import AnalysisException

    _check_output(output, coalesce)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.spark-", dir=output.parent))
    parts = work / "parts"
    parts.mkdir()
    builder = SparkSession.builder
    if master != "spark-submit":  # under spark-submit its --master applies
        builder = builder.master(master)
    spark = (  # a builder until getOrCreate
        builder.appName("titanic-batch-scoring")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_size))
    )
    for key, value in (settings or {}).items():
        spark = spark.config(key.strip(), value)
    spark = spark.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark.sparkContext.addPyFile(str(_zip_package(work)))
        # a directory cannot be shipped to a cluster, an archive can (unpacked on each node)
        model = shutil.make_archive(str(work / "model"), "zip", root_dir=scorer.info.path)
        spark.sparkContext.addArchive(model)
        try:
            frame = _read(spark, source)
        except AnalysisException as exc:
            raise BatchError(f"input {source.path}: cannot read ({exc})") from None
        if list(frame.columns) != source.names:
            raise BatchError(
                f"input {source.path}: Spark reads the columns {frame.columns}, not {source.names}"
            )
        frame = frame.withColumn(ROW, F.monotonically_increasing_id())
        tally_schema = T.StructType(
            [T.StructField(name, getattr(T, kind)()) for name, kind in TALLY_FIELDS]
        )
        function = _score_partition(
            Path(model).name,
            scorer.info,
            scorer.fast is not None,
            plan,
            source.schema,
            plan.schema(source.schema),
            metadata,
            str(parts),
            out_fmt,
        )
        try:
            tallies = frame.mapInArrow(function, tally_schema).collect()
        except Exception as exc:  # Py4JJavaError, PythonException: a task failed
            error = _batch_error(exc, source)
            if error is None:
                raise
            raise error from None
        counts = Counts()
        for row in sorted(tallies, key=lambda r: r["part"]):
            stats = ChunkStats(
                row["rows"],
                row["errors"],
                [tuple(pair) for pair in json.loads(row["first_errors"])],
                json.loads(row["unknown"]),
            )
            counts.add(stats, counts.rows)
        files = sorted(parts.glob(f"part-*{SUFFIX[out_fmt]}"))
        if not files:  # no rows at all: one empty part that still has every column
            empty = OutputWriter(
                parts / part_name(0, out_fmt), out_fmt, plan.schema(source.schema), metadata
            )
            empty.commit()
            files = [parts / part_name(0, out_fmt)]
        for leftover in parts.glob(".*"):  # a failed task attempt's partial file
            leftover.unlink()
        if coalesce:
            partial = partial_path(output)
            if out_fmt == "parquet":
                merge_parquet(files, partial, metadata)
            else:
                merge_csv(files, partial, output)
            os.replace(partial, output)
            return counts, "file"
        (parts / "_SUCCESS").touch()
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        os.replace(parts, output)
        return counts, "directory"
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
