"""The slow-client case: a server driven at 32 connections while 1,000 stalled connections are
held open (bench/stall.py), and a probe checks that it still answers.

wrk counts a timeout only for an answer that comes late: requests a blocked server never answers
are not counted at all. So while wrk runs, a `Probe` sends one request at a time on a fresh
connection, at most ten a second (too few to weigh on the figures), and counts how many were
answered, timed out or failed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests

from bench.load import JSON, MANY, Case, Measurement, measurement, progress, slug, started, wrk
from bench.servers import Server
from bench.stall import Held, Stalled


@dataclass
class Probed:
    """What the probe saw: requests sent, answered 200, timed out, failed otherwise."""

    sent: int = 0
    answered: int = 0
    timeouts: int = 0
    failed: int = 0


@dataclass
class SlowClients:
    """The slow-client case on one server: wrk at 32 connections while `held.asked` stalled
    connections are held open, topped up; `held` says how many really were; `probe` what the
    probe saw meanwhile."""

    server: str
    kind: str
    held: Held
    wrk_timeout_s: int
    measurement: Measurement
    probe: Probed = field(default_factory=Probed)


class Probe(threading.Thread):
    """POSTs `body` to `url` one request at a time, each on a fresh connection, every
    `interval` seconds at most, until stopped; counts what happened in `seen`."""

    def __init__(self, url: str, body: bytes, timeout: float, interval: float = 0.1) -> None:
        super().__init__(name="probe", daemon=True)
        self.url, self.body, self.timeout, self.interval = url, body, timeout, interval
        self.seen = Probed()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            began = time.monotonic()
            self.seen.sent += 1
            try:
                answer = requests.post(self.url, data=self.body, headers=JSON, timeout=self.timeout)
            except requests.Timeout:
                self.seen.timeouts += 1
            except requests.RequestException:
                self.seen.failed += 1
            else:
                if answer.status_code == 200:
                    self.seen.answered += 1
                else:
                    self.seen.failed += 1
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> Probed:
        """Stop after the request in flight; what the probe saw."""
        self._stop_event.set()
        self.join()
        return self.seen


def slow_clients(
    server: Server,
    env: dict[str, str],
    frame: pd.DataFrame,
    seconds: int,
    workdir: Path,
    stalled: int = 1000,
    wrk_timeout: int = 2,
) -> SlowClients:
    """Start `server`, warm it up, open `stalled` connections that stall (half mid-head, half
    mid-body, kept topped up), then run the 1-row, 32-connection case for `seconds` beside the
    probe, wrk and the probe giving up on a request after `wrk_timeout` seconds; close the
    stalled set before the server stops."""
    body = workdir / f"{slug(server.name)}-slow.json"
    body.write_bytes(server.body(frame))
    payload = body.read_bytes()
    case = Case(f"{MANY.name}, {stalled:,} stalled", MANY.rows, MANY.connections)
    with started(server, env, workdir / f"{slug(server.name)}-slow.log", payload) as up:
        url = up.base + server.predict_path
        wrk(url, body, 8, 2)  # warm-up
        with Stalled(("127.0.0.1", up.port), stalled, payload, server.predict_path) as held:
            held.wait_open(timeout=120)
            held.watch()
            probe = Probe(url, payload, wrk_timeout)
            probe.start()
            summary = wrk(url, body, case.connections, seconds, timeout=wrk_timeout)
            probed = probe.stop()
            seen = held.seen()
    result = SlowClients(
        server.name, server.kind, seen, wrk_timeout, measurement(case, summary), probed
    )
    progress(
        server.name,
        result.measurement,
        f", {seen.open_min}..{seen.open_max} stalled open, probe {probed.answered} of "
        f"{probed.sent} answered",
    )
    return result
