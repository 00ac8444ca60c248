"""A daemon thread per process that does one job every few seconds, off the response path.

`Ticker(name, seconds, work).ensure()` starts it on first use, and again in a process forked
after it started (a fork keeps no threads); `wake()` has it do the job now rather than at the end
of its wait. An exception in `work` is logged and the thread goes on, so a bug in what it does
never ends it.

Each round wakes a thread that must take the GIL from the request thread: on a busy worker that
hand-off costs the request path more than the work itself does, so a ticker should wake seldom
(and be woken when work piles up) rather than poll often.
"""

from __future__ import annotations

import logging
import os
import threading
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
        self._due = threading.Event()

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

    def wake(self) -> None:
        """Do the job now (it starts at most one round early, however often this is called)."""
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait(self.seconds)
            self._due.clear()
            try:
                self._work()
            except Exception:  # a bug in the work must not end the thread
                self._log.exception("%s: a round failed", self.name)
