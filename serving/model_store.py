"""The served model: where the URI points, a local copy, loaded, checked, held, predicting.

`ModelStore.current` is the one attribute that holds the loaded model (a frozen `LoadedModel`);
loading builds a complete new `LoadedModel` and swaps it in with one assignment, so a request
that read `current` keeps a consistent model even if a reload swaps it meanwhile.

Where versions come from (`source`):

- `RegistrySource`: resolve and download with MLflow in this process (serving.staging): tests,
  batch scoring, a Flask app without gunicorn;
- `AgentSource`: under `python -m serving` the model agent process (serving.agent) resolves and
  stages versions, and the workers read what it staged: they never import MLflow;
- `LocalSource`: a model directory (a model baked into an image): no registry at all.

Loading (`load_local`) reads the model directory without MLflow: the signature, the input
example, and the ONNX fast path (serving.fast), which proves itself against the registered
pipeline's own answers. Only a model without a usable fast path loads the plain pipeline with
`mlflow.pyfunc.load_model` (skops, the trusted types the model was logged with: nothing is
unpickled); /invocations loads it on first use.

Hot reload (`poll`): resolve where the alias points now; if it moved, load that version, check it
(it predicts its own logged input example) and swap it in. A version that fails is refused: the
old model keeps serving, `refused` says which version and why, and it is not tried again while
the alias stays on it (moving the alias away and back, or a forced reload, tries it again). An
unreachable registry is a transient fault, never a refusal: it is logged once per failure streak.
Each gunicorn worker runs its own poller thread (`serving.reload.Watcher`, started after fork).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving import metrics
from serving.contract import InputSpec
from serving.fast import FastModel, load_fast_model
from serving.model_files import ModelFiles, is_model_dir, read_identity, read_model_dir
from serving.staging import ALIAS_URI, Resolved, StagingArea, resolve

if TYPE_CHECKING:
    from serving.config import Settings
    from serving.reload import ReloadFlag, Watcher

log = logging.getLogger("serving.model_store")

LINEAGE_TAGS = ("git_commit", "git_dirty", "dvc_data_hash", "dvc_exp_name")
MAX_REASON = 500  # characters of an exception message kept in a refusal or a not-ready reason
REMIND_SECONDS = 300.0  # a registry failure streak is logged again this often, not on every poll
AGENT_STATE = "state.json"  # what the model agent staged, and its view of the registry
AGENT_REQUEST = "request"  # a forced reload asks the agent to poll now through this file
AGENT_WAIT_SECONDS = 30.0  # how long a forced reload waits for the agent's poll


@dataclass(frozen=True)
class ModelInfo(Resolved):
    """Who the served model is: what /version answers and X-Model-Version carries (the registry
    identity `Resolved` holds, and how this process loaded it)."""

    loaded_at: float = 0.0
    inference: str = "sklearn"  # "onnx": the fast path; "sklearn": the plain pipeline
    inference_detail: str = ""  # the fast path's self-check, or why there is none
    path: str = ""  # the local model directory it was loaded from

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


class PlainModel:
    """MLflow's pyfunc of a local model directory, loaded on first use (thread-safe)."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self._pyfunc: Any = None

    @property
    def pyfunc(self) -> Any:
        if self._pyfunc is None:
            with self._lock:
                if self._pyfunc is None:
                    import mlflow.pyfunc

                    self._pyfunc = mlflow.pyfunc.load_model(str(self.model_dir))
        return self._pyfunc


@dataclass(frozen=True)
class LoadedModel:
    spec: InputSpec
    info: ModelInfo
    positive_column: int  # predict_proba column of the class 1 (survived)
    plain: PlainModel  # the pyfunc: what /invocations calls, as `mlflow models serve` does
    fast: FastModel | None = None  # the ONNX path, when the model carries one that checks out
    probe_rows: tuple[dict[str, Any], ...] = ()  # the logged input example, typed: /ready asks it

    @property
    def pyfunc(self) -> Any:
        """mlflow.pyfunc.PyFuncModel (loaded on first use when the fast path serves)."""
        return self.plain.pyfunc

    @property
    def raw(self) -> Any:
        """The scikit-learn Pipeline inside the pyfunc."""
        return self.plain.pyfunc.get_raw_model()

    @property
    def input_schema(self) -> Any:
        return self.pyfunc.metadata.get_input_schema()

    def frame(self, rows: list[dict[str, Any]]) -> Any:
        """Typed rows -> a DataFrame with the signature's dtypes (nulls as NaN/None)."""
        import numpy as np
        import pandas as pd

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
        raw = self.raw
        labels = [int(label) for label in raw.predict(frame)]
        if not proba:
            return labels, None
        probabilities = raw.predict_proba(frame)[:, self.positive_column]
        return labels, [float(p) for p in probabilities]


