"""The V2 gRPC listener of one worker (`--grpc-port`, off by default).

Each worker serves gRPC from its own stores and model, beside its HTTP server: gRPC's server
binds the port with SO_REUSEPORT (grpcio's default on Linux), so every worker listens on the
same port and the kernel spreads the connections over them, as it does for Granian's HTTP
workers. Calls run in a pool of `--threads` threads; at most `--max-concurrency` are in progress
per worker (waiting for a thread included), and a call past that is refused at once with
RESOURCE_EXHAUSTED, so a flood of calls cannot queue without bound. A call's time limit is the
client's deadline (gRPC's own). The listener stops with the worker. A worker imports this module
(and grpcio) only when --grpc-port is on.
"""

from __future__ import annotations

import atexit
import logging
from concurrent.futures import ThreadPoolExecutor

import grpc

from serving.config import Settings
from serving.metrics import Recorder
from serving.stores import Stores
from serving.v2.grpc_service import InferenceService, add_to_server

log = logging.getLogger("serving.server.grpc_listener")

STOP_GRACE = 5.0  # seconds in-flight calls get when the worker exits


def start_grpc(settings: Settings, stores: Stores, recorder: Recorder) -> grpc.Server | None:
    """Start this worker's gRPC server on --grpc-port (None when it is 0: off)."""
    if not settings.grpc_port:
        return None
    pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="serving-grpc")
    server = grpc.server(
        pool,
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", settings.max_body_bytes),
        ],
        maximum_concurrent_rpcs=settings.max_concurrency,
    )
    add_to_server(InferenceService(stores, recorder, settings.max_rows), server)
    address = f"{settings.host}:{settings.grpc_port}"
    if not server.add_insecure_port(address):
        raise RuntimeError(f"cannot listen for gRPC on {address}")
    server.start()
    atexit.register(server.stop, STOP_GRACE)
    log.info("V2 gRPC listening on %s", address)
    return server
