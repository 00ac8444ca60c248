"""Serving configuration, in one place: a typed, frozen `Settings` built from flags and env vars.

Every setting has an environment variable (`SERVING_<NAME>`) and a `python -m serving` flag; a
flag wins over its variable, a variable over the default. The registry is the one that
`MLFLOW_TRACKING_URI` names, else the embedded sqlite store at the repo root. A bad value is
refused with a message that names the flag and the variable, never an internal field name.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_URI = "models:/titanic@champion"
# A registry alias URI: the one kind of model URI that can move, and whose siblings
# (--serve-aliases) are the same model's other aliases.
ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
ALIAS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIB = 1024 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def default_tracking_uri(environ: Mapping[str, str] | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else the embedded store at the repo root (not the cwd)."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    return "MLFLOW_TRACKING_URI" if field == "tracking_uri" else f"SERVING_{field.upper()}"


def named(field: str) -> str:
    """How a message names a setting: its flag and its environment variable."""
    return f"{flag_name(field)} ({env_name(field)})"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    threads: int = 4  # per worker: Flask's endpoints and large batches (the loop answers the rest)
    model_uri: str = DEFAULT_MODEL_URI
    serve_aliases: str = ""  # empty: only the model URI's own alias; else a comma-separated list
    grpc_port: int = 0  # the Open Inference Protocol over gRPC on this port; 0: off
    shadow: str = ""  # a served alias that scores every answered request in shadow; empty: off
    shadow_queue: int = 1000  # rows waiting for the evidence thread per worker; more are dropped
    drift_window: int = 2000  # recent rows per served version kept for drift; 0: off
    tracking_uri: str = ""  # empty: resolved by default_tracking_uri() in from_env/parse
    max_body_bytes: int = 4 * MIB
    max_rows: int = 10_000
    max_header_bytes: int = 64 * 1024
    max_concurrency: int = 2048  # requests in progress per worker, slow clients included
    header_timeout: float = 10.0  # seconds to send a request's head, or to stay idle between two
    body_timeout: float = 30.0  # seconds to send a request's body once its head is in
    keep_alive: bool = True
    request_timeout: float = 10.0  # seconds of model work per prediction request; 0: no limit
    graceful_timeout: int = 30  # seconds in-flight requests get to finish after SIGTERM
    load_retry_seconds: float = 1.0  # first wait before retrying a failed load (then doubling)
    load_retry_max_seconds: float = 30.0  # cap of that doubling backoff
    reload_interval: float = 30.0  # seconds between registry polls for the alias; 0: no polling
    log_level: str = "info"

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"{named('port')} must be in 1..65535, got {self.port}")
        for name in ("workers", "threads", "max_body_bytes", "max_rows", "max_concurrency"):
            if getattr(self, name) < 1:
                problems.append(f"{named(name)} must be at least 1, got {getattr(self, name)}")
        if self.max_header_bytes < 8192:
            problems.append(f"{named('max_header_bytes')} must be at least 8192")
        if not 0.001 <= self.header_timeout <= 60:
            problems.append(f"{named('header_timeout')} must be within 0.001..60 seconds")
        if self.body_timeout <= 0:
            problems.append(f"{named('body_timeout')} must be above 0")
        if not 1 <= self.graceful_timeout <= 1800:
            problems.append(f"{named('graceful_timeout')} must be within 1..1800 seconds")
        if self.load_retry_seconds <= 0:
            problems.append(f"{named('load_retry_seconds')} must be above 0")
        if self.load_retry_max_seconds < self.load_retry_seconds:
            problems.append(
                f"{named('load_retry_max_seconds')} must be at least {named('load_retry_seconds')}"
            )
        for name in ("reload_interval", "request_timeout"):
            if getattr(self, name) < 0:
                problems.append(f"{named(name)} must be >= 0 (0: off), got {getattr(self, name)}")
        if self.log_level not in LOG_LEVELS:
            problems.append(
                f"{named('log_level')} must be one of {', '.join(LOG_LEVELS)}, "
                f"got {self.log_level!r}"
            )
        if not self.model_uri:
            problems.append(f"{named('model_uri')} is empty")
        if not 0 <= self.grpc_port < 65536 or (self.grpc_port and self.grpc_port == self.port):
            problems.append(
                f"{named('grpc_port')} must be in 1..65535 and not {named('port')} (0: off), "
                f"got {self.grpc_port}"
            )
        if self.grpc_port and importlib.util.find_spec("grpc") is None:
            problems.append(
                f"{named('grpc_port')} needs grpcio, which is not installed (make setup)"
            )
        problems += self._alias_problems()
        problems += self._shadow_problems()
        if problems:
            raise ValueError("; ".join(problems))

    def _alias_problems(self) -> list[str]:
        if not self.serve_aliases.strip():
            return []
        match = ALIAS_URI.match(self.model_uri)
        if match is None:
            return [
                f"{named('serve_aliases')} needs {named('model_uri')} to name an alias "
                f"(models:/NAME@ALIAS), got {self.model_uri!r}"
            ]
        aliases = [a.strip() for a in self.serve_aliases.split(",")]
        bad = [a for a in aliases if not ALIAS_NAME.match(a)]
        if bad:
            return [f"{named('serve_aliases')}: {bad[0]!r} is not an alias name"]
        if len(set(aliases)) != len(aliases):
            return [f"{named('serve_aliases')} names an alias twice: {self.serve_aliases!r}"]
        if match["alias"] not in aliases:
            return [
                f"{named('serve_aliases')} must include {match['alias']!r}, the alias of "
                f"{named('model_uri')}, which is served by default"
            ]
        return []

    def _shadow_problems(self) -> list[str]:
        problems = []
        if self.shadow_queue < 1:
            problems.append(f"{named('shadow_queue')} must be at least 1, got {self.shadow_queue}")
        if self.drift_window < 0:
            problems.append(f"{named('drift_window')} must be >= 0 (0: off)")
        if not self.shadow:
            return problems
        aliases = [uri.rpartition("@")[2] for uri in self.model_uris[1:]]
        if self.shadow not in aliases:
            served = ", ".join(aliases) or "none besides the default"
            problems.append(
                f"{named('shadow')} must name an alias of {named('serve_aliases')} other than "
                f"the default one; got {self.shadow!r}, serving {served}"
            )
        return problems

    @property
    def model_uris(self) -> tuple[str, ...]:
        """The model URIs this server serves, the default first: the model URI, and under
        --serve-aliases the same registered model at each other alias, in the order given."""
        match = ALIAS_URI.match(self.model_uri)
        if match is None or not self.serve_aliases.strip():
            return (self.model_uri,)
        others = [a.strip() for a in self.serve_aliases.split(",") if a.strip() != match["alias"]]
        return (self.model_uri, *(f"models:/{match['name']}@{alias}" for alias in others))

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

    def as_env(self) -> dict[str, str]:
        """These settings as the SERVING_* variables `from_env` reads (for worker processes)."""
        env = {
            f"SERVING_{f.name.upper()}": str(getattr(self, f.name)).lower()
            if isinstance(getattr(self, f.name), bool)
            else str(getattr(self, f.name))
            for f in fields(self)
        }
        return env


def _convert(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        if raw.lower() in TRUE | FALSE:
            return raw.lower() in TRUE
        raise ValueError(f"SERVING_{name.upper()}={raw!r} is not true or false")
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"SERVING_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


HELP = {
    "host": "interface to bind; 127.0.0.1 unless you mean to expose the server",
    "port": "TCP port to listen on",
    "workers": "worker processes (each loads the staged model from disk)",
    "threads": "threads per worker for Flask's endpoints and large batches (one-row predictions "
    "are answered on the worker's event loop)",
    "model_uri": "MLflow model URI to serve, e.g. models:/titanic@champion or models:/titanic/3",
    "serve_aliases": "aliases of the model URI's registered model to load and serve side by "
    "side, comma-separated, e.g. champion,challenger; it must include the model URI's alias, "
    "which is served unless a request asks for another (?alias=, X-Model-Alias, or a V2 version "
    "path); empty: the model URI's alias alone",
    "grpc_port": "serve the Open Inference Protocol (V2) over gRPC on this port too, from the "
    "same workers and models; 0: off",
    "shadow": "a served alias (of --serve-aliases, not the default) that also scores every "
    "answered prediction request, off the response path, to count how often its labels agree "
    "(/metrics, /version); empty: off",
    "shadow_queue": "rows per worker waiting to be shadow-scored and binned for drift; a request "
    "that finds it full is not (counted as dropped)",
    "drift_window": "recent rows per served version (across the workers) compared with the "
    "training profile for drift (/drift, /metrics); 0: off",
    "tracking_uri": "MLflow tracking/registry URI (default: the embedded sqlite store at the "
    "repo root)",
    "max_body_bytes": "largest request body accepted, in bytes (larger: 413)",
    "max_rows": "most rows accepted in one request (more: 413)",
    "max_header_bytes": "largest request head (request line and headers), in bytes (larger: "
    "431); at least 8192",
    "max_concurrency": "requests in progress per worker, slow clients included; more wait for a "
    "free slot (gRPC calls past it are refused: RESOURCE_EXHAUSTED)",
    "header_timeout": "seconds a client may take to send a request's head; an idle keep-alive "
    "connection is closed after the same time",
    "body_timeout": "seconds a client may take to send a request's body once its head is in "
    "(slower: 408)",
    "keep_alive": "reuse connections between requests (HTTP/1.1 keep-alive)",
    "request_timeout": "seconds a /predict or /invocations request's model work may take before "
    "it is answered 504; 0: no limit",
    "graceful_timeout": "seconds in-flight requests get to finish after SIGTERM",
    "load_retry_seconds": "first wait before retrying a failed load while no model is loaded; "
    "it doubles on every failure",
    "load_retry_max_seconds": "cap of the doubling wait between load attempts",
    "reload_interval": "seconds between registry polls for where the model URI's alias points "
    "(a moved alias is loaded, checked and swapped in); 0 turns polling off",
    "log_level": "log level: " + ", ".join(LOG_LEVELS),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve an MLflow-registered Titanic model: POST /predict, POST "
        "/invocations, GET /health, /ready, /version, /metrics, /openapi.json, /docs, and "
        "POST /admin/reload (enabled by SERVING_ADMIN_TOKEN). Every flag has an env var.",
    )
    defaults = Settings.__dataclass_fields__
    for field in fields(Settings):
        default = defaults[field.name].default
        shown = f" (env {env_name(field.name)}" + (
            f"; default {default})" if default != "" else ")"
        )
        options: dict[str, Any] = {"dest": field.name, "default": None, "help": HELP[field.name]}
        if isinstance(default, bool):
            options["action"] = argparse.BooleanOptionalAction
        else:
            options.update(type=type(default), metavar=field.name.upper())
        if field.name == "log_level":
            options["choices"] = LOG_LEVELS
        options["help"] += shown
        parser.add_argument(flag_name(field.name), **options)
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
