"""The shadow case: this server with `--shadow`, one row at 32 connections, against the same
server without it (bench/own_goals.py's `shadow_goals`: at least SHADOW_RATE of its rate, a p99
within SHADOW_P99 of its own).

`--serve-aliases` and `--shadow` need aliases: the bench sets two of its own on the measured
version for the run (LIVE answers, SHADOW scores in shadow) and removes them after it. The shadow
then scores every row with a second copy of the same model: what a challenger as fast as the
champion costs (and it agrees on every row). The server without it has the same command but
`--shadow` (the same aliases, served and polled): the flag is all that differs. `side_by_side`
runs both at once and alternates ROUNDS runs of the case between them, each figure the median of
its rounds: on a shared 2-core machine one run of each, minutes apart, differed by more than the
goal's allowance.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.load import (
    JSON,
    MANY,
    Measurement,
    MemorySampler,
    ServerResult,
    measurement,
    progress,
    shown,
    slug,
    started,
    wrk,
)
from bench.servers import Server, venv_command

LIVE, SHADOW = "bench-live", "bench-shadow"
ROUNDS = 3  # alternated runs of each server


@contextmanager
def bench_aliases(client: Any, name: str, version: str) -> Iterator[None]:
    """LIVE and SHADOW on `version` of `name` while the block runs (an MlflowClient)."""
    for alias in (LIVE, SHADOW):
        client.set_registered_model_alias(name, alias, version)
    try:
        yield
    finally:
        for alias in (LIVE, SHADOW):
            client.delete_registered_model_alias(name, alias)


def shadowed(ours: Server, name: str, workers: int, shadow: bool = True) -> Server:
    """This server on `models:/NAME@LIVE`, with SHADOW served too and (`shadow`) scoring in
    shadow."""
    command = venv_command(
        "python", "-m", "serving", "--model-uri", f"models:/{name}@{LIVE}",
        "--serve-aliases", f"{LIVE},{SHADOW}", *(["--shadow", SHADOW] if shadow else []),
        workers=workers,
    )  # fmt: skip
    if shadow:
        return replace(ours, name=f"{ours.name} with --shadow", kind="shadow", command=command)
    return replace(ours, name=f"{ours.name}, two aliases, without --shadow",
                   kind="shadow-reference", command=command)  # fmt: skip


def median(runs: list[Measurement]) -> Measurement:
    """One measurement of alternated runs of a case: each figure the median of the runs' (the
    requests and errors summed)."""
    first = runs[0]
    values: dict[str, Any] = {}
    for field in fields(Measurement):
        if field.name in ("case", "rows", "connections"):
            values[field.name] = getattr(first, field.name)
        elif field.name in ("requests", "errors", "timeouts"):
            values[field.name] = sum(getattr(r, field.name) for r in runs)
        else:
            values[field.name] = statistics.median(getattr(r, field.name) for r in runs)
    return Measurement(**values)


def side_by_side(
    servers: list[Server],
    env: dict[str, str],
    bodies: dict[int, pd.DataFrame],
    seconds: int,
    workdir: Path,
) -> list[ServerResult]:
    """`servers` started together, each's answer to the largest of `bodies` recorded, warmed
    up, then ROUNDS runs of one row at 32 connections for `seconds` each, alternated between
    them: a result per server with the median figures."""
    import requests

    with ExitStack() as stack:
        results, runs = [], []
        for server in servers:
            body = workdir / f"{slug(server.name)}-side-1.json"
            body.write_bytes(server.body(bodies[1]))
            log = workdir / f"{slug(server.name)}-side.log"
            up = stack.enter_context(started(server, env, log, body.read_bytes()))
            sampler = MemorySampler(up.pid)
            sampler.start()
            url = up.base + server.predict_path
            result = ServerResult(server.name, server.kind, up.cold_start_s,
                                  command=shown(up.argv, up.port))  # fmt: skip
            largest = server.body(bodies[max(bodies)])
            check = requests.post(url, data=largest, headers=JSON, timeout=30)
            check.raise_for_status()
            result.labels = server.labels(check.json())
            wrk(url, body, 8, 2)  # warm-up
            results.append((result, sampler))
            runs.append((server, url, body, []))
        for _ in range(ROUNDS):
            for server, url, body, seen in runs:
                seen.append(measurement(MANY, wrk(url, body, MANY.connections, seconds)))
                progress(server.name, seen[-1])
        out = []
        for (result, sampler), (_, _, _, seen) in zip(results, runs, strict=True):
            result.measurements.append(median(seen))
            rss, pss = sampler.stop()
            result.peak_rss_mib, result.peak_pss_mib = rss / 2**20, pss / 2**20
            out.append(result)
        return out
