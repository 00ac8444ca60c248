"""The per-process daemon thread: it does its job each period, at once when woken, and outlives a
job that raises."""

from __future__ import annotations

import logging
import threading

from serving.ticker import Ticker

LONG = 3600.0  # a period no test waits for: a round that happens was woken


def test_wake_runs_the_job_without_waiting_for_the_period():
    done = threading.Event()
    ticker = Ticker("test-wake", LONG, done.set, logging.getLogger("test"))
    ticker.ensure()
    assert not done.wait(0.2)
    ticker.wake()
    assert done.wait(10)


def test_a_job_that_raises_is_logged_and_the_thread_goes_on(caplog):
    first, second = threading.Event(), threading.Event()

    def job() -> None:
        if not first.is_set():
            first.set()
            raise RuntimeError("the first round fails")
        second.set()

    ticker = Ticker("test-raise", LONG, job, logging.getLogger("test.ticker"))
    ticker.ensure()
    ticker.wake()
    assert first.wait(10)
    ticker.wake()
    assert second.wait(10)
    assert "test-raise: a round failed" in caplog.text
