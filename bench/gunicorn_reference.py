"""The gunicorn front the server had before the change, on the current app and model, for
comparison only (`make bench`'s reference row; never a way to serve).

    python -m bench.gunicorn_reference --model-uri models:/titanic/1 --host 127.0.0.1 \
        --port 5001 --workers 2

The architecture of `python -m serving` before Granian replaced gunicorn (commit d61467a's
serving/server/gunicorn.py and main.py), on today's code: gunicorn's master starts and
supervises the current model agent (serving.server.agent_process), which stages versions into a
run directory (serving.rundir); each sync worker (never the master: `preload_app` is off) builds
its store on that directory, loads the staged version and serves `serving.rest.app.create_app`
(the Flask app with the WSGI predict lane in front, what the old workers served), and starts its
watcher once gunicorn has initialised it; a worker ends with `os._exit` (see `worker_exit`).
Every other setting comes from the SERVING_* variables, as for `python -m serving`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from serving import metrics
from serving.config import Settings
from serving.model.files import is_model_dir
from serving.registry.staging import set_mlflow_http_defaults
from serving.request_log import configure_logging
from serving.rundir import ReloadFlag, run_directory
from serving.server.agent_process import AgentProcess

WORKER_TIMEOUT = 30  # s: gunicorn's last resort for a stuck request (the old `timeout` setting)


def options(settings: Settings, agent: AgentProcess | None) -> dict[str, Any]:
    """gunicorn's settings, as the old server set them for sync workers."""
    chosen: dict[str, Any] = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "sync",
        "preload_app": False,  # each worker builds its own app and loads its own model
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": 5,
        "loglevel": settings.log_level,
        "accesslog": None,  # serving.access logs one JSON line per request instead
        "errorlog": "-",
        "proc_name": "gunicorn-reference",
        "control_socket_disable": True,  # no shared ~/.gunicorn socket between servers
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }
    if agent is not None:
        chosen.update(when_ready=lambda server: agent.supervise(), on_exit=lambda _: agent.stop())
    return chosen


def exit_code(exc: BaseException | None) -> int:
    """The code a worker ending on `exc` (None: none) exits with: a SystemExit's own, else 1."""
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 0
    return 1


def worker_exit(server: Any, worker: Any) -> None:
    """End the worker without interpreter teardown: ONNX Runtime's static destructors have
    aborted in a forked child at teardown, turning a graceful stop into SIGABRT."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code(sys.exc_info()[1]))


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges stop counting."""
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """The worker's watcher starts once the worker runs (after the fork, never the master)."""
    worker.app.watcher.start()


class Reference(BaseApplication):
    """gunicorn's master with `options`; `load` builds each worker's app."""

    def __init__(self, settings: Settings, run_dir: Path, agent: AgentProcess | None) -> None:
        self.settings, self.run_dir, self.agent = settings, run_dir, agent
        self.watcher: Any = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in options(self.settings, self.agent).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In each worker: the store (on what the agent stages), its first load, the app."""
        from serving.rest.app import create_app
        from serving.store import ModelStore
        from serving.watcher import Watcher

        agent_dir = self.run_dir if self.agent is not None else None
        store = ModelStore.from_settings(self.settings, agent_dir=agent_dir)
        flag = ReloadFlag(self.run_dir / "reload")
        store.try_load()
        app = create_app(self.settings, store, flag)
        self.watcher = Watcher.from_settings(store, flag, self.settings)
        gc.freeze()  # what is loaded now lives as long as the worker: keep the collector off it
        return app


def parse(argv: Sequence[str] | None) -> Settings:
    """The four flags the bench passes over the SERVING_* variables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    return Settings.from_env(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the reference until SIGTERM."""
    settings = parse(argv)
    configure_logging(settings.log_level)
    metrics.prepare_multiprocess_dir()  # before any worker imports prometheus_client
    run_dir = run_directory()
    ReloadFlag.create(run_dir)
    agent = None
    if not is_model_dir(settings.model_uri):
        set_mlflow_http_defaults()  # inherited by the agent: a dead registry must not stall it
        agent = AgentProcess(settings, run_dir)
        agent.start()
    sys.argv = sys.argv[:1]  # gunicorn must not parse our flags
    Reference(settings, run_dir, agent).run()


if __name__ == "__main__":
    main()
