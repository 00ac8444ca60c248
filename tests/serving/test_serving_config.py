"""Settings: defaults, SERVING_* env vars, flags over env, and refusals of bad values."""

from __future__ import annotations

import importlib.util

import pytest

from serving.config import REPO_ROOT, Settings, parse_settings
from serving.server.granian import granian_server


def test_defaults_bind_localhost_and_use_the_embedded_store():
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.model_uri) == (
        "127.0.0.1", 5000, "models:/titanic@champion"
    )  # fmt: skip
    assert settings.tracking_uri == f"sqlite:///{REPO_ROOT / 'mlflow.db'}"
    assert (settings.max_body_bytes, settings.max_rows) == (4 * 1024 * 1024, 10_000)


def test_env_then_flags():
    env = {"SERVING_PORT": "6000", "SERVING_WORKERS": "3", "SERVING_MAX_ROWS": "50",
           "MLFLOW_TRACKING_URI": "sqlite:////tmp/x.db"}  # fmt: skip
    settings = parse_settings(["--workers", "4", "--model-uri", "models:/titanic/2"], env)
    assert (settings.port, settings.workers, settings.max_rows) == (6000, 4, 50)
    assert settings.model_uri == "models:/titanic/2"
    assert settings.tracking_uri == "sqlite:////tmp/x.db"


def test_the_http_server_takes_its_limits_from_the_settings():
    settings = Settings.from_env(
        {"SERVING_KEEP_ALIVE": "false"}, graceful_timeout=7, header_timeout=2.5,
        max_header_bytes=20_000, max_concurrency=64, workers=3,
    )  # fmt: skip
    server = granian_server(settings)
    assert (server.bind_addr, server.bind_port, server.workers) == ("127.0.0.1", 5000, 3)
    assert server.http1_settings.header_read_timeout == 2500
    assert server.http1_settings.max_buffer_size == 20_000
    assert server.http1_settings.keep_alive is False
    assert (server.backpressure, server.workers_kill_timeout) == (64, 7)
    assert server.factory and server.respawn_failed_workers  # a dead worker is replaced


def test_settings_travel_to_the_workers_as_the_variables_they_read():
    settings = Settings.from_env({}, keep_alive=False, max_rows=7, tracking_uri="sqlite:///x.db")
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize(
    "env",
    [
        {"SERVING_PORT": "http"},
        {"SERVING_PORT": "0"},
        {"SERVING_MAX_ROWS": "-1"},
        {"SERVING_KEEP_ALIVE": "maybe"},
        {"SERVING_HEADER_TIMEOUT": "0"},
        {"SERVING_MAX_HEADER_BYTES": "100"},
        {"SERVING_REQUEST_TIMEOUT": "-1"},
    ],
)
def test_bad_values_are_refused(env):
    with pytest.raises(ValueError):
        Settings.from_env(env)
    with pytest.raises(SystemExit):
        parse_settings([], env)


def test_a_grpc_port_without_grpcio_is_refused_in_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "grpc" else real(n))
    with pytest.raises(ValueError, match="grpcio"):
        Settings.from_env({"SERVING_GRPC_PORT": "5201"})
    assert Settings.from_env({}).grpc_port == 0  # off: nothing needs it
