"""The per-worker poller behind hot reload, and the flag that spreads an operator's reload to
every worker.

Each worker runs one `Watcher` thread, started by the server after the fork (never in the
master) and given its store and the shared flag explicitly. Under `python -m serving` the model
agent (serving.registry.agent) is the one that polls the registry; the watcher then also looks,
every tick, at the agent's state file, and loads what it staged:

- while no model is loaded it retries `ModelStore.poll` with an exponential backoff
  (`load_retry_seconds`, doubling up to `load_retry_max_seconds`), unless a model agent stages
  for it: the agent retries, and the watcher loads as soon as the agent publishes a version;
- once a model is loaded it polls every `reload_interval` seconds (0: never) for where the
  alias points, and `poll` loads, checks and swaps a moved alias in the background while the
  worker's main thread keeps answering with the model it holds;
- every `TICK` seconds it looks at the shared `ReloadFlag`: `POST /admin/reload` reloads the
  worker that received it and touches the flag, and every other worker then reloads within a
  tick, without waiting for its next poll.
"""

from __future__ import annotations

import logging
import threading
import time

from serving.config import Settings
from serving.registry.health import Backoff
from serving.rundir import ReloadFlag
from serving.store import ModelStore

log = logging.getLogger("serving.watcher")

TICK = 0.25  # seconds between looks at the reload flag


class Watcher:
    """One daemon thread per process: backoff while nothing is loaded, then poll the alias."""

    def __init__(
        self,
        store: ModelStore,
        flag: ReloadFlag | None = None,
        reload_interval: float = 30.0,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ):
        self.store, self.flag = store, flag
        self.reload_interval = reload_interval
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)

    @classmethod
    def from_settings(cls, store: ModelStore, flag: ReloadFlag, settings: Settings) -> Watcher:
        return cls(
            store,
            flag,
            reload_interval=settings.reload_interval,
            retry_seconds=settings.load_retry_seconds,
            retry_max_seconds=settings.load_retry_max_seconds,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _interval(self) -> float:
        if self.reload_interval > 0 and self.store.watches_alias:
            return self.reload_interval
        return float("inf")

    def _run(self) -> None:
        store, flag = self.store, self.flag
        backoff = Backoff(self.retry_seconds, self.retry_max_seconds)
        # Poll at once: whatever this process loaded at start may be older than where the alias
        # points now.
        next_poll = time.monotonic()
        seen = flag.stamp() if flag is not None else None
        staged = store.stamp()
        while not self._stop.wait(min(TICK, max(0.0, next_poll - time.monotonic()))):
            forced = False
            stamp = store.stamp()  # the model agent staged something: look at once
            if stamp != staged:
                staged, next_poll = stamp, time.monotonic()
            if flag is not None:
                stamp = flag.stamp()
                if stamp != seen:
                    seen = stamp
                    forced = stamp != flag.touched_here
                    if forced:
                        log.info("reload requested through the shared flag (POST /admin/reload)")
            if not forced and time.monotonic() < next_poll:
                continue
            try:
                result = store.poll(force=forced)
            except Exception:  # a bug here must not end the thread: the worker would go stale
                log.exception("model poll failed unexpectedly")
                result = "error"
            if store.current is None and store.source.reports_health:
                next_poll = float("inf")  # the agent retries; its next state is looked at once
            elif store.current is None:
                delay = backoff.next()
                log.info("no model loaded (%s); next attempt in %.1f s", result, delay)
                next_poll = time.monotonic() + delay
            else:
                backoff.reset()
                next_poll = time.monotonic() + self._interval()
