"""The served model: resolve the URI in the registry, load it, check it, hold it, predict with it.

`ModelStore.current` is the one attribute that holds the loaded model (a frozen `LoadedModel`);
loading builds a complete new `LoadedModel` and swaps it in with one assignment, so a request
that read `current` keeps a consistent model even if a reload swaps it meanwhile.

Hot reload (`poll`): resolve where the alias points now; if it moved, load that version, check it
(it predicts its own logged input example) and swap it in. A version that fails is refused: the
old model keeps serving, `refused` says which version and why, and it is not tried again while
the alias stays on it (moving the alias away and back, or a forced reload, tries it again). An
unreachable registry is a transient fault, never a refusal: it is logged once per failure streak.
Each gunicorn worker runs its own poller thread (`serving.reload.Watcher`, started after fork).

Models load with `mlflow.pyfunc.load_model`, which reads the sklearn flavor with skops and the
trusted types the model was logged with: nothing is unpickled. The model carries its own code
(`code_paths`), so serving never imports `training`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import orjson
import pandas as pd
import requests
from mlflow import MlflowClient

from serving import metrics
from serving.contract import InputSpec, parse_batch
from serving.fast import FastModel, load_fast_model

if TYPE_CHECKING:
    from serving.config import Settings
    from serving.reload import ReloadFlag, Watcher

log = logging.getLogger("serving.model_store")

ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
BAKED_IDENTITY = "registry.json"  # beside MLmodel in a baked model directory
LINEAGE_TAGS = ("git_commit", "git_dirty", "dvc_data_hash", "dvc_exp_name")
MAX_REASON = 500  # characters of an exception message kept in a refusal or a not-ready reason
REMIND_SECONDS = 300.0  # a registry failure streak is logged again this often, not on every poll


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


class RegistryUnavailable(Exception):
    """The registry (or the artifact store behind it) did not answer: try again later."""


@dataclass(frozen=True)
class Refusal:
    """A version that was not swapped in, and why."""

    version: str | None
    resolved_uri: str
    reason: str
    at: float


@dataclass
class RegistryHealth:
    """The poller's view of the registry: reachable, or failing since when and how often."""

    reachable: bool = True
    error: str | None = None
    failing_since: float | None = None
    failed_polls: int = 0
    last_poll_at: float | None = None
    _last_logged: float = 0.0


