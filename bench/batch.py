"""Benchmark batch scoring: rows/s and peak RSS per engine and format, against the model
runtime's own rate on the same features, with the answers checked against the server's.

    python -m bench.batch --rows 1000000 [--chunk-size 50000] [--cases pandas,spark-local,...]

Generates `--rows` passengers by sampling data/raw/test.csv rows with replacement (seeded, fresh
PassengerIds) as CSV and as Parquet, then runs ``python -m serving.batch`` on them, each run its
own process:

- pandas, CSV in and out and Parquet in and out, with both cores (the default) and with one
  scoring thread (what the second core buys);
- spark-local: ``--spark-master local[2]``, Parquet in and out (a directory of part files);
- spark-standalone: the same job submitted to a standalone cluster of a master and two workers
  of one core each (bench/spark_cluster.py), started for it.

rows/s is rows over the job's scoring time (the sidecar's `scoring_seconds`: from the first read to
the output committed; interpreter, libraries and model load excluded, and reported apart as the
end-to-end rate). Peak RSS is the kernel's high-water mark of the command's process (VmHWM, read
until it has exited); for Spark, where the JVM and the Python workers are other processes, the peak
sum over its process tree, sampled every 0.05 s, is given too (a standalone cluster's executors are
not in that tree). The ceiling is the bare ONNX Runtime call on pre-built inputs (the features of
the same rows derived beforehand), 50,000-row batches, on both cores (two sessions of one thread
side by side, or one session of two threads; on a loaded machine one core may do better, and then
that is the ceiling). The I/O-only rate is the input read by chunk and written back unchanged with
the engine's own reader and writer (no typing, features or scoring): a bound on any job on that
file, shown beside the ceiling share (below 80% of the ceiling, that goal cannot be met on that
format whatever the features cost). The server check scores a sample of rows
through the server's own path (the contract's parser on JSON records, then LoadedModel.predict) and
compares it with the batch output, bit for bit. Goals (issue 18): Parquet >= 150,000 rows/s, CSV >=
100,000 rows/s, >= 80% of the ceiling, peak RSS <= 600 MiB at the default chunk size, the server's
answers on every sampled row. The machine is shared: the 1-minute load average is printed with the
figures.

Here the command line and the order of the runs; the input is bench/batch_input.py, one timed job
bench/batch_job.py, its output and the server check bench/batch_output.py, the ceiling
bench/batch_ceiling.py, the goals bench/batch_goals.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bench.batch_ceiling import io_ceiling, runtime_ceiling
from bench.batch_goals import goals
from bench.batch_input import generate
from bench.batch_job import run_batch
from bench.batch_output import read_output, server_check

CASES = ("pandas", "spark-local", "spark-standalone")
SAMPLE_ROWS = 2_000


def _scorer() -> Any:
    from serving.batch.scorer import load_scorer
    from serving.config import DEFAULT_MODEL_URI, default_tracking_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return load_scorer(DEFAULT_MODEL_URI, os.environ.get("MLFLOW_TRACKING_URI") or
                       default_tracking_uri())  # fmt: skip


@contextmanager
def spark_master(kind: str, directory: Path) -> Iterator[str]:
    if kind == "spark-local":
        with nullcontext("local[2]") as master:
            yield master
        return
    from bench.spark_cluster import standalone_cluster

    with standalone_cluster(directory, workers=2, cores=1, memory="1g") as master:
        yield master


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {CASES}")
    chunk = ["--chunk-size", str(args.chunk_size)]
    result: dict[str, Any] = {"rows": args.rows, "chunk_size": args.chunk_size,
                              "cpu_count": os.cpu_count(), "runs": {}}  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        inputs = {fmt: work / f"passengers.{fmt}" for fmt in ("csv", "parquet")}
        started = time.monotonic()
        for path in inputs.values():
            generate(args.rows, path)
        print(f"generated {args.rows:,} rows as CSV and Parquet in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
        scorer = _scorer()
        result["scoring"] = scorer.path
        result["ceiling"] = runtime_ceiling(scorer, inputs["parquet"], 200_000, args.chunk_size)
        result["io_only"] = {fmt: io_ceiling(path, fmt, work / f"io-only.{fmt}", args.chunk_size)
                             for fmt, path in inputs.items()}  # fmt: skip
        runs = result["runs"]
        if "pandas" in cases:
            for fmt in ("parquet", "csv"):
                for threads in (None, 1):
                    name = f"pandas {fmt}" + (" 1 thread" if threads else "")
                    extra = [*chunk, *(["--threads", str(threads)] if threads else [])]
                    output = work / f"pandas-{threads or 'all'}.{fmt}"
                    runs[name] = run_batch(inputs[fmt], output, extra)
                    print(f"{name}: {runs[name]}", file=sys.stderr)
            check = server_check(scorer, inputs["parquet"], work / "pandas-all.parquet",
                                 SAMPLE_ROWS)  # fmt: skip
            result["server_check"] = check
        for kind in (c for c in cases if c.startswith("spark")):
            with spark_master(kind, work) as master:
                output = work / f"{kind}.parquet"
                env = None
                if kind == "spark-standalone":
                    from bench.spark_cluster import cluster_env

                    env = cluster_env()
                runs[kind] = run_batch(
                    inputs["parquet"], output,
                    [*chunk, "--engine", "spark", "--spark-master", master], env,
                )  # fmt: skip
            if "pandas" in cases:
                same = read_output(output).equals(read_output(work / "pandas-all.parquet"))
                runs[kind]["same_as_pandas"] = same
            print(f"{kind}: {runs[kind]}", file=sys.stderr)

    result["goals"] = goals(result)
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for inner, figure in value.items():
                print(f"  {inner:>24}: {figure}")
        else:
            print(f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
