"""Benchmark batch scoring (pandas engine) on a generated file: rows/s and peak RSS.

    python -m bench.batch --rows 1000000 [--chunk-size 50000] [--format csv|parquet]

Generates `--rows` passengers by sampling data/raw/test.csv rows with replacement (seeded, fresh
PassengerIds), then runs ``python -m serving.batch`` on it in a subprocess, twice: once on
test.csv alone (the fixed cost: interpreter, libraries, model) and once on the big file. Peak
RSS is the kernel's own figure for the child (``wait4`` rusage maxrss), not a sampled one.
rows/s is rows over the job's wall time without the fixed start-up (the baseline run's time).
The model is whatever `--model-uri` names in MLFLOW_TRACKING_URI (else the repo's sqlite store).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TEST_CSV = ROOT / "data" / "raw" / "test.csv"


def generate(rows: int, path: Path, seed: int = 7) -> None:
    """`rows` passengers sampled from test.csv, written in pieces (no full frame in memory)."""
    source = pd.read_csv(TEST_CSV, dtype=str, keep_default_na=False, na_values=[""])
    rng = np.random.default_rng(seed)
    piece = 100_000
    for start in range(0, rows, piece):
        n = min(piece, rows - start)
        sample = source.iloc[rng.integers(0, len(source), n)].reset_index(drop=True)
        sample["PassengerId"] = np.arange(start + 1, start + n + 1).astype(str)
        if path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(sample, preserve_index=False)
            if start == 0:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        else:
            sample.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)
    if path.suffix == ".parquet":
        writer.close()


def run(source: Path, output: Path, chunk_size: int, extra: list[str]) -> dict[str, float]:
    """Run the batch command; its wall time, exit status and peak RSS (MiB)."""
    command = [
        sys.executable,
        "-m",
        "serving.batch",
        "--input",
        str(source),
        "--output",
        str(output),
        "--chunk-size",
        str(chunk_size),
        *extra,
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"batch failed ({process.returncode}):\n{stderr[-3000:]}")
    meta = json.loads(output.with_name(output.name + ".meta.json").read_text())
    return {
        "seconds": elapsed,
        "job_seconds": meta["seconds"],
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
        "scoring": meta["scoring"],
        "rows": meta["rows"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="input format")
    parser.add_argument("--output-format", choices=("csv", "parquet"), default="parquet")
    parser.add_argument("--no-fast-path", action="store_true", help="score with sklearn")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    extra = ["--no-fast-path"] if args.no_fast_path else []

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        source = work / f"passengers.{args.format}"
        t0 = time.monotonic()
        generate(args.rows, source)
        print(
            f"generated {args.rows:,} rows ({source.stat().st_size / 2**20:.0f} MiB "
            f"{args.format}) in {time.monotonic() - t0:.1f} s",
            file=sys.stderr,
        )
        base = run(TEST_CSV, work / f"base.{args.output_format}", args.chunk_size, extra)
        big = run(source, work / f"out.{args.output_format}", args.chunk_size, extra)
        input_mib = source.stat().st_size / 2**20

    scoring_seconds = max(big["job_seconds"] - base["job_seconds"], 1e-9)
    result = {
        "rows": args.rows,
        "input": f"{args.format} ({input_mib:.0f} MiB)",
        "output": args.output_format,
        "chunk_size": args.chunk_size,
        "scoring": big["scoring"],
        "wall_seconds": round(big["seconds"], 1),
        "job_seconds": round(big["job_seconds"], 1),
        "fixed_seconds (418-row run)": round(base["job_seconds"], 1),
        "rows_per_second": round(args.rows / scoring_seconds),
        "rows_per_second_end_to_end": round(args.rows / big["seconds"]),
        "peak_rss_mib": round(big["peak_rss_mib"]),
        "peak_rss_mib_418_rows": round(base["peak_rss_mib"]),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
