"""The front matrix: the HTTP servers this server could run on, each with a no-op app and with
this server's app, so that the front is chosen by measurement.

Five fronts, each with `workers` worker processes on 127.0.0.1: gunicorn's sync workers and
Granian's WSGI interface (one blocking thread per worker: the faster setting for this app) run
WSGI apps; Granian's ASGI interface and uvicorn (uvloop, httptools) run ASGI apps; Granian's RSGI
interface runs RSGI apps (Granian's on uvloop, HTTP/1 only, no websockets). The no-op apps are
bench/noop_app.py's (read the body, answer a fixed JSON body); this server's apps are its worker
factories, each building the whole app in each worker from SERVING_* variables on the baked
model directory (no registry, no agent): `serving.rest.app:create_app` (Flask with the WSGI
predict lane), `serving.server.worker:asgi_app` and `serving.server.worker:rsgi_app` (the async
front). Granian RSGI with the no-op app is the stack's ceiling.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.servers import BIN, MODEL, NOOP, Server, listen, prediction

CEILING = "Granian RSGI"  # with the no-op app: the stack's ceiling
REFERENCE_FRONT = "gunicorn sync"  # the gunicorn front's HTTP server, in the matrix

TARGETS = {
    NOOP: {
        "wsgi": "bench.noop_app:create_app",
        "asgi": "bench.noop_app:create_asgi",
        "rsgi": "bench.noop_app:create_rsgi",
    },
    MODEL: {
        "wsgi": "serving.rest.app:create_app",
        "asgi": "serving.server.worker:asgi_app",
        "rsgi": "serving.server.worker:rsgi_app",
    },
}
"""Each app's factory, by interface."""

Argv = Callable[[str, int, int], list[str]]  # (factory target, port, workers) -> command line


def gunicorn(target: str, port: int, workers: int) -> list[str]:
    """gunicorn's sync workers (its default worker class) calling the factory in each worker."""
    options = f"--workers {workers} --bind 127.0.0.1:{port}".split()
    return [str(BIN / "gunicorn"), *options, f"{target}()"]


def granian(interface: str, *extra: str) -> Argv:
    """Granian with `interface` (and `extra` options) calling the factory in each worker."""

    def argv(target: str, port: int, workers: int) -> list[str]:
        options = f"--interface {interface} --factory --workers {workers}".split()
        rest = ["--loop", "uvloop", "--http", "1", "--no-ws"]
        return [str(BIN / "granian"), *options, *extra, *rest, *listen(port), target]

    return argv


def uvicorn(target: str, port: int, workers: int) -> list[str]:
    """uvicorn on uvloop and httptools, no access log, calling the factory in each worker."""
    options = f"--factory --workers {workers} --loop uvloop --http httptools --no-access-log"
    return [str(BIN / "uvicorn"), *options.split(), *listen(port), target]


@dataclass(frozen=True)
class Front:
    """One HTTP server and interface: its name, the interface its apps speak, its command."""

    name: str
    interface: str  # "wsgi", "asgi" or "rsgi": which of TARGETS' factories it runs
    argv: Argv


FRONTS = [
    Front(REFERENCE_FRONT, "wsgi", gunicorn),
    Front("Granian WSGI (1 thread)", "wsgi", granian("wsgi", "--blocking-threads", "1")),
    Front("Granian ASGI", "asgi", granian("asgi")),
    Front(CEILING, "rsgi", granian("rsgi")),
    Front("uvicorn", "asgi", uvicorn),
]


def model_env(model_dir: Path, workdir: Path) -> Callable[[int], dict[str, str]]:
    """What this server's factories read: the baked model and, at each start, a fresh metrics
    directory shared by the workers."""

    def env(port: int) -> dict[str, str]:
        metrics = tempfile.mkdtemp(prefix=f"metrics-{port}-", dir=workdir)
        return {"SERVING_MODEL_URI": str(model_dir), "PROMETHEUS_MULTIPROC_DIR": metrics}

    return env


def matrix(model_dir: Path, workdir: Path, workers: int) -> list[Server]:
    """Every front with the no-op app, then every front with this server's app on `model_dir`."""
    rows = []
    for app in (NOOP, MODEL):
        for front in FRONTS:
            target = TARGETS[app][front.interface]
            rows.append(
                Server(
                    name=f"{front.name}, {app}",
                    kind="front",
                    command=lambda port, front=front, target=target: front.argv(
                        target, port, workers
                    ),
                    labels=prediction if app == MODEL else lambda answer: [],
                    env=model_env(model_dir, workdir) if app == MODEL else lambda port: {},
                    front=front.name,
                    app=app,
                )
            )
    return rows
