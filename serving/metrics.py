"""Prometheus metrics: the instruments, their recording, and the exposition `GET /metrics` serves.

Under `python -m serving` every worker counts its own requests, so the metrics are multiprocess:
`python -m serving` calls `prepare_multiprocess_dir()` before anything imports prometheus_client
(which picks its storage when imported), so every process writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` (a fresh private temp dir, removed at exit, unless the user set one),
`mark_process_dead` marks a dead worker's files, and /metrics merges them all with
`MultiProcessCollector`. A plain single-process app (Flask's test client) uses the default
registry. prometheus_client is only imported on first use, never when this module is.

The metrics (all prefixed `serving_`):

- `requests_total{endpoint,method,status}`, `request_duration_seconds{endpoint}` (histogram);
  `endpoint` is Flask's URL rule (`/predict`), "unmatched" for unknown paths: bounded labels;
- `rows_predicted_total{endpoint}`, `predictions_total{endpoint,class}` (answered rows by class);
- `out_of_domain_total{endpoint,column}`: optional values outside the training domain, answered
  as unknown;
- `model_loads_total{kind="load"|"reload"}`, `model_reload_failures_total`: call
  `model_loaded(info, reload=...)` and `reload_failed(version)` from the code that (re)loads;
- `model_info{name,version,alias,inference} 1`: the models each live worker serves, one per
  served alias (max over live workers: during a rolling reload two versions can show 1);
- `stage_duration_seconds{stage,endpoint,version}` (histogram): where a prediction's time goes,
  stage by stage (`STAGES`: read the body, decode it, validate it into typed rows, predict,
  encode the answer), by endpoint and model version, counted in the process and added in bulk
  (serving.stage_counts) so that the hot path pays no multiprocess file writes for them.

The evidence metrics (shadow scoring, drift) are defined in serving.evidence.instruments;
`set_derived` adds families computed at each scrape from the collected ones (the drift PSI,
which cannot be summed across workers), and `collected()` is what /drift and /version read.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from functools import cache
from types import SimpleNamespace
from typing import Any

from serving.stage_counts import STAGE_BUCKETS, Stages

log = logging.getLogger("serving.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
MAX_CLASSES = 20  # distinct `class` label values per process; more are counted as "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_lock = threading.Lock()
_classes: set[str] = set()
_shown: dict[str, Any] = {"serving": False, "infos": {}, "labels": {}, "on": set()}
_class_children: dict[tuple[str, str], Any] = {}  # (endpoint, class) -> its counter's child
_SCALARS = frozenset((int, str, float, bool))


def prepare_multiprocess_dir(environ: dict[str, str] | None = None) -> str:
    """Make sure PROMETHEUS_MULTIPROC_DIR names a directory, before prometheus_client is imported.

    Unless the user set one, create a fresh private temp dir (removed when this process exits).
    Returns the directory.
    """
    environ = os.environ if environ is None else environ
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess dir was set")
    given = environ.get(ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        log.info("metrics: multiprocess dir %s (given: wipe it between runs)", given)
        return given
    directory = tempfile.mkdtemp(prefix="serving-metrics-")  # mode 0700: private
    environ[ENV] = directory
    atexit.register(_remove_dir, directory, os.getpid())
    log.info("metrics: multiprocess dir %s (private, removed at exit)", directory)
    return directory


def _remove_dir(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # forked workers inherit atexit handlers: only the master removes
        shutil.rmtree(directory, ignore_errors=True)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(ENV))


def mark_process_dead(pid: int) -> None:
    """A dead worker's live gauges stop counting (called by the server when a worker exits)."""
    if multiprocess_mode():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


@cache
def _instruments() -> SimpleNamespace:
    """The metric objects, created once per process on first use (never at import)."""
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        requests=Counter(
            "serving_requests_total",
            "HTTP requests answered, by endpoint (URL rule), method and status",
            ["endpoint", "method", "status"],
        ),
        latency=Histogram(
            "serving_request_duration_seconds",
            "Time from reading a request to its answer, by endpoint (URL rule)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        rows=Counter(
            "serving_rows_predicted_total", "Rows answered with a prediction", ["endpoint"]
        ),
        predictions=Counter(
            "serving_predictions_total", "Predicted rows by class", ["endpoint", "class"]
        ),
        loads=Counter(
            "serving_model_loads_total",
            "Models loaded and swapped in: kind=load (first) or reload (a replacement)",
            ["kind"],
        ),
        reload_failures=Counter(
            "serving_model_reload_failures_total",
            "Reloads that failed (the previous model kept serving)",
            ["version"],
        ),
        out_of_domain=Counter(
            "serving_out_of_domain_total",
            "Optional values outside the model's training domain, treated as unknown",
            ["endpoint", "column"],
        ),
        model_info=Gauge(
            "serving_model_info",
            "The models a live worker serves: 1 for each name, version, alias and inference path",
            ["name", "version", "alias", "inference"],
            multiprocess_mode="livemax",
        ),
        stages=Histogram(
            "serving_stage_duration_seconds",
            "Time per stage of a prediction request (read, decode, validate, predict, encode), "
            "by endpoint and model version",
            ["stage", "endpoint", "version"],
            buckets=STAGE_BUCKETS,
        ),
    )


# -- what the model code calls ------------------------------------------------------------------