def load_local(model_dir: Path, info: ModelInfo, fast_path: bool = True) -> LoadedModel:
    """Load and self-check the model in `model_dir`: the fast path if it proves itself, else
    the plain pipeline (which imports MLflow and scikit-learn)."""
    started = time.monotonic()
    files = read_model_dir(model_dir)
    plain = PlainModel(model_dir)
    fast, detail = load_fast_model(model_dir) if fast_path else (None, "fast path disabled")
    if fast is None:
        log.warning("serving %s without the fast path: %s", info.resolved_uri, detail)
        classes = [int(c) for c in getattr(plain.pyfunc.get_raw_model(), "classes_", [0, 1])]
        positive = classes.index(1) if 1 in classes else len(classes) - 1
    else:
        check_plain_model_file(model_dir, files)  # /invocations loads it later: intact now
        positive = fast.positive_column
    loaded = LoadedModel(
        spec=files.spec,
        info=replace(
            info,
            loaded_at=time.time(),
            inference="onnx" if fast is not None else "sklearn",
            inference_detail=detail,
            path=str(model_dir),
        ),
        positive_column=positive,
        plain=plain,
        fast=fast,
        probe_rows=files.example_rows,
    )
    self_check(loaded)
    log.info("loaded %s in %.2f s", info.resolved_uri, time.monotonic() - started)
    return loaded


def check_plain_model_file(model_dir: Path, files: ModelFiles) -> None:
    """Raise SelfCheckFailed unless the skops file is an intact archive (every member's CRC
    checked) with its schema: what `mlflow.pyfunc.load_model` would read, checked without
    loading scikit-learn. Other serialization formats are not inspected here."""
    import zipfile

    if files.skops_file is None:
        return
    try:
        with zipfile.ZipFile(model_dir / files.skops_file) as archive:
            damaged = archive.testzip()
            if damaged is not None:
                raise zipfile.BadZipFile(f"member {damaged} is damaged")
            json.loads(archive.read("schema.json"))
    except Exception as exc:
        reason = f"the model file {files.skops_file} is unreadable: {describe_error(exc)}"
        raise SelfCheckFailed(reason) from None


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
    """The poller's view of the registry: reachable, or failing since when and how often.

    The store and the model agent both keep one: `failed` and `recovered` do the counting, and
    say when a failure streak is worth a log line (its first poll, then every REMIND_SECONDS).
    """

    reachable: bool = True
    error: str | None = None
    failing_since: float | None = None
    failed_polls: int = 0
    last_poll_at: float | None = None
    _last_logged: float = 0.0

    def failed(self, error: str, now: float) -> bool:
        """Count a failed poll; True if this one should be logged."""
        first = self.reachable
        self.reachable, self.error = False, error
        self.failing_since = self.failing_since or now
        self.failed_polls += 1
        if first or now - self._last_logged >= REMIND_SECONDS:
            self._last_logged = now
            return True
        return False

    def recovered(self) -> int:
        """Reset after a poll that got an answer; the failed polls of the streak it ended."""
        failed = 0 if self.reachable else self.failed_polls
        self.reachable, self.error, self.failing_since, self.failed_polls = True, None, None, 0
        return failed

    def public(self) -> dict[str, Any]:
        """What /version and the agent's state file report."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Source:
    """Where versions come from: `resolve` (what the URI names now), `fetch` (its local
    directory); an agent-backed source also refreshes, changes `stamp`, says what it `staged`
    and reports the registry's health (then the store does not count registry faults itself)."""

    reports_health = False

    def resolve(self) -> ModelInfo:
        raise NotImplementedError

    def fetch(self, info: ModelInfo) -> Path:
        raise NotImplementedError

    def refresh(self) -> None:
        """Make `resolve` see the registry as it is now (a no-op unless an agent stages)."""

    def stamp(self) -> int | None:
        return None

    def staged(self) -> str | None:
        """The resolved URI of a version ready to load without the registry, if known."""
        return None

    def health(self) -> dict[str, Any] | None:
        return None


class RegistrySource(Source):
    """Resolve and download in this process, with MLflow (serving.staging)."""

    def __init__(self, model_uri: str, tracking_uri: str):
        self.model_uri, self.tracking_uri = model_uri, tracking_uri
        self._area: StagingArea | None = None

    def resolve(self) -> ModelInfo:
        found = resolve(self.model_uri, self.tracking_uri)
        return ModelInfo(**asdict(found))

    def fetch(self, info: ModelInfo) -> Path:
        if self._area is None:
            self._area = StagingArea()
        return self._area.stage(info, self.tracking_uri)  # a ModelInfo is a Resolved


