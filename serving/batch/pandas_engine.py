"""The pandas engine: stream the input by chunks, type, score and append each to the output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serving.batch.columns import Typed, type_rows
from serving.batch.files import BatchError, OutputWriter, _one_line, read_csv_chunks
from serving.batch.scorer import Counts, Scorer
from serving.contract import InputSpec


def _answers(scorer: Scorer, typed: Typed) -> tuple[pa.Array, pa.Array, pa.Array]:
    good = typed.good
    labels, proba = scorer.score(typed, good)
    n = len(good)
    prediction = np.zeros(n, dtype=np.int64)
    probability = np.zeros(n, dtype=np.float64)
    prediction[good] = labels
    probability[good] = proba
    return (
        pa.array(prediction, mask=~good),
        pa.array(probability, mask=~good),
        pa.array(typed.errors.tolist(), type=pa.string()),
    )


def _csv_chunk_table(chunk: pd.DataFrame, typed: Typed, spec: InputSpec) -> pa.Table:
    """A CSV chunk for Parquet output: signature columns typed, the rest as text."""
    arrays, names = [], []
    kinds = {c.name: c.type for c in spec.columns}
    for name in chunk.columns:
        if name in kinds:
            values, null, kind = typed.columns[name], typed.nulls[name], kinds[name]
            arrow = getattr(pa, kind.arrow)()
            if not kind.numeric:
                array = pa.array(values.tolist(), type=arrow)
            else:
                cast = np.where(null, 0, values) if kind.exact is int else values
                array = pa.array(cast, mask=null).cast(arrow)
        else:
            cells = chunk[name].to_numpy(dtype=object, na_value=None)
            array = pa.array(cells.tolist(), type=pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def run_pandas(
    scorer: Scorer,
    input_path: Path,
    in_fmt: str,
    writer: OutputWriter,
    chunk_size: int,
    total: int | None,
) -> Counts:
    from tqdm import tqdm

    counts = Counts()
    spec = scorer.spec
    progress = tqdm(
        total=total, unit="rows", unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty()
    )
    try:
        if in_fmt == "parquet":
            chunks: Iterator[Any] = pq.ParquetFile(input_path).iter_batches(batch_size=chunk_size)
        else:
            chunks = read_csv_chunks(input_path, chunk_size)
        wrote = False
        for chunk in chunks:
            if in_fmt == "parquet":
                table = pa.Table.from_batches([chunk])
                present = [c for c in spec.names if c in table.column_names]
                frame = table.select(present).to_pandas()
            else:
                frame = chunk
            typed = type_rows(frame, spec)
            prediction, probability, error = _answers(scorer, typed)
            counts.add_errors(typed.errors, counts.rows + 1)
            counts.add_unknown(typed.unknown)
            if in_fmt == "parquet":
                out = table
            elif writer.fmt == "parquet":
                out = _csv_chunk_table(frame, typed, spec)
            else:
                out = frame.assign(
                    prediction=prediction.to_pandas(
                        types_mapper={pa.int64(): pd.Int64Dtype()}.get
                    ).array,
                    probability=probability.to_numpy(zero_copy_only=False),
                    error=error.to_numpy(zero_copy_only=False),
                )
            if isinstance(out, pa.Table):
                out = out.append_column("prediction", prediction)
                out = out.append_column("probability", probability)
                out = out.append_column("error", error)
            writer.write(out)
            wrote = True
            counts.rows += len(frame)
            progress.update(len(frame))
        if not wrote:  # a header and no rows: still an output with the right columns
            writer.write(_empty_output(input_path, in_fmt, writer.fmt, spec))
    except (pd.errors.ParserError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise BatchError(
            f"input {input_path}: unreadable after row {counts.rows} ({_one_line(exc)})"
        ) from None
    finally:
        progress.close()
    return counts


def _empty_output(path: Path, in_fmt: str, out_fmt: str, spec: InputSpec) -> Any:
    if in_fmt == "parquet":
        table = pq.ParquetFile(path).schema_arrow.empty_table()
    else:
        header = pd.read_csv(path, dtype=str, nrows=0)
        table = _csv_chunk_table(header, type_rows(header, spec), spec)
    table = table.append_column("prediction", pa.array([], pa.int64()))
    table = table.append_column("probability", pa.array([], pa.float64()))
    table = table.append_column("error", pa.array([], pa.string()))
    return table.to_pandas() if out_fmt == "csv" else table
