"""gunicorn as the process manager: its options, and each worker's life.

Each worker (after the fork, never the master) builds its store (reading what the agent stages),
loads the staged version, builds the app, and starts its watcher (serving.watcher) once gunicorn
has finished initialising it. A worker exits without interpreter teardown (see `_worker_exit`).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from serving import metrics
from serving.config import Settings
from serving.server.agent_process import AgentProcess

log = logging.getLogger("serving.server.gunicorn")


def gunicorn_options(settings: Settings, agent: AgentProcess | None = None) -> dict[str, Any]:
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        "worker_class": "gthread" if settings.threads > 1 else "sync",
        "preload_app": False,  # each worker loads its own lean app (see the module docstring)
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
        "child_exit": _child_exit,
    }
    if agent is not None:
        options.update(when_ready=agent.supervise, on_exit=agent.stop)
    return options


def _child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges stop counting."""
    metrics.mark_process_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    """End the worker without interpreter teardown, keeping its exit code.

    gunicorn calls this once the worker has finished its requests. Native libraries with static
    destructors (ONNX Runtime, and Arrow when the plain model loads) have aborted at interpreter
    teardown in a forked child ('std::system_error: Invalid argument'), turning a graceful stop
    into SIGABRT; there is nothing left to tear down that the exit does not release.
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
    """The worker's watcher starts once the worker runs (after the fork, never the master)."""
    worker.app.watcher.start()


class ServingApplication(BaseApplication):
    def __init__(self, settings: Settings, directory: Path, agent: AgentProcess | None = None):
        self.settings, self.directory, self.agent = settings, directory, agent
        self.watcher: Any = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings, self.agent).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In each worker: the store (reading what the agent stages), its first load, the app."""
        from serving.rest.app import create_app
        from serving.store import ModelStore
        from serving.watcher import ReloadFlag, Watcher

        store = ModelStore.from_settings(
            self.settings, agent_dir=self.directory if self.agent is not None else None
        )
        flag = ReloadFlag(self.directory / "reload")
        store.try_load()
        app = create_app(self.settings, store, flag)
        self.watcher = Watcher.from_settings(store, flag, self.settings)
        # What is loaded now lives as long as the worker: keep the collector from walking it.
        gc.freeze()
        return app