class ModelStore:
    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
        reload_interval: float = 0.0,
    ):
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.retry_seconds = retry_seconds
        self.retry_max_seconds = retry_max_seconds
        self.reload_interval = reload_interval
        self.current: LoadedModel | None = None
        self.reason = "the model has not been loaded yet"
        self.refused: Refusal | None = None  # the last version refused (kept for /version)
        self.registry = RegistryHealth()
        self.reload_flag: ReloadFlag | None = None  # shared by the workers: see serving.reload
        self._skip: str | None = None  # a refused resolved URI not to retry while the alias stays
        self._lock = threading.Lock()  # one load at a time per process
        self._watcher: Watcher | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        return cls(
            settings.model_uri,
            settings.tracking_uri,
            retry_seconds=settings.load_retry_seconds,
            retry_max_seconds=settings.load_retry_max_seconds,
            reload_interval=settings.reload_interval,
        )

    @property
    def watches_alias(self) -> bool:
        """Only an alias can move: a fixed version or a path is never polled once loaded."""
        return ALIAS_URI.match(self.model_uri) is not None

    # -- loading -------------------------------------------------------------------------------

    def resolve(self) -> ModelInfo:
        """The configured URI -> the registry version it names now (or the URI itself).

        A local model directory (a model baked into an image) never touches the registry: its
        identity comes from the `registry.json` that `python -m serving.bake` wrote beside it.
        """
        if match := ALIAS_URI.match(self.model_uri):
            client = MlflowClient(tracking_uri=self.tracking_uri)
            mv = client.get_model_version_by_alias(match["name"], match["alias"])
            alias = match["alias"]
        elif match := VERSION_URI.match(self.model_uri):
            client = MlflowClient(tracking_uri=self.tracking_uri)
            mv = client.get_model_version(match["name"], match["version"])
            alias = None
        elif (Path(self.model_uri) / BAKED_IDENTITY).is_file():
            baked = json.loads((Path(self.model_uri) / BAKED_IDENTITY).read_text())
            fields = {k: baked[k] for k in ("name", "version", "alias", "run_id", "source", "tags")}
            return ModelInfo(model_uri=self.model_uri, resolved_uri=self.model_uri, **fields)
        else:  # a run, a logged model or a bare local path: no registry identity
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
                self.reason = f"cannot load {self.model_uri}: {_describe(exc)}"
                raise ModelNotReady(self.reason) from exc
            metrics.model_loaded(loaded.info, reload=self.current is not None)
            self.current = loaded
            self.reason = ""
            return loaded

    def try_load(self) -> bool:
        try:
            loaded = self.load()
        except ModelNotReady as exc:
            log.warning("model not loaded: %s", exc)
            warm_imports()  # in the gunicorn master: the forked workers inherit the imports
            return False
        log.info("model loaded: %s (version %s)", loaded.info.resolved_uri, loaded.info.version)
        return True

    def poll(self, force: bool = False) -> str:
        """Ask the registry where the URI points; load, check and swap in a new version.

        Returns "unchanged", "swapped", "refused" (the old model keeps serving), "skipped" (the
        alias still points at a version refused before; `force` tries it again) or
        "unreachable" (the registry did not answer; whatever is loaded keeps serving).
        """
        with self._lock:
            self.registry.last_poll_at = time.time()
            try:
                info = self.resolve()
            except Exception as exc:
                self._registry_failed(exc)
                return "unreachable"
            current = self.current
            if current is not None and info.resolved_uri == current.info.resolved_uri:
                self._registry_ok()
                self._skip = None  # moving the alias away and back tries a refused one again
                return "unchanged"
            if not force and current is not None and info.resolved_uri == self._skip:
                self._registry_ok()
                return "skipped"
            try:
                loaded = self._load(info)
            except Exception as exc:
                if _is_transient(exc):  # the registry or artifact store went away mid-load
                    self._registry_failed(exc)
                    return "unreachable"
                self._registry_ok()
                self._refuse(info, exc)
                return "refused"
            self._registry_ok()
            self.current, self.reason, self._skip = loaded, "", None
            metrics.model_loaded(loaded.info, reload=current is not None)
            was = current.info.version if current is not None else None
            log.info(
                "model swapped in: %s (version %s, was %s)",
                info.resolved_uri,
                info.version,
                was,
                extra={"fields": {"event": "model_swapped", "version": info.version, "was": was}},
            )
            return "swapped"

    def _refuse(self, info: ModelInfo, exc: Exception) -> None:
        reason = _describe(exc)
        self.refused = Refusal(info.version, info.resolved_uri, reason, time.time())
        self._skip = info.resolved_uri
        metrics.reload_failed(info.version)
        serving = self.current.info.version if self.current is not None else None
        if self.current is None:
            self.reason = f"cannot load {self.model_uri} ({info.resolved_uri}): {reason}"
        log.warning(
            "refused version %s (%s): %s; still serving version %s",
            info.version,
            info.resolved_uri,
            reason,
            serving,
            extra={
                "fields": {
                    "event": "model_refused",
                    "version": info.version,
                    "reason": reason,
                    "serving": serving,
                }
            },
        )

    def _registry_failed(self, exc: Exception) -> None:
        health, now = self.registry, time.time()
        error = _describe(exc)
        if self.current is None:
            self.reason = f"cannot load {self.model_uri}: the registry is unreachable: {error}"
        first = health.reachable
        health.reachable, health.error = False, error
        health.failing_since = health.failing_since or now
        health.failed_polls += 1
        if first or now - health._last_logged >= REMIND_SECONDS:
            health._last_logged = now
            serving = self.current.info.version if self.current is not None else None
            log.warning(
                "registry poll failed (%d in a row since %.0f s ago): %s; serving version %s; "
                "the next failures of this streak are not logged each time",
                health.failed_polls,
                now - health.failing_since,
                error,
                serving,
                extra={
                    "fields": {
                        "event": "registry_unreachable",
                        "failed_polls": health.failed_polls,
                        "serving": serving,
                    }
                },
            )

    def _registry_ok(self) -> None:
        health = self.registry
        if not health.reachable:
            log.info(
                "registry reachable again after %d failed polls over %.1f s",
                health.failed_polls,
                time.time() - (health.failing_since or time.time()),
                extra={"fields": {"event": "registry_back", "failed_polls": health.failed_polls}},
            )
        self.registry = RegistryHealth(last_poll_at=health.last_poll_at)

    def _load(self, info: ModelInfo | None = None) -> LoadedModel:
        started = time.monotonic()
        if info is None or info.resolved_uri.startswith("models:/"):
            # MLflow resolves a registry version's LoggedModel through the global tracking URI,
            # whatever download_artifacts is told: point it at ours (a baked path needs none).
            mlflow.set_tracking_uri(self.tracking_uri)
        if info is None:
            info = self.resolve()
        # One download: the pyfunc and the fast path both read this local copy, which is not
        # needed once both are in memory (hot reloads would otherwise fill the temp dir).
        with tempfile.TemporaryDirectory(prefix="serving-model-") as download:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=info.resolved_uri,
                dst_path=download,
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
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

    def start_watcher(self) -> None:
        """Start this process's poller thread (in each gunicorn worker, after the fork): it
        retries with backoff while nothing is loaded and polls the alias every
        `reload_interval` seconds once something is."""
        from serving.reload import Watcher

        if self._watcher is None:
            self._watcher = Watcher(self)
            self._watcher.start()

    def stop_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def status(self) -> dict[str, Any]:
        """The reload state /version reports next to the model's identity."""
        health = self.registry
        return {
            "reload": {
                "interval_seconds": self.reload_interval if self.watches_alias else 0,
                "refused": asdict(self.refused) if self.refused is not None else None,
                "registry": {
                    "reachable": health.reachable,
                    "error": health.error,
                    "failing_since": health.failing_since,
                    "failed_polls": health.failed_polls,
                    "last_poll_at": health.last_poll_at,
                },
            }
        }

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


WARM_MODULES = ("mlflow.pyfunc", "mlflow.sklearn", "sklearn.ensemble", "sklearn.pipeline",
                "sklearn.compose", "skops.io", "onnxruntime")  # fmt: skip


def warm_imports() -> None:
    """Import what loading a model needs (~9 s cold on 2 cores) when the first load failed, so
    that workers forked from this process load fast once the registry answers."""
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def _is_transient(exc: BaseException) -> bool:
    """Did this fail because a server did not answer (not because the model is bad)?"""
    seen: BaseException | None = exc
    for _ in range(20):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, (requests.ConnectionError, requests.Timeout, ConnectionError)):
            return True
        text = str(seen)
        if "Max retries exceeded" in text or "Connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
