"""The batch benchmark's ceilings: the bare ONNX Runtime call on features built beforehand, and
reading and writing the file alone.

`runtime_ceiling` derives the features of the first rows of the Parquet input with the scorer's
columnar path, then times the fast path's session on them: one session of one thread, two such
sessions side by side, and one session of two threads; the best of the three is the ceiling.
`io_ceiling` reads a whole input by chunk and writes every chunk back out unchanged, with the batch
engine's own reader and writer and no typing, features or scoring: no job on that file, whatever
its model and features cost, can pass that rate.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def runtime_ceiling(scorer: Any, source: Path, rows: int, chunk_size: int) -> dict[str, Any]:
    """The bare ONNX Runtime call on pre-built features: rows/s on one core and on both."""
    from serving.batch.columns import select, type_columns
    from serving.batch.files import open_input, read_chunks
    from serving.model.fast import new_session

    columnar = scorer.columnar
    if columnar is None:
        return {"skipped": f"no columnar fast path ({scorer.path})"}
    features = []
    for chunk in read_chunks(open_input(source, "parquet"), chunk_size):
        typed = type_columns(chunk, scorer.spec)
        features.append(columnar.features(select(typed, typed.good), typed.size))
        if sum(len(n) for n, _ in features) >= rows:
            break
    count = sum(len(n) for n, _ in features)
    number, strings = scorer.fast.input_names
    dtype = scorer.fast.numeric_dtype
    feeds = [{number: n.astype(dtype, copy=False), strings: c} for n, c in features]

    def rate(sessions: list[Any]) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(len(sessions)) as pool:
            jobs = [pool.submit(sessions[i % len(sessions)].run, None, feed)
                    for i, feed in enumerate(feeds)]  # fmt: skip
            for job in jobs:
                job.result()
        return count / (time.perf_counter() - started)

    onnx = scorer.fast.onnx_bytes
    one = [new_session(onnx)]
    rate(one)  # warm-up
    single = rate(one)
    side_by_side = rate([new_session(onnx), new_session(onnx)])
    two_threads = rate([new_session(onnx, threads=2)])
    return {
        "rows": count,
        "one_core": round(single),
        "two_sessions": round(side_by_side),
        "one_session_two_threads": round(two_threads),
        # the ceiling: the best the runtime showed (on a loaded machine one core can win)
        "best": round(max(single, side_by_side, two_threads)),
    }


def io_ceiling(source: Path, fmt: str, output: Path, chunk_size: int) -> dict[str, Any]:
    """Rows/s of reading `source` (`fmt`: "csv" or "parquet") by chunk and writing each chunk to
    `output` unchanged, through serving.batch.files."""
    from serving.batch.files import OutputWriter, open_input, read_chunks

    started = time.perf_counter()
    source_file = open_input(source, fmt)
    writer, rows = None, 0
    for chunk in read_chunks(source_file, chunk_size):
        if writer is None:
            writer = OutputWriter(output, fmt, chunk.schema, {})
        writer.write(chunk)
        rows += chunk.num_rows
    if writer is not None:
        writer.commit()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}
