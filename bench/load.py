"""Load on one server: the cases, wrk driving them, and what a server's run records.

Each server is started cold (start to first answer is timed), warmed up, then driven by wrk (one
thread, POST bodies from bench/post.lua) through the same cases (the front matrix through fewer:
FRONT_CASES); the RSS and PSS of its whole process tree are sampled throughout. The soak drives
this server alone for 100,000+ requests and checks that no process's memory moves after warm-up.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import requests

from bench.processes import Check, free_port, running, tree_memory
from bench.servers import ROOT, Server

LUA = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    connections: int


CASES = [
    Case("1 row, 1 conn", rows=1, connections=1),
    Case("1 row, 32 conns", rows=1, connections=32),
    Case("100 rows, 8 conns", rows=100, connections=8),
]
ONE, MANY, BIG = CASES
FRONT_CASES = {"no-op": [MANY], "model": [MANY, BIG]}
"""The cases of the front matrix, by app: its rows compare fronts on throughput only."""
V2_CASES = [ONE, MANY]
"""The cases of this server's V2 endpoints (REST and gRPC): one row, beside /predict's."""


@dataclass
class Measurement:
    case: str
    rows: int
    connections: int
    requests: int
    req_per_s: float
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    timeouts: int = 0  # of the errors, answers that came after wrk's timeout


def measurement(case: Case, summary: dict) -> Measurement:
    """What wrk's `summary` of a run of `case` says."""
    per_s = summary["requests"] / (summary["duration_us"] / 1e6)
    return Measurement(
        case=case.name,
        rows=case.rows,
        connections=case.connections,
        requests=summary["requests"],
        req_per_s=per_s,
        rows_per_s=per_s * case.rows,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=sum(summary["errors"].values()),
        timeouts=summary["errors"]["timeout"],
    )


@dataclass
class ServerResult:
    server: str
    kind: str
    cold_start_s: float
    peak_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0
    labels: list[int] = field(default_factory=list)  # its answer to the 100-row body
    measurements: list[Measurement] = field(default_factory=list)
    front: str = ""  # in the front matrix: the HTTP server and interface
    app: str = ""  # in the front matrix: "no-op" or "model"
    command: str = ""  # as run, the port as $PORT, paths relative to the repo

    def case(self, name: str) -> Measurement:
        """The measurement of the case called `name`."""
        return next(m for m in self.measurements if m.case == name)


@dataclass
class Soak:
    requests: int
    errors: int
    req_per_s: float
    p99_ms: float
    rss_settled_mib: dict[int, float]
    rss_after_mib: dict[int, float]
    max_growth: float  # the largest relative RSS change of any process after warm-up
    met: bool


class MemorySampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree until stopped; keeps the peaks.

    RSS counts the pages gunicorn's workers share with their master once per process; PSS
    splits them, so it is what the processes really take from the machine.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        samples = 0
        while not self._stop_event.is_set():
            self.peak_rss = max(self.peak_rss, sum(tree_memory(self.process).values()))
            if samples % 10 == 0:  # PSS reads every mapping (smaps): costly, so less often
                pss = sum(tree_memory(self.process, pss=True).values())
                self.peak_pss = max(self.peak_pss, pss)
            samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> tuple[int, int]:
        self._stop_event.set()
        self.join()
        return self.peak_rss, self.peak_pss


JSON = {"Content-Type": "application/json"}  # the header of every POST here


def answering(server: Server, base: str, probe: bytes) -> Check:
    """The check that `server` at `base` is ready: its ready path says so *and* it answers
    `probe`, since some servers report ready before their model has loaded."""

    def check() -> str | None:
        ready = requests.get(base + server.ready_path, timeout=1)
        if ready.status_code != 200:
            return f"{server.ready_path}: HTTP {ready.status_code}"
        answer = requests.post(base + server.predict_path, data=probe, headers=JSON, timeout=30)
        if answer.status_code != 200:
            return f"{server.predict_path}: HTTP {answer.status_code}"
        return None

    return check


@dataclass(frozen=True)
class Started:
    """A started server: where it listens, seconds from start to its first answer, the pid of
    its leader, its command line."""

    base: str
    port: int
    cold_start_s: float
    pid: int
    argv: list[str]


@contextmanager
def started(server: Server, env: dict[str, str], log: Path, probe: bytes) -> Iterator[Started]:
    """Start `server` cold and wait for its first answer to `probe`; yield it; stop its process
    group."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = server.command(port)
    began = time.monotonic()
    with running(
        argv,
        base + server.ready_path,
        log=log,
        env={**env, **server.env(port)},
        cwd=ROOT,
        timeout=180,
        check=answering(server, base, probe),
        interval=0.05,
    ) as process:
        yield Started(base, port, time.monotonic() - began, process.pid, argv)


def wrk(url: str, body: Path, connections: int, seconds: int, timeout: int = 10) -> dict:
    """One wrk run (one thread) POSTing `body`, a request timed out after `timeout` seconds (wrk
    takes whole seconds); the summary its Lua script prints."""
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{timeout}s",
            "-s",
            str(LUA),
            url,
        ],
        env={**os.environ, "BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    return json.loads(match.group(1))


def shown(argv: list[str], port: int) -> str:
    """`argv` as a shell line for the report: the port as $PORT, the repo's paths relative."""
    line = shlex.join(argv).replace(f"{ROOT}/", "")
    return re.sub(rf"\b{port}\b", "$PORT", line)


