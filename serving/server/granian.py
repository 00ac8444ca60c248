"""Granian as the HTTP server and process manager: its options from the settings.

Granian parses HTTP in Rust (hyper): request heads within `--header-timeout` (431 past
`--max-header-bytes`), keep-alive, pipelining, chunked bodies, `Expect: 100-continue`, HTTP/1.0.
Each worker runs the front (serving.rest.front) through its RSGI adapter on uvloop;
`--max-concurrency` bounds the requests a worker has in progress. A worker that dies is
replaced (and loads the current version at once); SIGTERM stops accepting, lets in-flight
requests finish within `--graceful-timeout`, then stops the workers.
"""

from __future__ import annotations

from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server import Server

from serving.config import Settings

TARGET = "serving.server.worker:rsgi_app"


def log_config(level: str) -> dict[str, Any]:
    """Granian's own loggers write our JSON lines too (serving.request_log.JsonFormatter)."""
    return {
        "formatters": {"json": {"()": "serving.request_log.JsonFormatter"}},
        "handlers": {
            "json": {
                "formatter": "json",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "_granian": {"handlers": ["json"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["json"], "level": "WARNING", "propagate": False},
        },
    }


def granian_server(settings: Settings) -> Server:
    return Server(
        TARGET,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,
        factory=True,
        workers=settings.workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        backpressure=settings.max_concurrency,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_timeout * 1000)),
            keep_alive=settings.keep_alive,
            max_buffer_size=settings.max_header_bytes,
        ),
        log_level=settings.log_level,
        log_dictconfig=log_config(settings.log_level),
        respawn_failed_workers=True,
        respawn_interval=0.5,
        workers_kill_timeout=settings.graceful_timeout,
    )
