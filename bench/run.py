"""Benchmark this server against `mlflow models serve`, MLServer and BentoML on one version.

The stack's ceiling is measured too: Flask under the same gunicorn workers answering a fixed body
(bench/noop_app.py), to show how much of it the model and the contract cost.

MLServer (1.7, its MLflow runtime) and BentoML (1.4, bench/bentoml_service.py), both with adaptive
batching and one worker per core, run from venvs of their own (.venv-mlserver, .venv-bentoml,
pinned by bench/*.lock) on the version's downloaded model directory, and are sent the same rows
in their own request formats.

Each server is started cold (start to first answer is timed), warmed up, then driven by wrk
(one thread, POST bodies from a Lua script) through the same cases; the RSS of its whole process
tree is sampled throughout. Results: a table on stdout, plus JSON, Markdown and a PNG under
bench/results/. All figures come from one run on one machine: compare them as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PEER_BIN = {"mlserver": ROOT / ".venv-mlserver" / "bin", "bentoml": ROOT / ".venv-bentoml" / "bin"}
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


@dataclass(frozen=True)
class Server:
    name: str
    kind: str  # "ours", "mlflow", "mlserver", "bentoml" or "ceiling" (no model)
    command: Callable[[int], list[str]]
    ready_path: str
    predict_path: str
    body: Callable[[pd.DataFrame], bytes]
    labels: Callable[[Any], list[int]]  # the predicted labels in a decoded answer
    env: Callable[[int], dict[str, str]] = lambda port: {}  # what the port needs, besides argv


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


@dataclass
class ServerResult:
    server: str
    kind: str
    cold_start_s: float
    peak_rss_mib: float = 0.0
    peak_pss_mib: float = 0.0
    labels: list[int] = field(default_factory=list)  # its answer to the 100-row body
    measurements: list[Measurement] = field(default_factory=list)


def listen(port: int) -> list[str]:
    """The --host/--port arguments every server here takes: loopback only."""
    return ["--host", "127.0.0.1", "--port", str(port)]


def contract_body(frame: pd.DataFrame) -> bytes:
    """The article's /predict body: pandas column-oriented JSON with string row keys."""
    return frame.to_json(orient="columns").encode()


def mlflow_body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split"))}).encode()


