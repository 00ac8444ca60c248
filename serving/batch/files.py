"""The batch job's files: which format a path is, reading the input's columns and chunks, the
output written beside its final name and renamed into place when complete, the sidecar."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serving.contract import InputSpec

ADDED_COLUMNS = ("prediction", "probability", "error")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq")


class BatchError(Exception):
    """A problem with the job's inputs: reported as one line, exit status 2."""


def file_format(path: str | os.PathLike[str], role: str) -> str:
    name = str(path).lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise BatchError(
        f"{role} {path}: unknown file type; use a name ending in .csv or .parquet "
        f"({', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)})"
    )


def read_csv_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The CSV in chunks, every column as text; only an empty cell is null."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], chunksize=chunk_size)


def input_columns(path: Path, fmt: str) -> tuple[list[str], int | None]:
    """(column names, row count if cheaply known); BatchError if the file cannot be read."""
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path)
            return list(meta.schema_arrow.names), meta.metadata.num_rows
        header = pd.read_csv(path, dtype=str, nrows=0)
        return list(header.columns), None
    except FileNotFoundError:
        raise BatchError(f"input {path}: no such file") from None
    except IsADirectoryError:
        raise BatchError(f"input {path}: is a directory, not a file") from None
    except PermissionError:
        raise BatchError(f"input {path}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise BatchError(f"input {path}: empty file, no CSV header") from None
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise BatchError(f"input {path}: not a readable {kind} file ({_one_line(exc)})") from None


def check_columns(path: Path, columns: Sequence[str], spec: InputSpec) -> None:
    missing = [name for name in spec.required if name not in columns]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise BatchError(
            f"input {path}: required {noun} {names} missing (it has: {_listing(columns)})"
        )
    clash = [name for name in ADDED_COLUMNS if name in columns]
    if clash:
        raise BatchError(
            f"input {path}: already has column(s) {', '.join(map(repr, clash))}, which the "
            "output adds; drop or rename them first"
        )


def _listing(columns: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(str(c))[1:-1] for c in columns[:limit])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


class OutputWriter:
    """Appends scored chunks to a temp file beside `path`; `commit` renames it into place."""

    def __init__(self, path: Path, fmt: str, metadata: dict[bytes, bytes]):
        self.path = path
        self.fmt = fmt
        self.metadata = metadata
        self.partial = _partial(path)
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._csv_started = False

    def write(self, table: pa.Table | pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame = table.to_pandas() if isinstance(table, pa.Table) else table
            frame.to_csv(
                self.partial,
                mode="a" if self._csv_started else "w",
                header=not self._csv_started,
                index=False,
                compression="infer" if not self._csv_started else None,
            )
            self._csv_started = True
            return
        if not isinstance(table, pa.Table):
            raise TypeError("Parquet output takes Arrow tables")
        if self._parquet is None:
            self._schema = table.schema.with_metadata(
                {**(table.schema.metadata or {}), **self.metadata}
            )
            self._parquet = pq.ParquetWriter(self.partial, self._schema)
        self._parquet.write_table(table.cast(self._schema))

    def commit(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.partial.unlink(missing_ok=True)


def write_sidecar(output: Path, meta: dict[str, Any]) -> Path:
    sidecar = output.with_name(output.name + ".meta.json")
    partial = _partial(sidecar)
    partial.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    os.replace(partial, sidecar)
    return sidecar


def _restamp_parquet(source: Path, target: Path, metadata: dict[bytes, bytes]) -> None:
    """Copy a Parquet file batch by batch, adding key-value metadata to its schema."""
    parquet = pq.ParquetFile(source)
    schema = parquet.schema_arrow
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    with pq.ParquetWriter(target, schema) as writer:
        for batch in parquet.iter_batches():
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