def model_loaded(info: Any, reload: bool = False) -> None:
    """A model was loaded and swapped in (`info`: a ModelInfo, with name, version, inference)."""
    _instruments().loads.labels(kind="reload" if reload else "load").inc()
    if _shown["serving"]:  # a worker: show the new model now (the master never shows one)
        show_model(info)


def reload_failed(version: str | None = None) -> None:
    """A reload (to `version`, if known) failed; the model in place keeps serving."""
    _instruments().reload_failures.labels(version=str(version or "unknown")).inc()


def show_model(info: Any) -> None:
    """Set `model_info` to 1 for this process's model `info` (one per served model URI) and to 0
    for the one it replaced, unless another served URI still shows it.

    Called from the process that serves requests (a worker), which loads its own models: no
    other process's value can outlive a reload.
    """
    key = getattr(info, "model_uri", None)
    if info is None or _shown["infos"].get(key) is info:  # every request: nothing changed
        return
    labels = (
        str(info.name),
        str(info.version),
        str(getattr(info, "alias", None) or ""),
        str(getattr(info, "inference", "")),
    )
    with _lock:
        _shown["serving"] = True
        _shown["infos"][key] = info
        _shown["labels"][key] = labels
        on = set(_shown["labels"].values())
        gauge = _instruments().model_info
        for gone in _shown["on"] - on:
            gauge.labels(*gone).set(0)
        for shown in on - _shown["on"]:
            gauge.labels(*shown).set(1)
        _shown["on"] = on


def count_predictions(endpoint: str, labels: Iterable[Any]) -> None:
    """Count predicted labels by class (a 1-d sequence; anything else is not counted)."""
    if type(labels) is list and all(type(label) in _SCALARS for label in labels):
        names = [str(label) for label in labels]  # the common case: the model's .tolist()
    else:
        import numpy as np

        values = np.asarray(labels, dtype=object)
        if values.ndim != 1:
            return
        names = [str(label.item() if hasattr(label, "item") else label) for label in values]
    if len(names) == 1:
        _class_counter(endpoint, names[0]).inc()
        return
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for name, count in counts.items():
        _class_counter(endpoint, name).inc(count)


def _class_counter(endpoint: str, name: str) -> Any:
    """`predictions_total{endpoint, class}`'s child for `name` (or "other", past MAX_CLASSES)."""
    child = _class_children.get((endpoint, name))
    if child is not None:
        return child
    with _lock:
        if name not in _classes and len(_classes) >= MAX_CLASSES:
            name = "other"
        _classes.add(name)
    child = _instruments().predictions.labels(endpoint=endpoint, **{"class": name})
    _class_children[(endpoint, name)] = child  # bounded: endpoints x (MAX_CLASSES + "other")
    return child


# -- exposition and recording ------------------------------------------------------------------


_derived: dict[str, Callable[[list[Any]], list[Any]]] = {}


def set_derived(name: str, derive: Callable[[list[Any]], list[Any]]) -> None:
    """Add (or replace) metric families computed at every scrape from the collected ones (the
    drift PSI, which cannot be summed across workers: serving.evidence.drift)."""
    _derived[name] = derive


def collected() -> list[Any]:
    """Every metric family (every worker's values, under `python -m serving`), derived ones
    excluded."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    _instruments()  # every metric is exposed, at 0, from the first scrape on
    stages().flush()  # this process's stage counts, now
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return list(registry.collect())
    return list(REGISTRY.collect())


def render() -> tuple[bytes, str]:
    """The exposition text (every worker's values, under `python -m serving`), content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    families = collected()
    for derive in list(_derived.values()):
        families += derive(families)
    return generate_latest(SimpleNamespace(collect=lambda: families)), CONTENT_TYPE_LATEST


class Recorder:
    """Counts answered requests: status, latency, rows and predicted classes per endpoint.

    Each label set's child is bound once: `.labels(...)` on every request costs more than `inc`.
    """

    def __init__(self) -> None:
        self._instruments = _instruments()
        self.stages = stages().record  # (endpoint, version, durations in STAGES order)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}
        self._rows: dict[str, Any] = {}

    def record(
        self,
        endpoint: str,
        method: str,
        status: int,
        seconds: float,
        rows: int | None = None,
        predicted: Any = None,
    ) -> None:
        key = (endpoint, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._instruments.requests.labels(
                endpoint, method, str(status)
            )
        counter.inc()
        latency = self._latencies.get(endpoint)
        if latency is None:
            latency = self._latencies[endpoint] = self._instruments.latency.labels(endpoint)
        latency.observe(seconds)
        if status != 200:
            return
        if rows:
            rows_counter = self._rows.get(endpoint)
            if rows_counter is None:
                rows_counter = self._rows[endpoint] = self._instruments.rows.labels(endpoint)
            rows_counter.inc(rows)
        if predicted is not None:
            count_predictions(endpoint, predicted)

    def out_of_domain(self, endpoint: str, counts: dict[str, int]) -> None:
        """Count the optional values a request had outside the training domain, by column."""
        for column, count in counts.items():
            self._instruments.out_of_domain.labels(endpoint, column).inc(count)


@cache
def stages() -> Stages:
    """This process's stage counts (created on first use)."""
    return Stages(lambda: _instruments().stages)