def v2_body(frame: pd.DataFrame) -> bytes:
    """The rows as an Open Inference (V2) request that MLServer decodes back into a DataFrame:
    one input per column, nulls as JSON null."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        kind = {"i": "INT64", "f": "FP64"}.get(values.dtype.kind, "BYTES")
        data = values.tolist() if kind == "INT64" else [None if pd.isna(v) else v for v in values]
        spec = {"name": column, "shape": [len(frame)], "datatype": kind, "data": data}
        if kind == "BYTES":
            spec["parameters"] = {"content_type": "str"}
        inputs.append(spec)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def v2_labels(answer: dict) -> list[int]:
    return [int(v) for v in answer["outputs"][0]["data"]]


def mlserver(model_dir: Path, workdir: Path, workers: int) -> Server:
    """MLServer serving `model_dir` with its MLflow runtime and adaptive batching (up to 32
    requests or 20 ms: the best of the settings tried here), `workers` inference processes."""
    root = workdir / "mlserver"
    (root / "titanic").mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(
        json.dumps({"debug": False, "host": "127.0.0.1", "parallel_workers": workers})
    )
    (root / "titanic" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "titanic",
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "max_batch_size": 32,
                "max_batch_time": 0.02,
                "parameters": {"uri": str(model_dir)},
            }
        )
    )
    return Server(
        name=f"MLServer 1.7 ({workers} workers, batching)",
        kind="mlserver",
        command=lambda port: [str(PEER_BIN["mlserver"] / "mlserver"), "start", str(root)],
        ready_path="/v2/models/titanic/ready",
        predict_path="/v2/models/titanic/infer",
        body=v2_body,
        labels=v2_labels,
        env=lambda port: {
            "MLSERVER_HTTP_PORT": str(port),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
        },
    )


def records_body(frame: pd.DataFrame) -> bytes:
    """The rows as bench/bentoml_service.py takes them: a list of records, nulls as null."""
    return json.dumps({"rows": json.loads(frame.to_json(orient="records"))}).encode()


def bentoml(model_dir: Path, workdir: Path, workers: int) -> Server:
    """BentoML serving `model_dir` through MLflow's pyfunc with adaptive batching."""
    return Server(
        name=f"BentoML 1.4 ({workers} workers, batching)",
        kind="bentoml",
        command=lambda port: [
            str(PEER_BIN["bentoml"] / "bentoml"),
            "serve",
            "bench.bentoml_service:Titanic",
            *listen(port),
        ],
        ready_path="/readyz",
        predict_path="/predict",
        body=records_body,
        labels=lambda answer: [int(v) for v in answer],
        env=lambda port: {
            "BENCH_MODEL_DIR": str(model_dir),
            "BENCH_WORKERS": str(workers),
            "BENTOML_HOME": str(workdir / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        },
    )


def servers(model_uri: str, workers: int) -> list[Server]:
    ours = Server(
        name=f"this server ({workers} workers)",
        kind="ours",
        command=lambda port: [
            str(BIN / "python"),
            "-m",
            "serving",
            *listen(port),
            "--workers",
            str(workers),
            "--model-uri",
            model_uri,
        ],
        ready_path="/ready",
        predict_path="/predict",
        body=contract_body,
        labels=lambda answer: answer["prediction"],
    )
    theirs = [
        Server(
            name=f"mlflow models serve ({n} worker{'s' if n > 1 else ''})",
            kind="mlflow",
            command=lambda port, n=n: [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                *listen(port),
                "--workers",
                str(n),
            ],
            ready_path="/ping",
            predict_path="/invocations",
            body=mlflow_body,
            labels=lambda answer: [int(v) for v in answer["predictions"]],
        )
        for n in (1, 2)
    ]
    ceiling = Server(
        name=f"no-op Flask, gunicorn ({workers} sync workers)",
        kind="ceiling",
        command=lambda port: [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "bench.noop_app:create_app()",
        ],
        ready_path="/ready",
        predict_path="/predict",
        body=contract_body,
        labels=lambda answer: [],  # no model: not compared
    )
    return [ours, *theirs, ceiling]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_memory(process: psutil.Process, pss: bool = False) -> int:
    """Summed RSS (or PSS: shared pages split between their processes) of a process tree."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_full_info().pss if pss else proc.memory_info().rss
    return total


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
            self.peak_rss = max(self.peak_rss, tree_memory(self.process))
            if samples % 10 == 0:  # PSS reads every mapping (smaps): costly, so less often
                self.peak_pss = max(self.peak_pss, tree_memory(self.process, pss=True))
            samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> tuple[int, int]:
        self._stop_event.set()
        self.join()
        return self.peak_rss, self.peak_pss


@contextmanager
def started(
    server: Server, env: dict[str, str], log: Path, probe: bytes
) -> Iterator[tuple[str, float, int]]:
    """Start `server` cold; yield (base url, seconds to its first answer, pid); stop its process
    group. Ready means its ready path says so *and* it answers `probe`: some servers report
    ready before their model has loaded."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        began = time.monotonic()
        process = subprocess.Popen(
            server.command(port),
            cwd=ROOT,
            env={**env, **server.env(port)},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server.name} exited; see {log}")
            if time.monotonic() - began > 180:
                raise TimeoutError(f"{server.name} not ready after 180 s; see {log}")
            try:
                if requests.get(base + server.ready_path, timeout=1).status_code == 200:
                    answer = requests.post(
                        base + server.predict_path,
                        data=probe,
                        headers={"Content-Type": "application/json"},
                        timeout=30,
                    )
                    if answer.status_code == 200:
                        break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        yield base, time.monotonic() - began, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(url: str, body: Path, connections: int, seconds: int) -> dict:
    """One wrk run (one thread) POSTing `body`; the summary its Lua script prints."""
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
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


def measure(
    server: Server,
    env: dict[str, str],
    bodies: dict[int, pd.DataFrame],
    seconds: int,
    workdir: Path,
) -> ServerResult:
    slug = re.sub(r"[^a-z0-9]+", "-", server.name.lower()).strip("-")
    files = {}
    for rows, frame in bodies.items():
        files[rows] = workdir / f"{slug}-{rows}.json"
        files[rows].write_bytes(server.body(frame))
    log, probe = workdir / f"{slug}.log", files[1].read_bytes()
    with started(server, env, log, probe) as (base, cold, pid):
        result = ServerResult(server=server.name, kind=server.kind, cold_start_s=cold)
        sampler = MemorySampler(pid)
        sampler.start()
        url = base + server.predict_path
        for rows in files:
            check = requests.post(
                url,
                data=files[rows].read_bytes(),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            check.raise_for_status()
            result.labels = server.labels(check.json())
        wrk(url, files[1], 8, 2)  # warm-up
        for case in CASES:
            summary = wrk(url, files[case.rows], case.connections, seconds)
            per_s = summary["requests"] / (summary["duration_us"] / 1e6)
            result.measurements.append(
                Measurement(
                    case=case.name,
                    rows=case.rows,
                    connections=case.connections,
                    requests=summary["requests"],
                    req_per_s=per_s,
                    rows_per_s=per_s * case.rows,
                    p50_ms=summary["p50_us"] / 1000,
                    p99_ms=summary["p99_us"] / 1000,
                    errors=sum(summary["errors"].values()),
                )
            )
            print(
                f"  {server.name:<32} {case.name:<18} {per_s:9.0f} req/s  "
                f"p50 {summary['p50_us'] / 1000:7.2f} ms  p99 {summary['p99_us'] / 1000:8.2f} ms",
                flush=True,
            )
        rss, pss = sampler.stop()
        result.peak_rss_mib, result.peak_pss_mib = rss / 2**20, pss / 2**20
    return result


def process_rss(pid: int) -> dict[int, int]:
    """RSS of each process in the tree rooted at `pid`."""
    root = psutil.Process(pid)
    sizes = {}
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            sizes[proc.pid] = proc.memory_info().rss
    return sizes


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
    with started(server, env, workdir / "soak.log", body.read_bytes()) as (base, _, pid):
        url = base + server.predict_path
        wrk(url, body, 32, 10)  # warm-up: let every worker build its session and caches
        settled = process_rss(pid)
        summary = wrk(url, body, 32, seconds)
        after = process_rss(pid)
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


@dataclass
class Goal:
    name: str
    peer: str
    ours: float
    baseline: float
    ratio: float
    target: str
    met: bool


def _case(result: ServerResult, name: str) -> Measurement:
    return next(m for m in result.measurements if m.case == name)


def _best(peers: list[ServerResult], case: str, attr: str, lowest: bool = False) -> float:
    values = [getattr(_case(r, case), attr) for r in peers]
    return min(values) if lowest else max(values)


def goals(ours: ServerResult, mlflow: list[ServerResult]) -> list[Goal]:
    """The issue's goals, each as a ratio against `mlflow models serve`'s best variant."""
    one, many, big = (c.name for c in CASES)
    peer = "mlflow models serve (best)"
    mine32 = _case(ours, many)
    req32, p99 = _best(mlflow, many, "req_per_s"), _best(mlflow, many, "p99_ms", lowest=True)
    rows, p50 = _best(mlflow, big, "rows_per_s"), _best(mlflow, one, "p50_ms", lowest=True)
    rss_one_worker = mlflow[0].peak_rss_mib
    cold = min(r.cold_start_s for r in mlflow)
    return [
        Goal(
            "req/s, 1 row, 32 conns",
            peer,
            mine32.req_per_s,
            req32,
            mine32.req_per_s / req32,
            ">= 20x, 0 errors",
            mine32.req_per_s >= 20 * req32 and mine32.errors == 0,
        ),
        Goal(
            "p99 ms, 1 row, 32 conns",
            peer,
            mine32.p99_ms,
            p99,
            p99 / mine32.p99_ms,
            "<= 30 ms and 1/20",
            mine32.p99_ms <= 30 and mine32.p99_ms * 20 <= p99,
        ),
        Goal(
            "rows/s, 100 rows, 8 conns",
            peer,
            _case(ours, big).rows_per_s,
            rows,
            _case(ours, big).rows_per_s / rows,
            ">= 10x",
            _case(ours, big).rows_per_s >= 10 * rows,
        ),
        Goal(
            "p50 ms, 1 row, 1 conn",
            peer,
            _case(ours, one).p50_ms,
            p50,
            p50 / _case(ours, one).p50_ms,
            "<= 1/5",
            _case(ours, one).p50_ms * 5 <= p50,
        ),
        Goal(
            "cold start s",
            peer,
            ours.cold_start_s,
            cold,
            cold / ours.cold_start_s,
            "no slower",
            ours.cold_start_s <= cold,
        ),
        Goal(
            "peak RSS MiB (all processes)",
            mlflow[0].server,
            ours.peak_rss_mib,
            rss_one_worker,
            rss_one_worker / ours.peak_rss_mib,
            "no more",
            ours.peak_rss_mib <= rss_one_worker,
        ),
        Goal(
            "peak PSS MiB (all processes)",
            mlflow[0].server,
            ours.peak_pss_mib,
            mlflow[0].peak_pss_mib,
            mlflow[0].peak_pss_mib / ours.peak_pss_mib,
            "no more",
            ours.peak_pss_mib <= mlflow[0].peak_pss_mib,
        ),
    ]


def ahead_of(ours: ServerResult, peer: ServerResult) -> list[Goal]:
    """Ahead of a batching server (MLServer) on every load case: more req/s and a lower p99 at
    32 connections, more rows/s at 100 rows, a lower p50 at one connection."""
    one, many, big = (c.name for c in CASES)
    out = []
    for name, case, attr, lower in (
        ("req/s, 1 row, 32 conns", many, "req_per_s", False),
        ("p99 ms, 1 row, 32 conns", many, "p99_ms", True),
        ("rows/s, 100 rows, 8 conns", big, "rows_per_s", False),
        ("p50 ms, 1 row, 1 conn", one, "p50_ms", True),
    ):
        mine, theirs = getattr(_case(ours, case), attr), getattr(_case(peer, case), attr)
        out.append(
            Goal(
                name,
                peer.server,
                mine,
                theirs,
                theirs / mine if lower else mine / theirs,
                "ahead",
                mine < theirs if lower else mine > theirs,
            )
        )
    return out


def _agreement(result: ServerResult, ours: ServerResult) -> str:
    if result.kind == "ceiling":
        return "n/a (no model)"
    return "yes" if result.labels == ours.labels else "NO"


def markdown(
    results: list[ServerResult], targets: list[Goal], meta: dict, endurance: Soak | None = None
) -> str:
    lines = [
        f"# Benchmark: {meta['model_uri']} (version {meta['version']})",
        "",
        f"{meta['when']}, {meta['cpus']} cores, wrk 1 thread, {meta['seconds']} s per case.",
        "",
        "| server | case | req/s | rows/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for m in r.measurements:
            lines.append(
                f"| {r.server} | {m.case} | {m.req_per_s:,.0f} | {m.rows_per_s:,.0f} | "
                f"{m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} |"
            )
    lines += [
        "",
        "| server | cold start s | peak RSS MiB (sum) | peak PSS MiB (sum) | "
        "100-row answer same as ours |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {r.server} | {r.cold_start_s:.2f} | {r.peak_rss_mib:.0f} | {r.peak_pss_mib:.0f} | "
        f"{_agreement(r, results[0])} |"
        for r in results
    ]
    ceiling = next((r for r in results if r.kind == "ceiling"), None)
    if ceiling is not None:
        many = CASES[1].name
        share = _case(results[0], many).req_per_s / _case(ceiling, many).req_per_s
        lines += [
            "",
            f"At {many}, this server answers {share:.0%} of the requests per second of the "
            f"stack's ceiling: {ceiling.server}, with no model and no parsing "
            "(bench/noop_app.py).",
        ]
    lines += [
        "",
        "| goal | against | ours | theirs | ratio | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {g.name} | {g.peer} | {g.ours:,.2f} | {g.baseline:,.2f} | {g.ratio:.1f}x | "
        f"{g.target} | {'yes' if g.met else 'NO'} |"
        for g in targets
    ]
    if endurance is not None:
        lines += [
            "",
            f"Soak: {endurance.requests:,} one-passenger requests at 32 connections, "
            f"{endurance.req_per_s:,.0f} req/s, p99 {endurance.p99_ms:.2f} ms, "
            f"{endurance.errors} errors; largest RSS change of any process after warm-up "
            f"{endurance.max_growth:.1%} (target: 0 errors, <= 5%): "
            f"{'met' if endurance.met else 'NOT met'}.",
        ]
    return "\n".join(lines) + "\n"


def chart(results: list[ServerResult], path: Path) -> None:
    """One panel per case: throughput on a log scale (the servers differ by orders of
    magnitude), each bar labelled with its figure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(CASES), figsize=(4 * len(CASES) + 2.5, 3.6), sharey=True)
    names = [r.server for r in results]
    for ax, case in zip(axes, CASES, strict=True):
        unit = "rows/s" if case.rows > 1 else "req/s"
        values = [
            _case(r, case.name).rows_per_s if case.rows > 1 else _case(r, case.name).req_per_s
            for r in results
        ]
        colors = {"ours": "#2a7", "ceiling": "#bcd"}
        bars = ax.barh(names, values, color=[colors.get(r.kind, "#999") for r in results])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 8)
        ax.set_title(case.name)
        ax.set_xlabel(f"{unit} (log scale)")
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-uri",
        default="models:/titanic@champion",
        help="registered model every server loads (an alias is pinned to its version)",
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration of each case")
    parser.add_argument("--workers", type=int, default=2, help="this server's gunicorn workers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--soak",
        type=int,
        default=100_000,
        help="requests in the soak against this server (0: no soak)",
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=sorted(PEER_BIN),
        default=[],
        help="leave this peer out (repeatable)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install -y wrk)")
    peers = {"mlserver": mlserver, "bentoml": bentoml}
    for peer in set(peers) - set(args.without):
        if not (PEER_BIN[peer] / peer).exists():
            sys.exit(f"bench: {peer} is not installed (make bench installs .venv-{peer})")

    import mlflow
    from mlflow import MlflowClient

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name, _, alias = args.model_uri.removeprefix("models:/").partition("@")
    version = client.get_model_version_by_alias(name, alias).version if alias else "?"
    pinned = f"models:/{name}/{version}" if alias else args.model_uri

    test = pd.read_csv(ROOT / "data" / "raw" / "test.csv")
    bodies = {1: test.iloc[[0]], 100: test.iloc[:100]}
    results: list[ServerResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        lineup = servers(pinned, args.workers)
        uri = env["MLFLOW_TRACKING_URI"]
        model_dir = mlflow.artifacts.download_artifacts(
            pinned, dst_path=f"{tmp}/model", tracking_uri=uri, registry_uri=uri
        )
        for peer, make_server in peers.items():
            if peer not in args.without:
                lineup.append(make_server(Path(model_dir), Path(tmp), os.cpu_count() or 1))
        for server in lineup:
            print(f"bench: {server.name}", flush=True)
            results.append(measure(server, env, bodies, args.seconds, Path(tmp)))
        endurance = None
        if args.soak:
            print(f"bench: soak, {args.soak} requests at 32 connections", flush=True)
            rate = _case(results[0], CASES[1].name).req_per_s
            endurance = soak(lineup[0], env, bodies[1], args.soak, rate, Path(tmp))
    ours, *others = results
    targets = goals(ours, [r for r in others if r.kind == "mlflow"])
    for other in others:
        if other.kind in peers:
            targets += ahead_of(ours, other)
    disagree = [r.server for r in others if r.kind != "ceiling" and r.labels != ours.labels]
    meta = {
        "model_uri": pinned,
        "version": version,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report = markdown(results, targets, meta, endurance)
    (args.out / "latest.md").write_text(report)
    (args.out / "latest.json").write_text(
        json.dumps(
            {
                **meta,
                "results": [asdict(r) for r in results],
                "goals": [asdict(g) for g in targets],
                "soak": asdict(endurance) if endurance else None,
            },
            indent=2,
        )
        + "\n"
    )
    chart(results, args.out / "latest.png")
    print("\n" + report)
    print(f"bench: wrote {args.out}/latest.{{md,json,png}}")
    if disagree:
        print(f"bench: these servers answered the 100-row request differently: {disagree}")
    met = all(g.met for g in targets) and (endurance is None or endurance.met) and not disagree
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
