"""`python -m serving`: the production server, gunicorn running `create_app` (never Flask's).

The app (and the model) loads once in the gunicorn master (`preload_app`), and the workers fork
from it and share the model's memory. SIGTERM stops accepting, lets in-flight requests finish
within `graceful_timeout`, then exits.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication

from serving import metrics
from serving.config import Settings, parse_settings
from serving.reload import set_mlflow_http_defaults
from serving.request_log import configure_logging


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        "worker_class": "gthread" if settings.threads > 1 else "sync",
        "preload_app": True,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": 5,
        "loglevel": settings.log_level,
        "accesslog": None,  # serving.access logs one JSON line per request instead
        "errorlog": "-",
        "proc_name": "serving",
        "control_socket_disable": True,  # no shared ~/.gunicorn socket between servers
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "child_exit": metrics.gunicorn_child_exit,  # a dead worker's gauges stop counting
    }


def _worker_exit(server: Any, worker: Any) -> None:
    """End the worker without interpreter teardown, keeping its exit code.

    gunicorn calls this once the worker has finished its requests. Native libraries the master
    loaded before the fork (ONNX Runtime, Arrow) abort in their static destructors in a forked
    child ('std::system_error: Invalid argument'), which turned every graceful stop into SIGABRT.
    """
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 0
    if exc is not None and not isinstance(exc, SystemExit):
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _post_worker_init(worker: Any) -> None:
    """Each worker (after the fork, never the master) runs its own model watcher: it retries
    while no model is loaded and hot-swaps the alias's new version (serving.reload)."""
    store = worker.app.callable.extensions["serving"]["store"]
    store.start_watcher()


class ServingApplication(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from serving.app import create_app

        app = create_app(self.settings)
        # Everything loaded so far (libraries, the model) is shared with the forked workers:
        # keep the collector from touching it, so the pages stay shared instead of copied.
        gc.freeze()
        return app


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    set_mlflow_http_defaults()  # a dead registry must not stall a poll for minutes
    metrics.prepare_multiprocess_dir()  # before the app (and prometheus_client) is imported
    sys.argv = sys.argv[:1]  # gunicorn must not parse our flags
    ServingApplication(settings).run()


if __name__ == "__main__":
    main()
