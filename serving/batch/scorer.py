"""One resolved model version that scores typed chunks, and the metadata that names it.

Three ways to score, the fastest the model allows: the columnar fast path (the model's own
`derive_columns` and one ONNX Runtime run per chunk, serving.model.fast.ColumnarModel), the
server's row fast path (an older model whose code has no `derive_columns`: its row function,
then the same graph), or the scikit-learn pipeline (a model with no fast path, or
`--no-fast-path`). All three give the server's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.batch.columns import Typed, model_frame, select, typed_rows
from serving.batch.files import BatchError
from serving.contract import InputSpec
from serving.model.columnar import ColumnarModel, load_columnar
from serving.model.fast import FastModel
from serving.model.identity import ModelInfo
from serving.model.loaded import LoadedModel, load_local

MAX_REPORTED_ERRORS = 10


@dataclass
class Scorer:
    """One loaded model version: typed chunks -> (labels, P(survived)) of their good rows."""

    loaded: LoadedModel
    fast: FastModel | None
    columnar: ColumnarModel | None
    path: str  # how rows are scored, and why

    @property
    def spec(self) -> InputSpec:
        return self.loaded.spec

    @property
    def info(self) -> ModelInfo:
        return self.loaded.info

    def score(self, typed: Typed) -> tuple[np.ndarray, np.ndarray]:
        """(int64 labels, float64 P(survived)) of the chunk's good rows, in order."""
        good = typed.good
        count = int(np.count_nonzero(good))
        if not count:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if self.columnar is not None:
            return self.columnar.predict_columns(select(typed, good), count)
        if self.fast is not None:
            labels, proba = self.fast.predict(typed_rows(typed, self.spec, good))
            return np.asarray(labels, dtype=np.int64), np.asarray(proba, dtype=np.float64)
        frame = model_frame(typed, self.spec, good)
        raw = self.loaded.raw
        labels = np.asarray(raw.predict(frame)).astype(np.int64)
        proba = np.asarray(raw.predict_proba(frame))[:, self.loaded.positive_column]
        return labels, proba.astype(np.float64)


def scorer_for(loaded: LoadedModel, fast_path: bool = True) -> Scorer:
    """The fastest way this loaded version can score: columnar, rows, or the pipeline."""
    if not fast_path:
        return Scorer(loaded, None, None, "sklearn (fast path disabled by --no-fast-path)")
    fast = loaded.fast
    if fast is None:
        return Scorer(loaded, None, None, f"sklearn ({loaded.info.inference_detail})")
    columnar, why = load_columnar(fast, loaded.info.path, loaded.spec)
    if columnar is None:
        return Scorer(loaded, fast, None, f"{loaded.info.inference_detail}; rows: {why}")
    return Scorer(loaded, fast, columnar, f"{loaded.info.inference_detail}; columns: {why}")


def scorer_from_dir(model_dir: Path, info: ModelInfo, fast_path: bool = True) -> Scorer:
    """The same scorer from a model directory at hand (a Spark executor's copy): loaded and
    self-checked as the server loads it, with no registry."""
    return scorer_for(load_local(model_dir, info, fast_path), fast_path)


def load_scorer(model_uri: str, tracking_uri: str, fast_path: bool = True) -> Scorer:
    """Resolve the alias, load that version once (self-checked), and its fastest path."""
    from serving.store import ModelNotReady, ModelStore

    try:
        loaded = ModelStore(model_uri, tracking_uri).load()
    except ModelNotReady as exc:
        raise BatchError(str(exc)) from None
    return scorer_for(loaded, fast_path)


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


@dataclass
class Counts:
    """A job's tally: rows, rows with an error (the first few, by 1-based data row), and the
    optional values scored as unknown because they fall outside the training domain."""

    rows: int = 0
    errors: int = 0
    first_errors: list[str] | None = None
    out_of_domain: dict[str, int] | None = None

    def add(self, stats: ChunkStats, first_row: int) -> None:
        """A chunk's stats; `first_row`: its first row's 0-based position in the input."""
        self.rows += stats.rows
        self.errors += stats.errors
        reported = self.first_errors if self.first_errors is not None else []
        for offset, message in stats.first_errors[: max(0, MAX_REPORTED_ERRORS - len(reported))]:
            reported.append(f"row {first_row + offset + 1}: {message}")
        self.first_errors = reported
        totals = self.out_of_domain if self.out_of_domain is not None else {}
        for column, count in stats.unknown.items():
            totals[column] = totals.get(column, 0) + count
        self.out_of_domain = totals


@dataclass
class ChunkStats:
    """What one chunk (or one Spark partition) tallied: `first_errors` as (0-based row within
    it, message), at most MAX_REPORTED_ERRORS."""

    rows: int = 0
    errors: int = 0
    first_errors: list[tuple[int, str]] | None = None
    unknown: dict[str, int] | None = None

    def __post_init__(self) -> None:
        self.first_errors = self.first_errors or []
        self.unknown = self.unknown or {}

    def extend(self, other: ChunkStats) -> None:
        """Append a later chunk's stats (its rows follow this one's)."""
        assert self.first_errors is not None and self.unknown is not None
        room = MAX_REPORTED_ERRORS - len(self.first_errors)
        self.first_errors.extend((self.rows + i, m) for i, m in (other.first_errors or [])[:room])
        self.rows += other.rows
        self.errors += other.errors
        for column, count in (other.unknown or {}).items():
            self.unknown[column] = self.unknown.get(column, 0) + count
