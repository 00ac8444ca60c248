"""`python -m serving`: the production server (never Flask's development server).

Three kinds of process, split by what they need:

- the master (Granian's, serving.server.granian): binds the socket and supervises; it loads no
  app and no model;
- the model agent (serving.registry.agent, started and restarted by the master): the one process
  that imports MLflow; it resolves the alias and stages each version on local disk;
- the workers (serving.server.worker): each builds the app and loads the staged version from
  disk (the ONNX fast path: no MLflow, no scikit-learn, no pandas), and follows what the agent
  stages next;
- under `--shadow ALIAS`, the shadow scorer (serving.server.shadow_scorer, started and restarted
  by the master): the shadow version scores the rows the workers answered there, off their GIL.

A model directory given as the model URI (a baked image) needs no agent: the workers load it.
A port already in use is reported at once, before anything starts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence

import psutil

from serving import metrics
from serving.config import Settings, parse_settings
from serving.model.files import is_model_dir
from serving.registry.staging import set_mlflow_http_defaults
from serving.request_log import configure_logging
from serving.rundir import AGENT_ENV, RUN_DIR_ENV, SCORER_ENV, ReloadFlag, run_directory
from serving.server.agent_process import AgentProcess, ScorerProcess, Supervised
from serving.server.granian import granian_server

log = logging.getLogger("serving.server.main")


def check_port(settings: Settings) -> None:
    """Exit with one line if an address cannot be bound (in use, or not ours): the HTTP port,
    and the gRPC port when it is on."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    for port in (settings.port, settings.grpc_port):
        if not port:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, port))
            except OSError as exc:
                sys.exit(f"serving: cannot listen on {settings.host}:{port}: {exc.strerror}")


def watch_workers(stop: threading.Event) -> None:
    """A master thread: a worker that exited stops counting in the live metrics gauges."""
    me = psutil.Process()
    known: set[int] = set()
    while not stop.wait(1.0):
        try:
            alive = {child.pid for child in me.children() if child.is_running()}
        except psutil.Error:
            continue
        for pid in known - alive:
            metrics.mark_process_dead(pid)
        known = alive


def _default_signals_in_child() -> None:
    """A worker forked by the master starts with SIGTERM's default action: the master's handler
    it inherits would swallow a SIGTERM that comes before the worker installs its own (a server
    stopped just as it replaces a worker), and the master would wait for a worker that never
    stops. The HTTP server installs the worker's graceful handlers once its app is built."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    check_port(settings)
    metrics.prepare_multiprocess_dir()  # before the app (and prometheus_client) is imported
    directory = run_directory()
    ReloadFlag.create(directory)
    os.environ.update(settings.as_env())  # what each worker's Settings.from_env reads
    os.environ[RUN_DIR_ENV] = str(directory)
    children: list[Supervised] = []
    if not is_model_dir(settings.model_uri):
        set_mlflow_http_defaults()  # inherited by the agent: a dead registry must not stall it
        children.append(AgentProcess(settings, directory))
        os.environ[AGENT_ENV] = "1"
    if settings.shadow:
        scorer = ScorerProcess(settings, directory)
        children.append(scorer)
        os.environ[SCORER_ENV] = str(scorer.socket)
    for child in children:  # each with the environment the workers get
        child.start()
    os.register_at_fork(after_in_child=_default_signals_in_child)
    server = granian_server(settings)
    stop = threading.Event()
    threading.Thread(target=watch_workers, args=(stop,), name="worker-watch", daemon=True).start()
    for child in children:
        server.on_startup(child.supervise)
        server.on_shutdown(child.stop)
    try:
        server.serve()
    finally:
        stop.set()
