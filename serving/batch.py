"""Batch scoring: a CSV or Parquet file of passengers -> the same rows with the model's answers.

    python -m serving.batch --input data/raw/test.csv --output predictions.parquet
    python -m serving.batch --input big.parquet --output out.csv --chunk-size 100000
    python -m serving.batch --input test.csv --output out.csv --engine spark --spark-master local[2]

Output: every input row, in input order, with all its input columns, plus `prediction` (0/1, the
label MLflow's pyfunc gives), `probability` (P(survived), the pipeline's predict_proba) and `error`
(empty unless the row could not be scored). The file type follows the extension (.csv, .csv.gz,
.parquet, .pq) for input and output alike. The model is resolved once (an alias such as
``models:/titanic@champion`` to its version) and every row is scored by that one version, named
in ``<output>.meta.json`` (name, version, run id, URIs, row and error counts) and, for Parquet, in
the file's key-value metadata too (``model.name``, ``model.version``, ``model.run_id``,
``model.uri``). The output appears under its name only when complete (written to a temp file
beside it, then renamed).

Input columns. The model's signature says which columns it reads and their types (Pclass and Sex
required; Name, Age, SibSp, Parch, Fare, Cabin, Embarked optional; other columns such as
PassengerId and Ticket are carried through untouched). CSV cells are read as text and typed by
the signature, never guessed by pandas chunk by chunk, so a chunk whose Age is all empty or all
whole numbers scores exactly as it would in the full file; only an empty cell is null ("NA" is
a name, not a null). Output columns keep the input as read: a CSV's cells come back as the same
text; Parquet columns keep their Arrow types; a CSV written out as Parquet has its signature
columns typed by the signature and its other columns as strings.

Bad input. A missing required column, or an input that does not exist or cannot be read as
CSV/Parquet, stops the job before anything is written: one line on stderr naming the file and
the column, exit status 2. A bad row (Pclass "abc", Sex empty, Age "inf") is kept: its
`prediction` and `probability` are empty and `error` names the column and the value, e.g.
``Pclass: 'abc' is not an integer``; the job still succeeds (exit 0), prints how many rows failed
and the first ones (1-based data row numbers, header excluded) on stderr, and counts them in the
sidecar. Filter on `error` to find them.

Engines.

- ``pandas`` (default): streams the input in chunks of ``--chunk-size`` rows (pandas' chunked
  CSV reader, pyarrow's Parquet batches) and appends each scored chunk to the output, so memory
  is bounded by the chunk size, not the file size. The model loads once; rows are scored by the
  same ONNX fast path as the server (serving/fast.py, self-checked against the pipeline on load)
  or, if the model has none or it fails its check, by the scikit-learn pipeline itself. A tqdm
  progress bar shows on a terminal only.
- ``spark``: reads the file with Spark, types the rows with the same code as the pandas engine
  (mapInPandas), predicts with ``mlflow.pyfunc.spark_udf`` (env_manager="local": the executors
  use this Python, PYSPARK_PYTHON defaults to it) and computes the probability with the
  pipeline's predict_proba in the same mapInPandas pass (the model's directory is shipped to
  the executors with SparkContext.addFile; this package with addPyFile). pyfunc rejects a null
  in an integer column (SibSp, Parch: "Can not safely convert float64 to int64", mlflow#5207),
  so a row with such a null takes its label from the pipeline's predict, the function pyfunc
  itself calls, and the UDF sees a placeholder whose answer is dropped. Row order: each row
  gets ``monotonically_increasing_id()`` as it is read (ordered for a single input file), and
  the result is written by ONE task (``repartition(1).sortWithinPartitions``) to a temp
  directory whose single part file is then moved to ``--output``. That single writer is the
  honest limit of "one output file": the scoring is distributed, the final write is not.
  ``--spark-master`` (or SPARK_MASTER; default ``local[*]``) picks the cluster. On a real
  cluster the input and output paths must be visible to the driver and executors alike (a
  shared filesystem), the executors need the same Python environment (pip install -r
  requirements.lock) and the registry must be reachable from the driver (MLFLOW_TRACKING_URI):
  ``python -m serving.batch --engine spark --spark-master spark://host:7077 --input
  /shared/in.csv --output /shared/out.parquet``, or the same flags after ``spark-submit
  --master spark://host:7077 serving/batch.py`` (the script finds this package beside it).

The registry is MLFLOW_TRACKING_URI, else the embedded sqlite store at the repo root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if __package__ in (None, ""):  # run as a script (spark-submit serving/batch.py): find `serving`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serving.config import DEFAULT_MODEL_URI, default_tracking_uri
from serving.contract import Column, InputSpec

DEFAULT_CHUNK_SIZE = 50_000
ADDED_COLUMNS = ("prediction", "probability", "error")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXIT_BAD_INPUT = 2
MAX_REPORTED_ERRORS = 10
# A row that fails typing is still given to a Spark UDF (Python UDFs run on every row): it gets
# these values, and its answers are then replaced by nulls.
PLACEHOLDER = {"long": 3, "integer": 3, "double": 0.0, "float": 0.0, "string": "male"}


class BatchError(Exception):
    """A problem with the job's inputs: reported as one line, exit status 2."""


