"""What this server's POST /predict costs with no HTTP at all, and what the front's goals allow it.

    python -m bench.lane_cost MODEL_DIR BODY_FILE [--requests N]

builds a worker's own application (serving.server.worker:rsgi_app on MODEL_DIR, with its
settings from the SERVING_* variables) and answers the body N times through its RSGI entry
point, the request already in memory: the front, the predict lane, the access line, the
metrics and the evidence thread (drift), everything a worker does but the HTTP. It prints one
JSON line: the process CPU time (every thread) per request, `full_us`, and that of the bare
core alone (decode, parse, predict, encode the answer), `bare_us`; each the median of REPEATS
runs. `measure_lane` runs it in a process of its own for each body.

`lane_budget` is why it is measured. The gunicorn front (bench/gunicorn_reference.py) runs the
same app and lane as this server, so a lane made cheaper speeds both up alike: with F the
machine time per request of a front's no-op app (cores / its rate in the front matrix) and L
the lane's, this server's rate over the gunicorn front's is (F_gunicorn + L) / (F_granian + L).
That reaches `factor` only while L <= (F_gunicorn - factor * F_granian) / (factor - 1). The
lane's cost in a server is at least its cost here, with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REQUESTS = 20_000  # per body of one row; fewer for a larger body (see `measure_lane`)
REPEATS = 7


class _Scope:
    """A POST /predict request head, as Granian hands it to an RSGI app."""

    proto = "http"
    http_version = "1.1"
    method = "POST"
    scheme = "http"
    path = "/predict"
    query_string = ""
    server = "127.0.0.1:5000"
    client = "127.0.0.1:40000"

    def __init__(self, body: bytes):
        self.headers = {
            "host": "127.0.0.1:5000",
            "content-type": "application/json",
            "content-length": str(len(body)),
        }


class _Proto:
    """The body at once; the answer's status kept."""

    def __init__(self, body: bytes):
        self.body, self.status = body, 0

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status


def _per_request(run: Callable[[int], None], requests: int) -> float:
    """The median process CPU time of `run(requests)` over REPEATS runs, in µs per request."""
    run(max(1, requests // 5))  # warm up
    runs = []
    for _ in range(REPEATS):
        started = time.process_time()
        run(requests)
        runs.append((time.process_time() - started) / requests * 1e6)
    return statistics.median(runs)


def lane_cost(body: bytes, requests: int) -> dict[str, Any]:
    """The worker's app answering `body` `requests` times a run: full and bare µs per request."""
    import orjson

    from serving.contract import parse_batch
    from serving.rest.answers import predict_answer
    from serving.server.worker import rsgi_app

    app = rsgi_app()
    scope, proto = _Scope(body), _Proto(body)
    loop = asyncio.new_event_loop()

    async def answer(count: int) -> None:
        for _ in range(count):
            await app.__rsgi__(scope, proto)

    full = _per_request(lambda count: loop.run_until_complete(answer(count)), requests)
    if proto.status != 200:
        raise RuntimeError(f"the app answered {proto.status}, not 200")
    lane = app.front.lane
    model = lane.stores.default.current

    def bare(count: int) -> None:
        for _ in range(count):
            batch = parse_batch(orjson.loads(body), model.spec, lane.max_rows)
            labels, _ = model.predict(batch.rows)
            orjson.dumps(predict_answer(labels, batch.index, model.info.version))

    rows = len(parse_batch(orjson.loads(body), model.spec, lane.max_rows).rows)
    core = _per_request(bare, requests)
    return {"rows": rows, "full_us": round(full, 1), "bare_us": round(core, 1)}


def measure_lane(
    python: Path,
    model_dir: Path,
    bodies: Mapping[int, bytes],
    workdir: Path,
    cwd: Path,
    requests: int = REQUESTS,
) -> dict[int, dict[str, Any]]:
    """`python -m bench.lane_cost` on each body (by its row count; `requests` rows a run, at
    least 200 requests), each in a process of its own with a fresh metrics directory and its
    log lines in a file, as a server writes them."""
    out = {}
    for rows, body in bodies.items():
        body_file = workdir / f"lane-{rows}.json"
        body_file.write_bytes(body)
        metrics = workdir / f"lane-metrics-{rows}"
        metrics.mkdir(exist_ok=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        count = max(200, requests // rows)
        with open(workdir / f"lane-{rows}.log", "wb") as log:
            done = subprocess.run(
                [str(python), "-m", "bench.lane_cost", str(model_dir), str(body_file),
                 "--requests", str(count)],
                env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=log, check=True, text=True,
            )  # fmt: skip
        out[rows] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def machine_us(rate: float, cpus: int) -> float:
    """The machine time per request, µs, of a run at `rate` requests a second on `cpus` cores
    (the load generator's share included: it runs on the same cores)."""
    return cpus * 1e6 / rate if rate > 0 else float("inf")


def lane_budget(gunicorn_noop_us: float, granian_noop_us: float, factor: float) -> float:
    """The most the lane may cost per request, µs, for this server to answer `factor` times as
    many requests as the gunicorn front running the same lane: (F_g + L) / (F_r + L) >= factor.
    At most 0: no lane, however cheap, gets there."""
    return (gunicorn_noop_us - factor * granian_noop_us) / (factor - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("body", type=Path)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args(argv)
    os.environ["SERVING_MODEL_URI"] = str(args.model_dir)  # what the worker's settings read
    print(json.dumps(lane_cost(args.body.read_bytes(), args.requests)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
