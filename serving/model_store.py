"""The served model: resolve the URI in the registry, load it, check it, hold it, predict with it.

`ModelStore.current` is the one attribute that holds the loaded model (a frozen `LoadedModel`);
loading builds a complete new `LoadedModel` and swaps it in with one assignment, so a request
that read `current` keeps a consistent model even if a reload (a later issue) swaps it meanwhile.

Models load with `mlflow.pyfunc.load_model`, which reads the sklearn flavor with skops and the
trusted types the model was logged with: nothing is unpickled. The model carries its own code
(`code_paths`), so serving never imports `training`.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import mlflow
import numpy as np
import orjson
import pandas as pd
from mlflow import MlflowClient

from serving.contract import InputSpec, parse_batch
from serving.fast import FastModel, load_fast_model

log = logging.getLogger("serving.model_store")

ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
LINEAGE_TAGS = ("git_commit", "git_dirty", "dvc_data_hash", "dvc_exp_name")


@dataclass(frozen=True)
class ModelInfo:
    """Who the served model is: what /version answers and X-Model-Version carries."""

    model_uri: str  # as configured, e.g. models:/titanic@champion
    resolved_uri: str  # what was loaded, e.g. models:/titanic/3
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    loaded_at: float = 0.0
    inference: str = "sklearn"  # "onnx": the fast path; "sklearn": the plain pipeline
    inference_detail: str = ""  # the fast path's self-check, or why there is none

    @property
    def metrics(self) -> dict[str, float]:
        """The training metrics training/register.py copies onto the version as tags."""
        metrics = {}
        for key, value in self.tags.items():
            if key in LINEAGE_TAGS:
                continue
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                metrics[key] = number
        return metrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "resolved_uri": self.resolved_uri,
            "source": self.source,
            "git_commit": self.tags.get("git_commit"),
            "git_dirty": self.tags.get("git_dirty"),
            "dvc_data_hash": self.tags.get("dvc_data_hash"),
            "metrics": self.metrics,
            "tags": self.tags,
            "loaded_at": self.loaded_at,
            "inference": {"path": self.inference, "detail": self.inference_detail},
        }


@dataclass(frozen=True)
class LoadedModel:
    pyfunc: Any  # mlflow.pyfunc.PyFuncModel: what /invocations calls, as `mlflow models serve`
    raw: Any  # the sklearn Pipeline inside it: labels and probabilities for /predict
    spec: InputSpec
    info: ModelInfo
    positive_column: int  # predict_proba column of the class 1 (survived)
    fast: FastModel | None = None  # the ONNX path, when the model carries one that checks out
    probe_rows: tuple[dict[str, Any], ...] = ()  # the logged input example, typed: /ready asks it

    @property
    def input_schema(self) -> Any:
        return self.pyfunc.metadata.get_input_schema()

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Typed rows -> a DataFrame with the signature's dtypes (nulls as NaN/None)."""
        columns = {}
        for column in self.spec.columns:
            values = [row[column.name] for row in rows]
            if column.kind in ("long", "integer"):
                has_null = any(v is None for v in values)
                columns[column.name] = (
                    np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                    if has_null
                    else np.array(values, dtype=np.int64 if column.kind == "long" else np.int32)
                )
            elif column.kind in ("double", "float"):
                columns[column.name] = np.array(
                    [np.nan if v is None else v for v in values],
                    dtype=np.float64 if column.kind == "double" else np.float32,
                )
            else:
                columns[column.name] = pd.Series(values, dtype=object)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))

    def predict(
        self, rows: list[dict[str, Any]], proba: bool = False
    ) -> tuple[list[int], list[float] | None]:
        if not rows:
            return [], [] if proba else None
        if self.fast is not None:
            labels, probabilities = self.fast.predict(rows)
            return labels, probabilities if proba else None
        frame = self.frame(rows)
        labels = [int(label) for label in self.raw.predict(frame)]
        if not proba:
            return labels, None
        probabilities = self.raw.predict_proba(frame)[:, self.positive_column]
        return labels, [float(p) for p in probabilities]


class ModelNotReady(Exception):
    """No model is loaded (yet): the reason says why."""