# -- files --------------------------------------------------------------------------------------


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


# -- typing rows by the signature ----------------------------------------------------------------


@dataclass
class Typed:
    """A chunk's signature columns typed, and per-row error messages (None: the row is good).

    Numbers are float64 arrays (NaN = null; longs hold whole numbers), strings object arrays
    (None = null).
    """

    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    errors: np.ndarray  # object: None or "col: message"

    @property
    def good(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)


def _numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, null mask); text that is not a number becomes NaN but is not null."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isnan(values)
    cells = pd.Series(series.to_numpy(dtype=object, na_value=None), dtype=object)
    null = cells.isna().to_numpy()
    text = cells.map(lambda v: v.strip() if isinstance(v, str) else v)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, null


def _convert(series: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, null mask, bad mask) of one column by its signature type."""
    if column.kind == "string":
        cells = series.to_numpy(dtype=object, na_value=None)
        null = pd.isna(cells)
        bad = np.array([v is not None and not isinstance(v, str) for v in cells], dtype=bool)
        bad &= ~null
        values = np.where(null | bad, None, cells).astype(object)
        return values, null, bad
    if column.kind == "boolean":
        raise BatchError(f"column {column.name!r}: boolean inputs are not supported in batch")
    values, null = _numbers(series)
    bad = ~null & ~np.isfinite(values)
    if column.kind in ("long", "integer"):
        limit = 2.0**63 if column.kind == "long" else 2.0**31
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < limit)
        bad |= ~null & ~whole
    values = np.where(bad, np.nan, values)
    return values, null, bad


def _describe(value: Any, kind: str) -> str:
    expected = {
        "long": "is not an integer",
        "integer": "is not an integer",
        "double": "is not a finite number",
        "float": "is not a finite number",
        "string": "is not a string",
    }[kind]
    return f"{value!r} {expected}"


def type_rows(frame: pd.DataFrame, spec: InputSpec) -> Typed:
    """Type `frame`'s signature columns (absent optional columns are all null)."""
    n = len(frame)
    errors: list[list[str] | None] = [None] * n
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for column in spec.columns:
        if column.name in frame.columns:
            series = frame[column.name]
        else:
            series = pd.Series([None] * n, dtype=object)
        values, null, bad = _convert(series, column)
        if bad.any():
            raw = series.to_numpy(dtype=object)
            for i in np.flatnonzero(bad):
                message = f"{column.name}: {_describe(raw[i], column.kind)}"
                errors[i] = [*(errors[i] or []), message]
        if column.required and null.any():
            for i in np.flatnonzero(null):
                errors[i] = [*(errors[i] or []), f"{column.name}: required value is empty"]
        columns[column.name] = values
        nulls[column.name] = null | bad
    messages = np.array([None if e is None else "; ".join(e) for e in errors], dtype=object)
    return Typed(columns=columns, nulls=nulls, errors=messages)


def model_frame(typed: Typed, spec: InputSpec, rows: np.ndarray) -> pd.DataFrame:
    """The selected rows as the DataFrame the pipeline expects (the server's dtypes)."""
    data = {}
    for column in spec.columns:
        values = typed.columns[column.name][rows]
        null = typed.nulls[column.name][rows]
        if column.kind in ("long", "integer"):
            data[column.name] = (
                values
                if null.any()
                else values.astype(np.int64 if column.kind == "long" else np.int32)
            )
        elif column.kind in ("double", "float"):
            data[column.name] = values.astype(np.float64 if column.kind == "double" else np.float32)
        else:
            data[column.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(int(rows.sum())))


