"""Per-stage latency, counted in the process and added to the stage histogram in bulk.

A request's stages (`STAGES`: read the body, decode it, validate it into typed rows, predict,
encode the answer) cost a lock and five list increments here; a daemon thread adds the counts to
`serving_stage_duration_seconds{stage,endpoint,version}` every `FLUSH_SECONDS` (and /metrics
before it renders), so that the hot path pays no multiprocess file writes for them.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from serving.ticker import Ticker

log = logging.getLogger("serving.metrics")

STAGES = ("read", "decode", "validate", "predict", "encode")
STAGE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)  # fmt: skip
FLUSH_SECONDS = 1.0


class Stages:
    """Per-stage durations, counted in the process and added to the stage histogram in bulk.

    `histogram` gives the histogram (created when first asked for); `record` takes a request's
    durations (seconds, in `STAGES` order; None for a stage that was not timed) under one lock;
    `flush` (the flusher thread, every FLUSH_SECONDS, and `render`) adds the counts to
    `serving_stage_duration_seconds` and starts over.
    """

    def __init__(self, histogram: Callable[[], Any]) -> None:
        self._histogram = histogram  # the stage histogram, created on first use
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[list[Any]]] = {}
        self._children: dict[tuple[str, str, str], Any] = {}
        self._ticker = Ticker("stage-metrics", FLUSH_SECONDS, self.flush, log)
        self._width = len(STAGE_BUCKETS) + 1  # the last: above every bound (+Inf)

    def record(self, endpoint: str, version: str | None, durations: Sequence[float | None]) -> None:
        key = (endpoint, str(version))
        with self._lock:
            counts = self._pending.get(key)
            if counts is None:
                counts = self._pending[key] = [[0] * self._width + [0.0] for _ in STAGES]
            for seconds, row in zip(durations, counts, strict=False):
                if seconds is not None:
                    row[bisect.bisect_left(STAGE_BUCKETS, seconds)] += 1
                    row[-1] += seconds
        self._ticker.ensure()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        histogram = self._histogram()
        for (endpoint, version), counts in pending.items():
            for stage, row in zip(STAGES, counts, strict=True):
                total = sum(row[:-1])
                if not total:
                    continue
                child = self._children.get((stage, endpoint, version))
                if child is None:
                    child = histogram.labels(stage, endpoint, version)
                    self._children[(stage, endpoint, version)] = child
                _add(child, row)


def _add(child: Any, row: list[Any]) -> None:
    """Add bucket counts and their sum to a Histogram child (its own `_buckets` and `_sum`, as
    `observe` does one at a time; one at a time if this prometheus_client has neither)."""
    buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
    if buckets is None or total is None or len(buckets) != len(row) - 1:
        for i, count in enumerate(row[:-1]):
            bound = STAGE_BUCKETS[i] if i < len(STAGE_BUCKETS) else STAGE_BUCKETS[-1] * 2
            for _ in range(count):
                child.observe(bound)
        return
    for i, count in enumerate(row[:-1]):
        if count:
            buckets[i].inc(count)
    total.inc(row[-1])