class ModelStore:
    def __init__(self, model_uri: str, tracking_uri: str, retry_seconds: float = 10.0):
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.retry_seconds = retry_seconds
        self.current: LoadedModel | None = None
        self.reason = "the model has not been loaded yet"
        self._lock = threading.Lock()
        self._retry_thread: threading.Thread | None = None

    # -- loading -------------------------------------------------------------------------------

    def resolve(self, client: MlflowClient) -> ModelInfo:
        """The configured URI -> the registry version it names now (or the URI itself)."""
        if match := ALIAS_URI.match(self.model_uri):
            mv = client.get_model_version_by_alias(match["name"], match["alias"])
            alias = match["alias"]
        elif match := VERSION_URI.match(self.model_uri):
            mv = client.get_model_version(match["name"], match["version"])
            alias = None
        else:  # a run, a logged model or a local path: no registry identity
            return ModelInfo(model_uri=self.model_uri, resolved_uri=self.model_uri)
        return ModelInfo(
            model_uri=self.model_uri,
            resolved_uri=f"models:/{mv.name}/{mv.version}",
            name=mv.name,
            version=str(mv.version),
            alias=alias,
            run_id=mv.run_id,
            source=mv.source,
            tags=dict(mv.tags),
        )

    def load(self) -> LoadedModel:
        """Resolve, load, self-check and swap in the model; raise (and keep the reason) if not."""
        with self._lock:
            try:
                loaded = self._load()
            except Exception as exc:
                self.reason = f"cannot load {self.model_uri}: {type(exc).__name__}: {exc}"
                raise ModelNotReady(self.reason) from exc
            self.current = loaded
            self.reason = ""
            return loaded

    def try_load(self) -> bool:
        try:
            loaded = self.load()
        except ModelNotReady as exc:
            log.warning("model not loaded: %s", exc)
            return False
        log.info("model loaded: %s (version %s)", loaded.info.resolved_uri, loaded.info.version)
        return True

    def _load(self) -> LoadedModel:
        started = time.monotonic()
        mlflow.set_tracking_uri(self.tracking_uri)
        info = self.resolve(MlflowClient(tracking_uri=self.tracking_uri))
        # One download: the pyfunc and the fast path both read this local copy.
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=info.resolved_uri, dst_path=tempfile.mkdtemp(prefix="serving-model-")
        )
        pyfunc = mlflow.pyfunc.load_model(local)
        raw = pyfunc.get_raw_model()
        fast, fast_detail = load_fast_model(local, raw)
        if fast is None:
            log.warning("serving %s without the fast path: %s", info.resolved_uri, fast_detail)
        spec = InputSpec.from_mlflow_schema(pyfunc.metadata.get_input_schema())
        classes = [int(c) for c in getattr(raw, "classes_", [0, 1])]
        loaded = LoadedModel(
            pyfunc=pyfunc,
            raw=raw,
            spec=spec,
            info=replace(
                info,
                loaded_at=time.time(),
                inference="onnx" if fast is not None else "sklearn",
                inference_detail=fast_detail,
            ),
            fast=fast,
            probe_rows=tuple(example_rows(pyfunc, spec)),
            positive_column=classes.index(1) if 1 in classes else len(classes) - 1,
        )
        self_check(loaded)
        log.info("loaded %s in %.1f s", info.resolved_uri, time.monotonic() - started)
        return loaded

    def start_retry_thread(self) -> None:
        """While no model is loaded, try again every `retry_seconds` (in this process)."""
        if self.current is not None or self._retry_thread is not None:
            return

        def retry() -> None:
            while self.current is None:
                time.sleep(self.retry_seconds)
                self.try_load()

        self._retry_thread = threading.Thread(target=retry, name="model-retry", daemon=True)
        self._retry_thread.start()

    # -- serving -------------------------------------------------------------------------------

    def get(self) -> LoadedModel:
        model = self.current
        if model is None:
            raise ModelNotReady(self.reason)
        return model

    def predict(
        self, rows: list[dict[str, Any]], proba: bool = False
    ) -> tuple[list[int], list[float] | None]:
        """The single entry point for typed rows -> (labels, survival probabilities or None)."""
        return self.get().predict(rows, proba)


class SelfCheckFailed(Exception):
    pass


def example_rows(pyfunc: Any, spec: InputSpec) -> list[dict[str, Any]]:
    """The model's logged input example as typed rows, parsed as /predict parses a request."""
    example = pyfunc.input_example
    if example is None:
        return []
    frame = pd.DataFrame(example)
    body = orjson.loads(frame.to_json(orient="columns"))
    return parse_batch(body, spec, max_rows=len(frame) + 1).rows


def self_check(model: LoadedModel) -> None:
    """The model must answer its own logged input example through the /predict path, and agree
    with MLflow's pyfunc on it."""
    if not model.probe_rows:
        raise SelfCheckFailed("the model has no logged input example to check itself with")
    frame = pd.DataFrame(model.pyfunc.input_example)
    labels, probabilities = model.predict(list(model.probe_rows), proba=True)
    expected = [int(v) for v in np.asarray(model.pyfunc.predict(frame)).ravel()]
    if labels != expected:
        raise SelfCheckFailed(f"labels {labels} on the input example, pyfunc says {expected}")
    if probabilities is None or not all(0.0 <= p <= 1.0 for p in probabilities):
        raise SelfCheckFailed(f"probabilities out of range on the input example: {probabilities}")