class LocalSource(Source):
    """A local model directory: its identity from the registry.json baked beside it, if any."""

    def __init__(self, model_uri: str):
        self.model_uri = model_uri

    def resolve(self) -> ModelInfo:
        identity = read_identity(Path(self.model_uri)) or {}
        return ModelInfo(model_uri=self.model_uri, resolved_uri=self.model_uri, **identity)

    def fetch(self, info: ModelInfo) -> Path:
        return Path(self.model_uri)


class AgentSource(Source):
    """What the model agent (serving.agent) staged: read from its state file, no MLflow here."""

    reports_health = True

    def __init__(self, model_uri: str, directory: Path):
        self.model_uri = model_uri
        self.state_path = directory / AGENT_STATE
        self.request_path = directory / AGENT_REQUEST
        self._state: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        try:
            self._state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            self._state = {}
        return self._state

    def resolve(self) -> ModelInfo:
        state = self._read()
        model = state.get("model")
        if not model:
            registry = state.get("registry") or {}
            why = registry.get("error") or "it has not staged a model yet"
            raise RegistryUnavailable(f"waiting for the model agent: {why}")
        known = ModelInfo.__dataclass_fields__
        return ModelInfo(**{k: v for k, v in model.items() if k in known})

    def fetch(self, info: ModelInfo) -> Path:
        if not info.path:  # the agent could not stage this version: refused like a bad one
            error = (self._state.get("model") or {}).get("error") or "not staged"
            raise SelfCheckFailed(error)
        return Path(info.path)

    def refresh(self) -> None:
        """Ask the agent to poll the registry now, and wait until it has."""
        request = str(time.time_ns())
        temporary = self.request_path.with_suffix(f".{request}")
        temporary.write_text(request)
        temporary.replace(self.request_path)
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while time.monotonic() < deadline:
            if str(self._read().get("handled")) == request:
                return
            time.sleep(0.05)
        raise RegistryUnavailable(f"the model agent did not poll within {AGENT_WAIT_SECONDS} s")

    def stamp(self) -> int | None:
        try:
            return self.state_path.stat().st_mtime_ns
        except OSError:
            return None

    def staged(self) -> str | None:
        """The resolved URI of what the agent published, if anything (read from disk)."""
        if self.stamp() is None:
            return None
        model = self._read().get("model") or {}
        return model.get("resolved_uri")

    def health(self) -> dict[str, Any] | None:
        return self._state.get("registry")


