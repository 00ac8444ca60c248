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
- `model_info{name,version,inference} 1`: the model each live worker serves (max over live
  workers: during a rolling reload two versions can show 1).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable
from functools import cache
from types import SimpleNamespace
from typing import Any

log = logging.getLogger("serving.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
MAX_CLASSES = 20  # distinct `class` label values per process; more are counted as "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_lock = threading.Lock()
_classes: set[str] = set()
_shown: dict[str, Any] = {"labels": None, "serving": False, "info": None}
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
            "The model a live worker serves: 1 for its name, version and inference path",
            ["name", "version", "inference"],
            multiprocess_mode="livemax",
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
    """Set `model_info` to this process's model (1) and the one it replaced to 0.

    Called from the process that serves requests (a worker), which loads its own model: no
    other process's value can outlive a reload.
    """
    if info is not None and info is _shown["info"]:  # every request: nothing changed
        return
    labels = None
    if info is not None:
        labels = (str(info.name), str(info.version), str(getattr(info, "inference", "")))
    with _lock:
        _shown["serving"] = True
        _shown["info"] = info
        if labels == _shown["labels"]:
            return
        gauge = _instruments().model_info
        if _shown["labels"] is not None:
            gauge.labels(*_shown["labels"]).set(0)
        if labels is not None:
            gauge.labels(*labels).set(1)
        _shown["labels"] = labels


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


def render() -> tuple[bytes, str]:
    """The exposition text (every worker's values, under `python -m serving`), content type."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    _instruments()  # every metric is exposed, at 0, from the first scrape on
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class Recorder:
    """Counts answered requests: status, latency, rows and predicted classes per endpoint.

    Each label set's child is bound once: `.labels(...)` on every request costs more than `inc`.
    """

    def __init__(self) -> None:
        self._instruments = _instruments()
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
