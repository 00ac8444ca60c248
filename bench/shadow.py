"""The shadow case: this server with `--shadow`, one row at 32 connections, beside the same server
without it in the same run (bench/own_goals.py's `shadow_goals`: at least SHADOW_RATE of its rate,
a p99 within SHADOW_P99 of its own).

`--serve-aliases` and `--shadow` need aliases: the bench sets two of its own on the measured
version for the run (LIVE answers, SHADOW scores in shadow) and removes them after it. The shadow
then scores every row with a second copy of the same model: what a challenger as fast as the
champion costs (and it agrees on every row).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from bench.servers import Server, venv_command

LIVE, SHADOW = "bench-live", "bench-shadow"


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


def shadowed(ours: Server, name: str, workers: int) -> Server:
    """This server on `models:/NAME@LIVE`, with SHADOW served too and scoring in shadow."""
    command = venv_command(
        "python", "-m", "serving", "--model-uri", f"models:/{name}@{LIVE}",
        "--serve-aliases", f"{LIVE},{SHADOW}", "--shadow", SHADOW, workers=workers,
    )  # fmt: skip
    return replace(ours, name=f"{ours.name} with --shadow", kind="shadow", command=command)