class ModelStore:
    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
        reload_interval: float = 0.0,
        agent_dir: Path | None = None,
    ):
        self.model_uri = model_uri
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
        self.source: Source
        if is_model_dir(model_uri):
            self.source = LocalSource(model_uri)
        elif agent_dir is not None:
            self.source = AgentSource(model_uri, agent_dir)
        else:
            self.source = RegistrySource(model_uri, tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings, agent_dir: Path | None = None) -> ModelStore:
        return cls(
            settings.model_uri,
            settings.tracking_uri,
            retry_seconds=settings.load_retry_seconds,
            retry_max_seconds=settings.load_retry_max_seconds,
            reload_interval=settings.reload_interval,
            agent_dir=agent_dir,
        )

    @property
    def watches_alias(self) -> bool:
        """Only an alias can move: a fixed version or a path is never polled once loaded."""
        return ALIAS_URI.match(self.model_uri) is not None

    # -- loading -------------------------------------------------------------------------------

    def resolve(self) -> ModelInfo:
        """The configured URI -> the version it names now (or the URI itself).

        A local model directory (a model baked into an image) never touches the registry: its
        identity comes from the `registry.json` that `python -m serving.bake` wrote beside it.
        """
        return self.source.resolve()

    def load(self) -> LoadedModel:
        """Resolve, load, self-check and swap in the model; raise (and keep the reason) if not."""
        with self._lock:
            try:
                loaded = self._load()
            except Exception as exc:
                self.reason = f"cannot load {self.model_uri}: {describe_error(exc)}"
                raise ModelNotReady(self.reason) from exc
            finally:
                self._agent_health()
            metrics.model_loaded(loaded.info, reload=self.current is not None)
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

    def poll(self, force: bool = False, refresh: bool = False) -> str:
        """Ask the registry where the URI points; load, check and swap in a new version.

        Returns "unchanged", "swapped", "refused" (the old model keeps serving), "skipped" (the
        alias still points at a version refused before; `force` tries it again) or
        "unreachable" (the registry did not answer; whatever is loaded keeps serving).
        `refresh` first has the model agent (if one stages for this process) poll the registry.
        """
        with self._lock:
            self.registry.last_poll_at = time.time()
            try:
                return self._poll(force, refresh)
            finally:
                self._agent_health()

    def _poll(self, force: bool, refresh: bool) -> str:
        """`poll`, with the lock held."""
        try:
            if refresh:
                self.source.refresh()
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
            if is_transient(exc):  # the registry or artifact store went away mid-load
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
        reason = describe_error(exc)
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
        error = describe_error(exc)
        if self.current is None:
            self.reason = f"cannot load {self.model_uri}: the registry is unreachable: {error}"
        if self.source.reports_health:  # the agent counts and logs registry faults
            return
        if health.failed(error, now):
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
        if self.source.reports_health:  # the agent's view, copied by _agent_health
            return
        health = self.registry
        since = health.failing_since
        failed = health.recovered()
        if failed:
            log.info(
                "registry reachable again after %d failed polls over %.1f s",
                failed,
                time.time() - (since or time.time()),
                extra={"fields": {"event": "registry_back", "failed_polls": failed}},
            )

    def _agent_health(self) -> None:
        """Under the model agent, the registry's health is the agent's view of it."""
        health = self.source.health()
        if health:
            self.registry = RegistryHealth(**health)

    def _load(self, info: ModelInfo | None = None) -> LoadedModel:
        if info is None:
            info = self.resolve()
        return load_local(self.source.fetch(info), info)

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

    def stamp(self) -> int | None:
        """Changes when the model agent staged something new (None without an agent)."""
        return self.source.stamp()

    def status(self) -> dict[str, Any]:
        """The reload state /version reports next to the model's identity."""
        health = self.registry
        return {
            "reload": {
                "interval_seconds": self.reload_interval if self.watches_alias else 0,
                "refused": asdict(self.refused) if self.refused is not None else None,
                "registry": health.public(),
            }
        }

    # -- serving -------------------------------------------------------------------------------

    def ensure(self) -> LoadedModel | None:
        """The loaded model; if none yet but the model agent has staged one, load it now (in
        the calling request) instead of waiting for the watcher's next tick: a worker that
        starts (or restarts) after the agent staged never answers 503 for want of a tick."""
        model = self.current
        if model is None:
            staged = self.source.staged()
            if staged is not None and staged != self._skip:  # not one refused already
                self.poll()
                model = self.current
        return model

    def get(self) -> LoadedModel:
        model = self.ensure()
        if model is None:
            raise ModelNotReady(self.reason)
        return model

    def predict(
        self, rows: list[dict[str, Any]], proba: bool = False
    ) -> tuple[list[int], list[float] | None]:
        """The single entry point for typed rows -> (labels, survival probabilities or None)."""
        return self.get().predict(rows, proba)


def describe_error(exc: BaseException) -> str:
    """`Type: message`, cut to MAX_REASON characters: what refusals and reasons report."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def is_transient(exc: BaseException) -> bool:
    """Did this fail because a server did not answer (not because the model is bad)?"""
    seen: BaseException | None = exc
    for _ in range(20):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, (RegistryUnavailable, ConnectionError, TimeoutError)):
            return True
        requests = sys.modules.get("requests")  # loaded by whatever raised one of its errors
        if requests is not None and isinstance(seen, (requests.ConnectionError, requests.Timeout)):
            return True
        text = str(seen)
        if "Max retries exceeded" in text or "Connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SelfCheckFailed(Exception):
    pass


def self_check(model: LoadedModel) -> None:
    """The model must answer its own logged input example through the /predict path: labels
    0/1 and probabilities in [0, 1]. The fast path has already proven itself against the
    registered pipeline's answers (serving.fast); the plain model must agree with MLflow's pyfunc
    on the example."""
    if not model.probe_rows:
        raise SelfCheckFailed("the model has no logged input example to check itself with")
    labels, probabilities = model.predict(list(model.probe_rows), proba=True)
    if not set(labels) <= {0, 1}:
        raise SelfCheckFailed(f"labels {labels} on the input example are not 0/1")
    if probabilities is None or not all(0.0 <= p <= 1.0 for p in probabilities):
        raise SelfCheckFailed(f"probabilities out of range on the input example: {probabilities}")
    if model.fast is None:
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame(model.pyfunc.input_example)
        expected = [int(v) for v in np.asarray(model.pyfunc.predict(frame)).ravel()]
        if labels != expected:
            raise SelfCheckFailed(f"labels {labels} on the input example, pyfunc says {expected}")
