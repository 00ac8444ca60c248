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

from bench.load import MANY, Measurement, ServerResult, measurement, progress, warmed, wrk
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
    """`servers` started together (each's answer to `bodies` recorded, warmed up), then ROUNDS
    runs of one row at 32 connections for `seconds` each, alternated between them: a result per
    server with the median figures."""
    with ExitStack() as stack:
        ups = [stack.enter_context(warmed(server, env, bodies, workdir)) for server in servers]
        runs: list[list[Measurement]] = [[] for _ in ups]
        for _ in range(ROUNDS):
            for up, seen in zip(ups, runs, strict=True):
                seen.append(measurement(MANY, wrk(up.url, up.files[1], MANY.connections, seconds)))
                progress(up.result.server, seen[-1])
        for up, seen in zip(ups, runs, strict=True):
            up.result.measurements.append(median(seen))
    return [up.result for up in ups]
