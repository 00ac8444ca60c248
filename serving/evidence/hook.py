"""The one call every answered prediction makes, and the thread that does the work off its path.

`observe(model, rows, labels)` is what /predict (its lane and Flask's view), /invocations and
the V2 endpoints call once they have an answer: it appends the request to a bounded list under a
lock (a fraction of a microsecond) and returns. A daemon thread per worker takes that list once
BATCH_SHARE of `--shadow-queue` rows wait, or ROUND seconds after its last round, whichever comes
first: it bins the rows of each version into its drift window (serving.evidence.drift) and, under
`--shadow ALIAS`, has the shadow version score them (serving.evidence.shadow): under `python -m
serving`, in the shadow scorer process, to which it sends them (serving.evidence.relay: a
worker's GIL then never waits for shadow work); in the worker itself otherwise. Rounds are few
and large because each one takes the GIL from the request thread (an A/B at 32 connections:
rounds every 50 ms cost about 12% of the one-row rate; rounds per batch, within the noise). A
request whose rows would take the list past `--shadow-queue` rows is left out (counted under
shadow as `serving_shadow_dropped_total`), unless the list is empty: the response path never
waits and memory stays bounded.

`install(Evidence.from_settings(settings, stores))` (the app factory) makes it the process's;
before that, and with drift and shadow both off, `observe` returns at once. A process has one
(the last app built installs its own).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from serving import metrics
from serving.config import Settings
from serving.contract import parse_batch
from serving.evidence import drift
from serving.evidence.relay import Item, Relay
from serving.evidence.shadow import Shadow, agreement
from serving.model.loaded import LoadedModel
from serving.model.profile import Profile, read_profile
from serving.rundir import SCORER_ENV
from serving.stores import Stores
from serving.ticker import Ticker

log = logging.getLogger("serving.evidence")

ROUND = 1.0  # at most this many seconds between the evidence thread's rounds
BATCH_SHARE = 0.5  # ... and a round as soon as this share of the queue's rows waits
SLICE_ROWS = 32  # a round works through its rows this many at a time (whole requests)
PAUSE = 0.0002  # seconds between a round's slices: the request thread takes the GIL then

Queued = tuple[LoadedModel, Any, Any]  # (the model that answered, its rows, its labels)


class Evidence:
    def __init__(
        self,
        stores: Stores,
        window: int,
        shadow: str = "",
        queue_rows: int = 1000,
        workers: int = 1,
        thread: bool = True,  # False: no evidence thread; the caller runs `process` itself
        relay: Relay | None = None,  # the shadow scorer process's; None: score here
    ) -> None:
        self.stores = stores
        self.window_size = window  # the drift window across the workers
        per_worker = -(-window // max(1, workers)) if window else 0
        self.windows = drift.Windows(per_worker) if per_worker else None
        self.shadow = Shadow(stores.by_alias(shadow)) if shadow else None
        self.relay = relay if shadow else None
        self.queue_rows = queue_rows
        self.batch_rows = max(1, int(queue_rows * BATCH_SHARE))
        self._lock = threading.Lock()
        self._pending: list[Queued] = []
        self._pending_rows = 0
        self._threaded = thread
        self._ticker = Ticker("evidence", ROUND, self.process, log)
        self._profiles: dict[str, Profile | None] = {}  # by model directory

    @classmethod
    def from_settings(cls, settings: Settings, stores: Stores) -> Evidence:
        """The worker's evidence; its shadow rows go to the scorer process if the master runs
        one (SCORER_ENV names its socket)."""
        scorer = os.environ.get(SCORER_ENV)
        return cls(
            stores,
            window=settings.drift_window,
            shadow=settings.shadow,
            queue_rows=settings.shadow_queue,
            workers=settings.workers,
            relay=Relay(scorer) if scorer and settings.shadow else None,
        )

    @property
    def on(self) -> bool:
        return self.windows is not None or self.shadow is not None

    # -- the response path ---------------------------------------------------------------------

    def observe(self, model: LoadedModel, rows: Any, labels: Any) -> None:
        """Queue an answered request's rows (typed dicts, or a DataFrame) and live labels."""
        count = len(rows)
        with self._lock:
            # a request larger than the whole queue still gets in when nothing waits: the
            # memory held is at most --shadow-queue rows plus one request's (--max-rows)
            before = self._pending_rows
            dropped = bool(before) and before + count > self.queue_rows
            if not dropped:
                self._pending.append((model, rows, labels))
                self._pending_rows += count
        if dropped:
            if self.shadow is not None and self.shadow.takes(model):
                self.shadow.dropped(model.info.version, count)
            return
        if self._threaded:
            self._ticker.ensure()
            if before < self.batch_rows <= before + count:  # a batch waits: a round now
                self._ticker.wake()

    # -- the evidence thread -------------------------------------------------------------------

    def process(self) -> None:
        """One round: take what is queued; bin it and score it in shadow a slice at a time,
        pausing between slices (or send the whole round's shadow rows to the scorer process at
        its end); publish the drift."""
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        to_send: list[Item] = []
        for number, part in enumerate(slices(pending, SLICE_ROWS)):
            if number and self._threaded:
                # a slice holds the GIL for a fraction of a millisecond; the pause lets a
                # request that waits for it run before the next one (a round of 500 rows held
                # it ~4 ms in one go: +37% on the p99 of one-row requests under --shadow)
                time.sleep(PAUSE)
            to_score = self._process(part)  # empty unless there is a shadow
            if self.relay is not None:
                to_send += to_score
            elif to_score and self.shadow is not None:
                self.shadow.score(to_score)
        if to_send and self.shadow is not None and self.relay is not None:
            for version, rows, _ in self.relay.send(to_send):  # few datagrams: the kernel
                self.shadow.dropped(version, len(rows))  # queues 10 by default
        if self.windows is not None:
            self.windows.forget(self.stores.versions())
            self.windows.publish()

    def _process(self, pending: Sequence[Queued]) -> list[Item]:
        """Bin a slice's rows for drift; return what the shadow is to score of them."""
        by_version: dict[str, tuple[Profile, list[dict[str, Any]]]] = {}
        to_score: list[Item] = []
        for model, rows, labels in pending:
            typed = typed_rows(model, rows)
            version = str(model.info.version)
            if self.shadow is not None and self.shadow.takes(model):
                if typed is None:
                    self.shadow.failed(version, len(rows))
                else:
                    to_score.append((version, typed, live_labels(labels)))
            profile = self.profile(model)
            if self.windows is not None and profile is not None and typed:
                by_version.setdefault(version, (profile, []))[1].extend(typed)
        if self.windows is not None:
            for version, (profile, rows) in by_version.items():
                self.windows.add(version, profile, rows)
        return to_score

    # -- what /metrics, /drift and /version read -------------------------------------------------

    def profile(self, model: LoadedModel) -> Profile | None:
        path = model.info.path
        if path not in self._profiles:
            try:
                self._profiles[path] = read_profile(Path(path)) if path else None
            except Exception as exc:  # a model without a readable profile has no drift figures
                log.warning("no drift profile for version %s: %s", model.info.version, exc)
                self._profiles[path] = None
        return self._profiles[path]

    def profile_of(self, version: str) -> Profile | None:
        """The profile of a version a store here holds (None if none holds it)."""
        for store in self.stores:
            model = store.current
            if model is not None and str(model.info.version) == version:
                return self.profile(model)
        return None

    def drift_report(self) -> dict[str, Any]:
        """GET /drift: the window, and per served version its rows and per-column figures."""
        families = metrics.collected()
        figures = drift.report(families, self.profile_of)
        versions = []
        for store in self.stores:
            model = store.current
            version = str(model.info.version) if model is not None else None
            entry = figures.get(version or "", {"rows": 0, "columns": {}})
            # a version registered before profiles were logged has none: no drift figures
            profiled = model is not None and self.profile(model) is not None
            versions.append(
                {"alias": store.alias, "version": version, "profile": profiled, **entry}
            )
        return {"window": {"size": self.window_size, "on": self.windows is not None},
                "versions": versions}  # fmt: skip

    def shadow_status(self) -> dict[str, Any] | None:
        """/version's `shadow`: the alias, the version it runs, and the running counts."""
        if self.shadow is None:
            return None
        return {
            "alias": self.shadow.alias,
            "version": None if self.shadow.version() == "none" else self.shadow.version(),
            "queue_rows": self.queue_rows,
            "counts": agreement(metrics.collected()),
        }


