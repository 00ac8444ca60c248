"""The batch job's files: which format a path is, the input's columns and its chunks (Arrow,
streamed), the output written beside its final name and renamed into place when complete, the
sidecar.

CSV is read and written by Arrow's own CSV reader and writer (C++, off the GIL): every cell is
read as text, only an empty cell is null, quoted cells may hold commas, quotes and line breaks,
and a row with more or fewer cells than the header stops the job (naming the line). A UTF-8 BOM
is skipped. `.csv.gz`, `.csv.bz2`, `.csv.zst` and `.csv.xz` are read and written compressed.
"""

from __future__ import annotations

import json
import lzma
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from serving.contract import InputSpec

ADDED_COLUMNS = ("prediction", "probability", "error")
ADDED_FIELDS = (
    pa.field("prediction", pa.int64()),
    pa.field("probability", pa.float64()),
    pa.field("error", pa.string()),
)
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_ARROW_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
CSV_BLOCK_BYTES = 4 << 20  # what the CSV reader parses at a time (in parallel, block by block)


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


def _csv_source(path: Path) -> Any:
    """What Arrow's CSV reader reads: the path (it decompresses .gz, .bz2, .zst itself), or an
    xz stream (Arrow has no lzma codec)."""
    if str(path).lower().endswith(".xz"):
        return lzma.open(path, "rb")
    return str(path)


def _csv_options(names: Sequence[str] | None, block_bytes: int = CSV_BLOCK_BYTES) -> dict[str, Any]:
    return {
        "read_options": pacsv.ReadOptions(block_size=block_bytes),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()) if names is not None else None,
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        ),
    }


@dataclass(frozen=True)
class InputFile:
    """The input's columns as read (CSV: every column text) and its row count if cheaply known."""

    path: Path
    fmt: str
    schema: pa.Schema
    rows: int | None

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)


def open_input(path: Path, fmt: str) -> InputFile:
    """The input's schema; BatchError if the file cannot be read as `fmt`."""
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path)
            schema, rows = meta.schema_arrow, meta.metadata.num_rows
        else:
            if path.is_dir():
                raise IsADirectoryError(path)
            reader = pacsv.open_csv(_csv_source(path), **_csv_options(None, 1 << 16))
            names = reader.schema.names
            reader.close()
            schema, rows = pa.schema([pa.field(n, pa.string()) for n in names]), None
    except FileNotFoundError:
        raise BatchError(f"input {path}: no such file") from None
    except IsADirectoryError:
        raise BatchError(f"input {path}: is a directory, not a file") from None
    except PermissionError:
        raise BatchError(f"input {path}: permission denied") from None
    except (pa.ArrowException, UnicodeDecodeError, OSError, EOFError) as exc:
        if fmt == "csv" and "Empty CSV file" in str(exc):
            raise BatchError(f"input {path}: empty file, no CSV header") from None
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise BatchError(f"input {path}: not a readable {kind} file ({_one_line(exc)})") from None
    duplicates = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if duplicates:
        raise BatchError(
            f"input {path}: column name(s) {', '.join(map(repr, duplicates))} appear more than "
            "once; rename them first"
        )
    return InputFile(path, fmt, schema, rows)


def rechunk(batches: Iterable[pa.RecordBatch], size: int, schema: pa.Schema) -> Iterator[pa.Table]:
    """Tables of exactly `size` rows (the last one fewer) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending, schema)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending, schema)


def read_chunks(source: InputFile, chunk_size: int) -> Iterator[pa.Table]:
    """The input in chunks of `chunk_size` rows, streamed (CSV: every column as text)."""
    if source.fmt == "parquet":
        parquet = pq.ParquetFile(source.path)
        batches: Iterable[pa.RecordBatch] = parquet.iter_batches(batch_size=chunk_size)
    else:
        batches = pacsv.open_csv(_csv_source(source.path), **_csv_options(source.names))
    return rechunk(batches, chunk_size, source.schema)


def check_columns(path: Path | str, columns: Sequence[str], spec: InputSpec) -> None:
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


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def _csv_sink(path: Path, final: Path) -> Any:
    """A binary stream to `path`, compressed as `final`'s name says."""
    name = final.name.lower()
    if name.endswith(".xz"):
        return lzma.open(path, "wb")
    for suffix, codec in _ARROW_CODECS.items():
        if name.endswith(suffix):
            return pa.CompressedOutputStream(str(path), codec)
    return pa.OSFile(str(path), "wb")


class OutputWriter:
    """Appends scored chunks to a temp file beside `path`; `commit` renames it into place."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema, metadata: dict[bytes, bytes]):
        self.path = path
        self.fmt = fmt
        self.schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
        self.partial = partial_path(path)
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._sink: Any = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "csv":
            if self._csv is None:
                self._sink = _csv_sink(self.partial, self.path)
                self._csv = pacsv.CSVWriter(self._sink, self.schema)
            self._csv.write_table(table)
            return
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.partial, self.schema)
        self._parquet.write_table(table)

    def _close(self) -> None:
        if self._parquet is None and self._csv is None:
            self.write(self.schema.empty_table())  # no rows: still a file with every column
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
            self._sink.close()

    def commit(self) -> None:
        self._close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._csv is not None:
                self._sink.close()
        finally:
            self.partial.unlink(missing_ok=True)


def write_sidecar(output: Path, meta: dict[str, Any]) -> Path:
    sidecar = output.with_name(output.name + ".meta.json")
    partial = partial_path(sidecar)
    partial.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    os.replace(partial, sidecar)
    return sidecar


def merge_parquet(parts: Sequence[Path], target: Path, metadata: dict[bytes, bytes]) -> None:
    """The parts' rows, in order, as one Parquet file with `metadata` in its schema."""
    schema = pq.ParquetFile(parts[0]).schema_arrow
    schema = schema.remove_metadata().with_metadata(metadata)
    with pq.ParquetWriter(target, schema) as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches():
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))


def merge_csv(parts: Sequence[Path], target: Path, final: Path) -> None:
    """The parts' lines, in order, as one CSV file: the header of the first part only."""
    with _csv_sink(target, final) as sink:
        for i, part in enumerate(parts):
            with open(part, "rb") as source:
                header = source.readline()
                if i == 0:
                    sink.write(header)
                while block := source.read(1 << 20):
                    sink.write(block)
