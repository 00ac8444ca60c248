"""A daemon thread per process that does one job every few seconds, off the response path.

`Ticker(name, seconds, work).ensure()` starts it on first use, and again in a process forked
after it started (a fork keeps no threads); an exception in `work` is logged and the thread goes
on, so a bug in what it does never ends it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable


class Ticker:
    def __init__(self, name: str, seconds: float, work: Callable[[], None], log: logging.Logger):
        self.name = name
        self.seconds = seconds
        self._work = work
        self._log = log
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def ensure(self) -> None:
        """Start the thread in this process if it is not running here yet (cheap when it is)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            try:
                self._work()
            except Exception:  # a bug in the work must not end the thread
                self._log.exception("%s: a round failed", self.name)
