"""Which columns the output holds, and their types: one rule, both engines.

The output is every input column, in input order, then `prediction` (int64), `probability`
(double) and `error` (string), whatever the engine and the output format:

- a Parquet input's columns keep their types;
- a CSV input's columns are text, exactly as the file holds them (an empty cell is null);
- a CSV input with `--infer-types`: the model's input columns take the signature's types
  (Pclass int64, Age double, Sex string, ...; a cell that does not fit becomes null, and its row's
  `error` says why), and every other column the type its first INFER_ROWS rows show: int64 if
  every non-empty cell is a whole number, else double if every one is a number, else text. The
  types are fixed before the first chunk is written, so a later cell that does not fit its
  column's type stops the job, naming the column, the value and the row: nothing is guessed
  chunk by chunk, and nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serving.batch.columns import INTEGER_TEXT, NUMBER_TEXT, Typed
from serving.batch.files import ADDED_FIELDS, BatchError, InputFile, read_chunks
from serving.contract import InputSpec

INFER_ROWS = 10_000  # the rows --infer-types looks at to type the columns outside the signature


@dataclass(frozen=True)
class OutputPlan:
    """The input's format and columns, and (CSV with --infer-types) the type of each column."""

    fmt: str
    names: tuple[str, ...]
    inferred: Mapping[str, pa.DataType] | None = None
    signature: frozenset[str] = frozenset()
    source: str = ""  # the input's path, for messages

    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The output's schema for an input of `input_schema` (as this engine reads it)."""
        fields = list(input_schema)
        if self.inferred is not None:
            fields = [pa.field(f.name, self.inferred[f.name]) for f in fields]
        elif self.fmt == "csv":
            fields = [pa.field(f.name, pa.string()) for f in fields]
        return pa.schema([*fields, *ADDED_FIELDS])

    def input_columns(
        self, table: pa.Table, typed: Typed, first_row: int | None = None
    ) -> list[pa.Array | pa.ChunkedArray]:
        """The chunk's input columns as the output holds them. `first_row`: the chunk's first
        data row (0-based) in the file, to name a row in a message, when known."""
        if self.inferred is None:
            return list(table.columns)
        columns = []
        for name, column in zip(table.column_names, table.columns, strict=True):
            kind = self.inferred[name]
            if name in self.signature:  # typed by the signature: bad cells are null
                values = typed.values[name]
                columns.append(values if values.type == kind else values.cast(kind))
            elif pa.types.is_string(kind):
                columns.append(column)
            else:
                columns.append(self._cast_text(name, column, kind, first_row))
        return columns

    def _cast_text(
        self, name: str, text: pa.ChunkedArray, kind: pa.DataType, first_row: int | None
    ) -> pa.Array:
        pattern = INTEGER_TEXT if pa.types.is_integer(kind) else NUMBER_TEXT
        cells = text.combine_chunks()
        trimmed = pc.utf8_trim_whitespace(cells)
        fits = pc.fill_null(pc.match_substring_regex(trimmed, pattern), True)
        bad = np.flatnonzero(~fits.to_numpy(zero_copy_only=False))
        if not len(bad):
            try:
                return pc.cast(trimmed, kind)
            except pa.ArrowInvalid:  # a whole number past int64
                present = np.flatnonzero(trimmed.is_valid().to_numpy(zero_copy_only=False))
                bad = [i for i in present.tolist() if not _fits_int64(trimmed[i].as_py())]
                if not bad:
                    raise
        first = int(bad[0])
        where = f" at row {first_row + first + 1:,}" if first_row is not None else ""
        raise BatchError(
            f"input {self.source}: column {name!r} holds {cells[first].as_py()!r}{where}, not "
            f"{_noun(kind)} as --infer-types read it from the first {INFER_ROWS:,} rows; run "
            "without --infer-types to keep every column's text as it is"
        )


def _fits_int64(text: str) -> bool:
    return -(2**63) <= int(text) < 2**63


def _noun(kind: pa.DataType) -> str:
    return "a whole number (int64)" if pa.types.is_integer(kind) else "a number (double)"


def infer_text_type(cells: pa.Array) -> pa.DataType:
    """int64, double or string: what every non-empty cell of a text column can be."""
    present = cells.drop_null()
    if len(present) == 0:
        return pa.string()
    trimmed = pc.utf8_trim_whitespace(present)
    integers = pc.all(pc.match_substring_regex(trimmed, INTEGER_TEXT)).as_py()
    if integers and all(_fits_int64(v) for v in pc.unique(trimmed).to_pylist()):
        return pa.int64()
    if pc.all(pc.match_substring_regex(trimmed, NUMBER_TEXT)).as_py():
        return pa.float64()
    return pa.string()


def plan_output(source: InputFile, spec: InputSpec, infer_types: bool) -> OutputPlan:
    """The output's columns for this input; with `infer_types` (CSV only) each column's type."""
    names = tuple(source.names)
    signature = frozenset(name for name in spec.names if name in names)
    path = str(source.path)
    if not infer_types or source.fmt != "csv":
        return OutputPlan(source.fmt, names, None, signature, path)
    kinds = {c.name: getattr(pa, c.type.arrow)() for c in spec.columns}
    sample = next(iter(read_chunks(source, INFER_ROWS)), source.schema.empty_table())
    inferred = {
        name: kinds[name]
        if name in kinds
        else infer_text_type(sample.column(name).combine_chunks())
        for name in names
    }
    return OutputPlan(source.fmt, names, inferred, signature, path)
