"""One worker process: what the HTTP server calls, in each worker, to build the app it serves.

`rsgi_app()` (Granian's factory target under `python -m serving`) and `asgi_app()` (for any ASGI
server) read the settings the master exported (SERVING_* variables), build the worker's stores
(one per served alias, reading what the model agent stages, or a baked directory), load the
staged versions, build the Flask app and the front around it, start a watcher per store, and
(with --grpc-port) the V2 gRPC listener on the same stores (serving.server.grpc_listener).
They run after the fork, never in the master. Started by another process manager, without
`python -m serving`'s run directory, a worker serves a model directory (`SERVING_MODEL_URI`)
or resolves the registry itself, with a reload flag of its own.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from serving.config import Settings
from serving.request_log import configure_logging
from serving.rest.app import build_app
from serving.rest.asgi import Asgi
from serving.rest.front import Front
from serving.rest.rsgi import Rsgi
from serving.rundir import AGENT_ENV, RUN_DIR_ENV, ReloadFlag
from serving.stores import Stores
from serving.tempdirs import owned_temp_dir
from serving.watcher import Watcher


def front() -> Front:
    settings = Settings.from_env()
    configure_logging(settings.log_level)  # after the HTTP server configured its own
    given = os.environ.get(RUN_DIR_ENV)
    directory = Path(given) if given else owned_temp_dir("serving-worker-")
    agent_dir = directory if os.environ.get(AGENT_ENV) == "1" else None
    stores = Stores.from_settings(settings, agent_dir=agent_dir)
    flag = ReloadFlag(directory / "reload") if given else ReloadFlag.create(directory)
    stores.try_load()
    flask_app, lane = build_app(settings, stores, flag)
    for store in stores:
        Watcher.from_settings(store, flag, settings).start()
    if settings.grpc_port:  # V2 over gRPC on the same stores; grpcio is loaded only then
        from serving.server.grpc_listener import start_grpc

        start_grpc(settings, stores, lane.recorder)
    gc.freeze()  # what is loaded now lives as long as the worker: keep the collector off it
    return Front(flask_app.wsgi_app, lane, stores, settings)


def rsgi_app() -> Rsgi:
    return Rsgi(front())


def asgi_app() -> Asgi:
    return Asgi(front())
