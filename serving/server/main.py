"""`python -m serving`: the production server (never Flask's development server).

Three kinds of process, split by what they need:

- the master: binds the socket, supervises the rest; it loads no app and no model;
- the model agent (serving.registry.agent, started and restarted by the master): the one process
  that imports MLflow; it resolves the alias and stages each version on local disk;
- the workers: each builds the app and loads the staged version from disk (the ONNX fast path:
  no MLflow, no scikit-learn, no pandas), and follows what the agent stages next.

A model directory given as the model URI (a baked image) needs no agent: the workers load it.
SIGTERM stops accepting, lets in-flight requests finish within `graceful_timeout`, then exits.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from serving import metrics
from serving.config import parse_settings
from serving.model.files import is_model_dir
from serving.registry.staging import set_mlflow_http_defaults
from serving.request_log import configure_logging
from serving.server.agent_process import AgentProcess
from serving.server.gunicorn import ServingApplication
from serving.tempdirs import owned_temp_dir
from serving.watcher import ReloadFlag


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
