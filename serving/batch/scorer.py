"""One resolved model version that scores typed chunks: the fast path or the pipeline, and the
metadata that names it in the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.batch.columns import Typed, model_frame, typed_rows
from serving.batch.files import BatchError
from serving.contract import InputSpec
from serving.model.fast import FastModel
from serving.model.identity import ModelInfo
from serving.model.loaded import LoadedModel
from serving.store import ModelNotReady, ModelStore

MAX_REPORTED_ERRORS = 10


@dataclass
class Scorer:
    """One resolved model version: typed rows -> (labels, P(survived))."""

    loaded: LoadedModel
    fast: FastModel | None
    path: str  # "onnx" or "sklearn", and why

    @property
    def spec(self) -> InputSpec:
        return self.loaded.spec

    @property
    def info(self) -> ModelInfo:
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


@dataclass
class Counts:
    rows: int = 0
    errors: int = 0
    first_errors: list[str] | None = None
    out_of_domain: dict[str, int] | None = None  # optional values scored as unknown, by column

    def add_unknown(self, unknown: dict[str, int]) -> None:
        totals = self.out_of_domain if self.out_of_domain is not None else {}
        for column, count in unknown.items():
            totals[column] = totals.get(column, 0) + count
        self.out_of_domain = totals

    def add_errors(self, errors: np.ndarray, first_row: int) -> None:
        bad = np.flatnonzero([e is not None for e in errors])
        self.errors += len(bad)
        reported = self.first_errors if self.first_errors is not None else []
        for i in bad[: max(0, MAX_REPORTED_ERRORS - len(reported))]:
            reported.append(f"row {first_row + int(i)}: {errors[i]}")
        self.first_errors = reported