def typed_rows(typed: Typed, spec: InputSpec, rows: np.ndarray) -> list[dict[str, Any]]:
    """The selected rows as the contract's typed dicts (int, float, str or None)."""
    lists = []
    for column in spec.columns:
        values = typed.columns[column.name][rows]
        null = typed.nulls[column.name][rows]
        if column.kind in ("long", "integer"):
            cells = [
                None if n else int(v) for v, n in zip(values.tolist(), null.tolist(), strict=True)
            ]
        elif column.kind in ("double", "float"):
            cells = [None if n else v for v, n in zip(values.tolist(), null.tolist(), strict=True)]
        else:
            cells = values.tolist()
        lists.append(cells)
    names = spec.names
    return [dict(zip(names, cells, strict=True)) for cells in zip(*lists, strict=True)]


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Scorer:
    """One resolved model version: typed rows -> (labels, P(survived))."""

    loaded: Any  # serving.model_store.LoadedModel
    fast: Any  # serving.fast.FastModel or None
    path: str  # "onnx" or "sklearn", and why

    @property
    def spec(self) -> InputSpec:
        return self.loaded.spec

    @property
    def info(self) -> Any:
        return self.loaded.info

    def score(self, typed: Typed, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not rows.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if self.fast is not None:
            labels, proba = self.fast.predict(typed_rows(typed, self.spec, rows))
            return np.asarray(labels, dtype=np.int64), np.asarray(proba, dtype=np.float64)
        frame = model_frame(typed, self.spec, rows)
        raw = self.loaded.raw
        labels = np.asarray(raw.predict(frame)).astype(np.int64)
        proba = np.asarray(raw.predict_proba(frame))[:, self.loaded.positive_column]
        return labels, proba.astype(np.float64)


def load_scorer(model_uri: str, tracking_uri: str, fast_path: bool = True) -> Scorer:
    """Resolve the alias, load that version once (self-checked), and its fast path if any."""
    import mlflow

    from serving.model_store import ModelNotReady, ModelStore

    mlflow.set_tracking_uri(tracking_uri)  # spark_udf resolves models:/ URIs through it
    try:
        loaded = ModelStore(model_uri, tracking_uri).load()
    except ModelNotReady as exc:
        raise BatchError(str(exc)) from None
    if not fast_path:
        return Scorer(loaded, None, "sklearn (fast path disabled by --no-fast-path)")
    if loaded.fast is None:
        return Scorer(loaded, None, f"sklearn ({loaded.info.inference_detail})")
    return Scorer(loaded, loaded.fast, loaded.info.inference_detail)


def model_metadata(scorer: Scorer) -> dict[str, Any]:
    info = scorer.info
    return {
        "name": info.name,
        "version": info.version,
        "alias": info.alias,
        "run_id": info.run_id,
        "model_uri": info.model_uri,
        "resolved_uri": info.resolved_uri,
    }


def parquet_metadata(model: dict[str, Any]) -> dict[bytes, bytes]:
    return {
        b"model.name": str(model["name"] or "").encode(),
        b"model.version": str(model["version"] or "").encode(),
        b"model.run_id": str(model["run_id"] or "").encode(),
        b"model.uri": str(model["resolved_uri"] or "").encode(),
        b"model.requested_uri": str(model["model_uri"] or "").encode(),
    }


# -- writing ------------------------------------------------------------------------------------

ARROW_TYPES = {
    "long": pa.int64(),
    "integer": pa.int32(),
    "double": pa.float64(),
    "float": pa.float32(),
    "string": pa.string(),
}


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


# -- the pandas engine ---------------------------------------------------------------------------


@dataclass
class Counts:
    rows: int = 0
    errors: int = 0
    first_errors: list[str] | None = None

    def add_errors(self, errors: np.ndarray, first_row: int) -> None:
        bad = np.flatnonzero([e is not None for e in errors])
        self.errors += len(bad)
        reported = self.first_errors if self.first_errors is not None else []
        for i in bad[: max(0, MAX_REPORTED_ERRORS - len(reported))]:
            reported.append(f"row {first_row + int(i)}: {errors[i]}")
        self.first_errors = reported


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
    kinds = {c.name: c.kind for c in spec.columns}
    for name in chunk.columns:
        if name in kinds:
            values, null = typed.columns[name], typed.nulls[name]
            if kinds[name] == "string":
                array = pa.array(values.tolist(), type=pa.string())
            else:
                cast = values if kinds[name] in ("double", "float") else np.where(null, 0, values)
                array = pa.array(cast, mask=null).cast(ARROW_TYPES[kinds[name]])
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


# -- the Spark engine ----------------------------------------------------------------------------

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
                placeholder = PLACEHOLDER[column.kind]
                if column.kind in ("long", "integer"):
                    fill = typed.nulls[column.name] | ~good
                    out[typed_names[column.name]] = np.where(fill, placeholder, values).astype(
                        np.int64
                    )
                elif column.kind == "string":
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
    package = Path(__file__).resolve().parent
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
) -> Counts:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    import mlflow
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
        spark_types = {
            "long": T.LongType(),
            "integer": T.IntegerType(),
            "double": T.DoubleType(),
            "float": T.FloatType(),
            "string": T.StringType(),
        }
        fields = [
            *frame.schema.fields,
            *(T.StructField(typed_names[c.name], spark_types[c.kind]) for c in spec.columns),
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


def _restamp_parquet(source: Path, target: Path, metadata: dict[bytes, bytes]) -> None:
    """Copy a Parquet file batch by batch, adding key-value metadata to its schema."""
    parquet = pq.ParquetFile(source)
    schema = parquet.schema_arrow
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    with pq.ParquetWriter(target, schema) as writer:
        for batch in parquet.iter_batches():
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))


