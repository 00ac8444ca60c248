"""Serving configuration, in one place: a typed, frozen `Settings` built from flags and env vars.

Every setting has an environment variable (`SERVING_<NAME>`) and a `python -m serving` flag; a
flag wins over its variable, a variable over the default. The registry is the one that
`MLFLOW_TRACKING_URI` names, else the embedded sqlite store at the repo root.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_URI = "models:/titanic@champion"
MIB = 1024 * 1024


def default_tracking_uri(environ: Mapping[str, str] | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else the embedded store at the repo root (not the cwd)."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    threads: int = 1
    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str = ""  # empty: resolved by default_tracking_uri() in from_env/parse
    max_body_bytes: int = 4 * MIB
    max_rows: int = 10_000
    timeout: int = 30  # seconds a worker may spend on one request before gunicorn restarts it
    graceful_timeout: int = 30  # seconds in-flight requests get to finish after SIGTERM
    load_retry_seconds: float = 1.0  # first wait before retrying a failed load (then doubling)
    load_retry_max_seconds: float = 30.0  # cap of that doubling backoff
    reload_interval: float = 30.0  # seconds between registry polls for the alias; 0: no polling
    request_timeout: float = 10.0  # seconds of model work per request before a 504; 0: no limit
    log_level: str = "info"

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} is not in 1..65535")
        for name in ("workers", "threads", "max_body_bytes", "max_rows", "timeout"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.graceful_timeout < 0 or self.load_retry_seconds <= 0:
            problems.append("graceful_timeout must be >= 0 and load_retry_seconds > 0")
        if self.load_retry_max_seconds < self.load_retry_seconds:
            problems.append("load_retry_max_seconds must be >= load_retry_seconds")
        if self.reload_interval < 0:
            problems.append(f"reload_interval must be >= 0 (0: off), got {self.reload_interval}")
        if not 0 <= self.request_timeout < self.timeout:
            problems.append(
                f"request_timeout must be >= 0 (0: off) and below timeout ({self.timeout} s, "
                f"gunicorn's last resort), got {self.request_timeout}"
            )
        if not self.model_uri:
            problems.append("model_uri is empty")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then SERVING_* variables, then explicit `overrides` (None means unset)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"SERVING_{field.name.upper()}")
            if raw not in (None, ""):
                values[field.name] = _convert(field.name, raw, type(getattr(cls, field.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values.get("tracking_uri"):
            values["tracking_uri"] = default_tracking_uri(environ)
        return cls(**values)


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"SERVING_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


HELP = {
    "host": "interface to bind; 127.0.0.1 unless you mean to expose the server",
    "port": "TCP port to listen on",
    "workers": "gunicorn worker processes (each loads the staged model from disk)",
    "threads": "threads per worker (1: gunicorn's sync worker, more: gthread)",
    "model_uri": "MLflow model URI to serve, e.g. models:/titanic@champion or models:/titanic/3",
    "tracking_uri": "MLflow tracking/registry URI (default: the embedded sqlite store at the "
    "repo root)",
    "max_body_bytes": "largest request body accepted, in bytes (larger: 413)",
    "max_rows": "most rows accepted in one request (more: 413)",
    "timeout": "seconds a worker may spend on one request before it is restarted",
    "graceful_timeout": "seconds in-flight requests get to finish after SIGTERM",
    "load_retry_seconds": "first wait before retrying a failed load while no model is loaded; "
    "it doubles on every failure",
    "load_retry_max_seconds": "cap of the doubling wait between load attempts",
    "reload_interval": "seconds between registry polls for where the model URI's alias points "
    "(a moved alias is loaded, checked and swapped in); 0 turns polling off",
    "request_timeout": "seconds a /predict or /invocations request may spend before it is "
    "answered 504 (sync workers); 0: no limit",
    "log_level": "log level: debug, info, warning, error",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve an MLflow-registered Titanic model with gunicorn: POST /predict, "
        "POST /invocations, GET /health, /ready, /version. Every flag has an env var.",
    )
    defaults = Settings.__dataclass_fields__
    for field in fields(Settings):
        env = "MLFLOW_TRACKING_URI" if field.name == "tracking_uri" else None
        env = env or f"SERVING_{field.name.upper()}"
        default = defaults[field.name].default
        shown = f" (env {env}; default {default})" if default != "" else f" (env {env})"
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            type=type(default),
            default=None,
            metavar=field.name.upper(),
            help=HELP[field.name] + shown,
        )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Flags over env vars over defaults; argparse exits with a usage message on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return Settings.from_env(environ, **vars(args))
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