def slug(name: str) -> str:
    """`name` as a file name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Warm:
    """A server `warmed` started: its result so far, its predict URL and its body files."""

    result: ServerResult
    url: str
    files: dict[int, Path]  # rows -> the request body of that many rows


@contextmanager
def warmed(
    server: Server, env: dict[str, str], bodies: dict[int, pd.DataFrame], workdir: Path
) -> Iterator[Warm]:
    """Start `server` cold, record its answer to each of `bodies` (rows -> frame; the labels
    kept are the largest's), warm it up and sample its memory until the block ends (the peaks
    then go into the result)."""
    files = {}
    for rows, frame in bodies.items():
        files[rows] = workdir / f"{slug(server.name)}-{rows}.json"
        files[rows].write_bytes(server.body(frame))
    log, probe = workdir / f"{slug(server.name)}.log", files[1].read_bytes()
    with started(server, env, log, probe) as up:
        result = ServerResult(
            server=server.name,
            kind=server.kind,
            cold_start_s=up.cold_start_s,
            front=server.front,
            app=server.app,
            command=shown(up.argv, up.port),
        )
        sampler = MemorySampler(up.pid)
        sampler.start()
        try:
            url = up.base + server.predict_path
            for rows in sorted(files):
                check = requests.post(url, data=files[rows].read_bytes(), headers=JSON, timeout=30)
                check.raise_for_status()
                result.labels = server.labels(check.json())
            wrk(url, files[1], 8, 2)  # warm-up
            yield Warm(result, url, files)
        finally:
            rss, pss = sampler.stop()
            result.peak_rss_mib, result.peak_pss_mib = rss / 2**20, pss / 2**20


def measure(
    server: Server,
    env: dict[str, str],
    bodies: dict[int, pd.DataFrame],
    seconds: int,
    workdir: Path,
    cases: list[Case] = CASES,
) -> ServerResult:
    """Start `server` cold, record its answer to each of `bodies` (rows -> frame), warm it up,
    then run each of `cases` for `seconds` while sampling its memory."""
    with warmed(server, env, bodies, workdir) as up:
        for case in cases:
            seen = measurement(case, wrk(up.url, up.files[case.rows], case.connections, seconds))
            up.result.measurements.append(seen)
            progress(server.name, seen)
    return up.result


def progress(name: str, seen: Measurement, extra: str = "") -> None:
    """One line on stdout for a measured case."""
    print(
        f"  {name:<40} {seen.case:<18} {seen.req_per_s:9.0f} req/s  p50 {seen.p50_ms:7.2f} ms  "
        f"p99 {seen.p99_ms:8.2f} ms  {seen.errors} errors{extra}",
        flush=True,
    )


def soak(
    server: Server,
    env: dict[str, str],
    frame: pd.DataFrame,
    requests_total: int,
    rate: float,
    workdir: Path,
) -> Soak:
    """At least `requests_total` one-passenger requests at 32 connections after a warm-up (wrk
    runs for as long as `rate`, the measured req/s, says that takes, plus a margin); zero errors
    and every process's memory within 5% of where it settled."""
    seconds = int(requests_total / rate * 1.15) + 5
    body = workdir / "soak.json"
    body.write_bytes(server.body(frame))
    with started(server, env, workdir / "soak.log", body.read_bytes()) as up:
        url = up.base + server.predict_path
        wrk(url, body, 32, 10)  # warm-up: let every worker build its session and caches
        settled = tree_memory(psutil.Process(up.pid))
        summary = wrk(url, body, 32, seconds)
        after = tree_memory(psutil.Process(up.pid))
    errors = sum(summary["errors"].values())
    same = set(settled) == set(after)
    growth = max(abs(after[p] - settled[p]) / settled[p] for p in settled if p in after)
    return Soak(
        requests=summary["requests"],
        errors=errors,
        req_per_s=summary["requests"] / (summary["duration_us"] / 1e6),
        p99_ms=summary["p99_us"] / 1000,
        rss_settled_mib={p: round(v / 2**20, 1) for p, v in settled.items()},
        rss_after_mib={p: round(v / 2**20, 1) for p, v in after.items()},
        max_growth=growth,
        met=errors == 0 and same and growth <= 0.05 and summary["requests"] >= requests_total,
    )
