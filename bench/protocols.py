"""This server's three ways to answer one row, side by side on one server process: POST
/predict, V2 REST (POST /v2/models/titanic/infer, MLServer's request body) and V2 gRPC
(ModelInfer, bench/grpc_load.py), case by case and protocol by protocol in turn, so that the
machine's load weighs on all three alike and their ratios hold.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pandas as pd

from bench.grpc_load import drive, infer_request, labels
from bench.load import (
    JSON,
    V2_CASES,
    Case,
    MemorySampler,
    ServerResult,
    measurement,
    progress,
    shown,
    slug,
    started,
    wrk,
)
from bench.processes import free_port
from bench.servers import Server, v2_rest, with_args
from serving.v2.grpc_service import Client

KINDS = {"/predict": "ours-v2-baseline", "V2 REST": "ours-v2-rest", "V2 gRPC": "ours-v2-grpc"}


def measure_protocols(
    ours: Server,
    env: dict[str, str],
    bodies: dict[int, pd.DataFrame],
    seconds: int,
    workdir: Path,
    cases: list[Case] = V2_CASES,
) -> list[ServerResult]:
    """`ours` started once with --grpc-port; each of `cases` run for `seconds` through /predict,
    V2 REST and V2 gRPC in turn: a result per protocol (the process's cold start and memory,
    its answer to the largest of `bodies` through that protocol)."""
    import requests

    port = free_port()
    server = with_args(ours, "--grpc-port", str(port))
    rest = v2_rest(ours)
    target = f"127.0.0.1:{port}"
    files = {}
    for name, encode in (("predict", ours.body), ("v2", rest.body)):
        for rows, frame in bodies.items():
            files[name, rows] = workdir / f"protocols-{name}-{rows}.json"
            files[name, rows].write_bytes(encode(frame))
    log = workdir / f"{slug(ours.name)}-protocols.log"
    with started(server, env, log, files["predict", 1].read_bytes()) as up:
        results = {
            protocol: ServerResult(
                f"{ours.name}, {protocol} (one process, in turn)", kind, up.cold_start_s,
                command=shown(up.argv, up.port),
            )
            for protocol, kind in KINDS.items()
        }  # fmt: skip
        sampler = MemorySampler(up.pid)
        sampler.start()
        largest = max(bodies)
        for protocol, path, body, read in (
            ("/predict", ours.predict_path, files["predict", largest], ours.labels),
            ("V2 REST", rest.predict_path, files["v2", largest], rest.labels),
        ):
            answer = requests.post(up.base + path, data=body.read_bytes(), headers=JSON, timeout=30)
            answer.raise_for_status()
            results[protocol].labels = read(answer.json())
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            answer = Client(channel).ModelInfer(infer_request(bodies[largest]), timeout=30)
            results["V2 gRPC"].labels = labels(answer)
        wrk(up.base + ours.predict_path, files["predict", 1], 8, 2)  # warm-up
        wrk(up.base + rest.predict_path, files["v2", 1], 8, 2)
        asyncio.run(drive(target, infer_request(bodies[1]), 8, 2))
        for case in cases:
            for protocol in KINDS:
                if protocol == "V2 gRPC":
                    request = infer_request(bodies[case.rows])
                    summary = asyncio.run(drive(target, request, case.connections, seconds))
                else:
                    path, name = ((ours.predict_path, "predict") if protocol == "/predict"
                                  else (rest.predict_path, "v2"))  # fmt: skip
                    summary = wrk(up.base + path, files[name, case.rows], case.connections,
                                  seconds)  # fmt: skip
                seen = measurement(case, summary)
                results[protocol].measurements.append(seen)
                progress(results[protocol].server, seen)
        rss, pss = sampler.stop()
    return [replace(r, peak_rss_mib=rss / 2**20, peak_pss_mib=pss / 2**20)
            for r in results.values()]  # fmt: skip
