"""`python -m serving`: the production server, gunicorn running `create_app` (never Flask's).

Three kinds of process, split by what they need:

- gunicorn's master: binds the socket, supervises the rest; it loads no app and no model;
- the model agent (serving.agent, started and restarted by the master): the one process that
  imports MLflow; it resolves the alias and stages each version on local disk;
- the workers: each builds the app and loads the staged version from disk (the ONNX fast path:
  no MLflow, no scikit-learn, no pandas), and follows what the agent stages next.

A model directory given as the model URI (a baked image) needs no agent: the workers load it.
SIGTERM stops accepting, lets in-flight requests finish within `graceful_timeout`, then exits.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from serving import metrics
from serving.config import Settings, parse_settings
from serving.model_files import is_model_dir
from serving.reload import Backoff, ReloadFlag, set_mlflow_http_defaults
from serving.request_log import configure_logging
from serving.tempdirs import owned_temp_dir

log = logging.getLogger("serving.server")


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
        "child_exit": metrics.gunicorn_child_exit,  # a dead worker's gauges stop counting
    }
    if agent is not None:
        options.update(when_ready=agent.supervise, on_exit=agent.stop)
    return options


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
    """Each worker (after the fork, never the master) runs its own model watcher: it retries
    while no model is loaded and hot-swaps the alias's new version (serving.reload)."""
    store = worker.app.callable.extensions["serving"]["store"]
    store.start_watcher()


class AgentProcess:
    """The model agent (`python -m serving.agent`), run and restarted by gunicorn's master."""

    def __init__(self, settings: Settings, directory: Path):
        self.settings, self.directory = settings, directory
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()

    def command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable, "-m", "serving.agent",
            "--model-uri", s.model_uri,
            "--tracking-uri", s.tracking_uri,
            "--directory", str(self.directory),
            "--reload-interval", str(s.reload_interval),
            "--retry-seconds", str(s.load_retry_seconds),
            "--retry-max-seconds", str(s.load_retry_max_seconds),
            "--log-level", s.log_level,
            "--parent", str(os.getpid()),
        ]  # fmt: skip

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)

    def supervise(self, server: Any = None) -> None:
        """A master thread that restarts the agent if it dies (gunicorn's `when_ready`)."""

        def watch() -> None:
            backoff = Backoff(1.0, 30.0)
            while not self._stopping.wait(0.5):
                process = self.process
                if process is None or process.poll() is None:
                    continue
                delay = backoff.next()
                log.warning("the model agent exited (%s); restarting in %.0f s",
                            process.returncode, delay)  # fmt: skip
                if not self._stopping.wait(delay):
                    self.start()

        threading.Thread(target=watch, name="agent-supervisor", daemon=True).start()

    def stop(self, server: Any = None) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


class ServingApplication(BaseApplication):
    def __init__(self, settings: Settings, directory: Path, agent: AgentProcess | None = None):
        self.settings, self.directory, self.agent = settings, directory, agent
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings, self.agent).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In each worker: the store (reading what the agent stages), its first load, the app."""
        from serving.app import create_app
        from serving.model_store import ModelStore

        store = ModelStore.from_settings(
            self.settings, agent_dir=self.directory if self.agent is not None else None
        )
        store.reload_flag = ReloadFlag(self.directory / "reload")
        store.try_load()
        app = create_app(self.settings, store)
        # What is loaded now lives as long as the worker: keep the collector from walking it.
        gc.freeze()
        return app


def run_directory() -> Path:
    """A private directory for this server's agent state, staged models and reload flag."""
    return owned_temp_dir("serving-run-")


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    metrics.prepare_multiprocess_dir()  # before the app (and prometheus_client) is imported
    directory = run_directory()
    ReloadFlag.create(directory)
    agent = None
    if not is_model_dir(settings.model_uri):
        set_mlflow_http_defaults()  # inherited by the agent: a dead registry must not stall it
        agent = AgentProcess(settings, directory)
        agent.start()
    sys.argv = sys.argv[:1]  # gunicorn must not parse our flags
    ServingApplication(settings, directory, agent).run()


if __name__ == "__main__":
    main()
