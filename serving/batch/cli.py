"""`python -m serving.batch`: the command line (the package's docstring says what it does)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from serving.batch.chunks import use_lean_memory_pool
from serving.batch.files import (
    BatchError,
    OutputWriter,
    check_columns,
    file_format,
    open_input,
    write_sidecar,
)
from serving.batch.pandas_engine import run_pandas
from serving.batch.schema import INFER_ROWS, plan_output
from serving.batch.scorer import load_scorer, model_metadata, parquet_metadata
from serving.config import DEFAULT_MODEL_URI, default_tracking_uri

DEFAULT_CHUNK_SIZE = 50_000
MAX_THREADS = 8  # scoring threads by default, however many cores (memory: a chunk each)
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.batch",
        description=(
            "Score a CSV or Parquet file of passengers with a registered model. The output "
            "(CSV or Parquet, by extension) keeps every input row, in order, with all its "
            "columns, and adds prediction (0/1), probability (P(survived)) and error. The "
            "model's name, version and run id go to <output>.meta.json (and, for Parquet, the "
            "file's metadata). A missing required column (Pclass, Sex) or an unreadable input "
            "stops the job with one line on stderr and exit status 2; a bad row (Pclass 'abc', "
            "empty Sex) is kept with empty prediction/probability and a message in `error`."
        ),
        epilog=(
            "Engines: pandas (the default) streams the file in --chunk-size chunks (bounded "
            "memory), derives the features of a whole chunk at once and runs the server's ONNX "
            "graph once per chunk (else the scikit-learn pipeline), reading, scoring and "
            "writing in overlapping threads. spark runs the same chunk scoring in Spark "
            "(mapInArrow) and writes a directory of part files, one per task, in input order "
            "(--coalesce: one file). Cluster: --spark-master spark://host:7077 (or "
            "SPARK_MASTER), with input and output on a filesystem shared by the driver and "
            "the executors and the same Python environment on the executors; or spark-submit "
            "--master URL serving/batch/__main__.py --engine spark ... Registry: "
            "MLFLOW_TRACKING_URI, else the embedded sqlite store at the repo root."
        ),
    )
    parser.add_argument("--input", required=True, type=Path, help="CSV or Parquet file to score")
    parser.add_argument(
        "--output", required=True, type=Path, help="where to write (.csv or .parquet)"
    )
    parser.add_argument(
        "--engine", choices=("pandas", "spark"), default="pandas", help="default: pandas"
    )
    parser.add_argument(
        "--model-uri", default=DEFAULT_MODEL_URI, help=f"default: {DEFAULT_MODEL_URI}"
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow registry (default: MLFLOW_TRACKING_URI, else sqlite at the repo root)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"rows per chunk for the pandas engine (default {DEFAULT_CHUNK_SIZE:,})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pandas engine: chunks scored side by side (default: the CPU count, at most "
        f"{MAX_THREADS})",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        help="Spark master URL for --engine spark (default: SPARK_MASTER, else local[*])",
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for --engine spark (repeatable), e.g. spark.executor.memory=2g",
    )
    parser.add_argument(
        "--infer-types",
        action="store_true",
        help=(
            "CSV input: write the model's columns with the signature's types and each other "
            f"column as int64 or double when its first {INFER_ROWS:,} rows all are (default: "
            "every input column as the file's text)"
        ),
    )
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help="spark engine: one output file instead of a directory of part files",
    )
    parser.add_argument(
        "--no-fast-path",
        action="store_true",
        help="pandas engine: score with the scikit-learn pipeline, not the ONNX fast path",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1:
        parser.error(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    for setting in args.spark_conf:
        if "=" not in setting or not setting.split("=", 1)[0].strip():
            parser.error(f"--spark-conf takes KEY=VALUE, got {setting!r}")
    # MLflow's artifact download bars would bury the one line this command prints per problem.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return _run(args)
    except BatchError as exc:
        print(f"serving.batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    use_lean_memory_pool()
    input_path: Path = args.input
    output: Path = args.output
    in_fmt = file_format(input_path, "input")
    out_fmt = file_format(output, "output")
    source = open_input(input_path, in_fmt)
    if output.resolve() == input_path.resolve():
        raise BatchError(f"output {output}: is the input file; choose another path")
    if not output.parent.is_dir():
        raise BatchError(f"output {output}: directory {output.parent} does not exist")

    tracking_uri = args.tracking_uri or default_tracking_uri()
    scorer = load_scorer(args.model_uri, tracking_uri, fast_path=not args.no_fast_path)
    check_columns(input_path, source.names, scorer.spec)
    plan = plan_output(source, scorer.spec, args.infer_types)
    model = model_metadata(scorer)
    metadata = parquet_metadata(model)

    engine_started = time.monotonic()  # the model is loaded: from here on, rows are the cost
    threads: int | None = None  # the pandas engine's scoring threads
    if args.engine == "spark":
        master = args.spark_master or os.environ.get("SPARK_MASTER")
        if not master:  # under spark-submit (it starts the JVM first), its --master applies
            master = "spark-submit" if "PYSPARK_GATEWAY_PORT" in os.environ else "local[*]"
        from serving.batch.spark_engine import run_spark  # PySpark is an optional extra

        settings = dict(setting.split("=", 1) for setting in args.spark_conf)
        counts, layout = run_spark(
            scorer, source, plan, output, out_fmt, master, metadata, args.chunk_size,
            args.coalesce, settings,
        )  # fmt: skip
        path = f"spark ({master}): {scorer.path}"
    else:
        if output.is_dir():
            raise BatchError(f"output {output}: is a directory; the pandas engine writes a file")
        writer = OutputWriter(output, out_fmt, plan.schema(source.schema), metadata)
        try:
            threads = args.threads or min(os.cpu_count() or 1, MAX_THREADS)
            counts = run_pandas(scorer, source, plan, writer, args.chunk_size, threads)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        path, layout = scorer.path, "file"
    finished = time.monotonic()
    elapsed = finished - started
    sidecar = write_sidecar(
        output,
        {
            "model": model,
            "engine": args.engine,
            "scoring": path,
            "input": str(input_path),
            "output": str(output),
            "layout": layout,  # "file", or (spark) "directory" of part files in input order
            "infer_types": bool(args.infer_types),
            "rows": counts.rows,
            "errors": counts.errors,
            "first_errors": counts.first_errors or [],
            "out_of_domain": counts.out_of_domain or {},  # optional values scored as unknown
            "chunk_size": args.chunk_size,
            "seconds": round(elapsed, 3),  # start-up (libraries, registry, model) included
            "scoring_seconds": round(finished - engine_started, 3),  # reading to committing
            "threads": threads,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    print(
        f"serving.batch: scored {counts.rows} rows with {model['name']} version "
        f"{model['version']} ({path.split(',')[0]}) in {elapsed:.1f} s -> {output} "
        f"(+ {sidecar.name})",
        file=sys.stderr,
    )
    if counts.errors:
        print(
            f"serving.batch: {counts.errors} of {counts.rows} rows could not be scored (see "
            f"the error column); first: {'; '.join((counts.first_errors or [])[:3])}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