# -- the command --------------------------------------------------------------------------------


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
            "Engines: pandas streams the file in --chunk-size chunks (bounded memory) and "
            "scores with the server's ONNX fast path, else the scikit-learn pipeline. spark "
            "scores with mlflow.pyfunc.spark_udf (labels) and predict_proba (probabilities) in "
            "Spark, keeps input order by a monotonically increasing row id, and writes one "
            "file through a single final task. Cluster: --spark-master spark://host:7077 (or "
            "SPARK_MASTER), with input/output on a filesystem shared by driver and executors "
            "and the same Python environment on the executors; or spark-submit --master URL "
            "serving/batch.py --engine spark ... Registry: MLFLOW_TRACKING_URI, else the "
            "embedded sqlite store at the repo root."
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
        "--spark-master",
        default=None,
        help="Spark master URL for --engine spark (default: SPARK_MASTER, else local[*])",
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
    # MLflow's artifact download bars would bury the one line this command prints per problem.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return _run(args)
    except BatchError as exc:
        print(f"serving.batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    input_path: Path = args.input
    output: Path = args.output
    in_fmt = file_format(input_path, "input")
    out_fmt = file_format(output, "output")
    columns, total = input_columns(input_path, in_fmt)
    if output.resolve() == input_path.resolve():
        raise BatchError(f"output {output}: is the input file; choose another path")
    if not output.parent.is_dir():
        raise BatchError(f"output {output}: directory {output.parent} does not exist")

    tracking_uri = args.tracking_uri or default_tracking_uri()
    scorer = load_scorer(args.model_uri, tracking_uri, fast_path=not args.no_fast_path)
    check_columns(input_path, columns, scorer.spec)
    model = model_metadata(scorer)
    metadata = parquet_metadata(model)

    if args.engine == "spark":
        master = args.spark_master or os.environ.get("SPARK_MASTER")
        if not master:  # under spark-submit (it starts the JVM first), its --master applies
            master = "spark-submit" if "PYSPARK_GATEWAY_PORT" in os.environ else "local[*]"
        counts = run_spark(scorer, input_path, in_fmt, output, out_fmt, master, metadata)
        path = f"spark ({master}): pyfunc spark_udf labels, sklearn predict_proba"
    else:
        writer = OutputWriter(output, out_fmt, metadata)
        try:
            counts = run_pandas(scorer, input_path, in_fmt, writer, args.chunk_size, total)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        path = scorer.path
    elapsed = time.monotonic() - started
    sidecar = write_sidecar(
        output,
        {
            "model": model,
            "engine": args.engine,
            "scoring": path,
            "input": str(input_path),
            "output": str(output),
            "rows": counts.rows,
            "errors": counts.errors,
            "first_errors": counts.first_errors or [],
            "chunk_size": args.chunk_size if args.engine == "pandas" else None,
            "seconds": round(elapsed, 3),
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