Batched = TypeVar("Batched", bound=tuple)  # a request: (who, its rows, its labels)


def slices(pending: Sequence[Batched], rows: int) -> Iterator[Sequence[Batched]]:
    """The queued requests in order, in runs of whole requests of about `rows` rows each."""
    start, held = 0, 0
    for end, (_, batch, _) in enumerate(pending, 1):
        held += len(batch)
        if held >= rows:
            yield pending[start:end]
            start, held = end, 0
    if start < len(pending):
        yield pending[start:]


def typed_rows(model: LoadedModel, rows: Any) -> list[dict[str, Any]] | None:
    """The rows as the contract types them: as they are from /predict, from a DataFrame
    (/invocations) through the contract's own parser; None if they do not parse."""
    if isinstance(rows, list):
        return rows
    try:
        frame = rows.astype(object).where(rows.notna(), None)
        return parse_batch(frame.to_dict("records"), model.spec, len(frame) + 1).rows
    except Exception:
        return None


def live_labels(labels: Any) -> Sequence[Any]:
    """The live labels as a flat sequence (MLflow's pyfunc may answer a frame or an array)."""
    if isinstance(labels, list):
        return labels
    columns = getattr(labels, "columns", None)
    if columns is not None and "prediction" in columns:
        labels = labels["prediction"]
    tolist = getattr(labels, "tolist", None)
    values = tolist() if tolist is not None else list(labels)
    return [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]


_current: Evidence | None = None


def install(evidence: Evidence) -> Evidence:
    """Make `evidence` this process's, and its drift gauges part of every scrape."""
    global _current
    _current = evidence
    metrics.set_derived("drift", drift.derive(evidence.profile_of))
    return evidence


def current() -> Evidence | None:
    return _current


def observe(model: LoadedModel, rows: Any, labels: Any) -> None:
    """The hook: an answered prediction request's model, rows and labels (see the module)."""
    evidence = _current
    if evidence is not None and evidence.on:
        evidence.observe(model, rows, labels)
