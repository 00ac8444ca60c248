"""Settings: defaults, SERVING_* env vars, flags over env, and refusals of bad values."""

from __future__ import annotations

import pytest

from serving.config import REPO_ROOT, Settings, parse_settings
from serving.server.gunicorn import gunicorn_options


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


def test_each_gunicorn_worker_loads_its_own_app_with_a_graceful_timeout():
    options = gunicorn_options(Settings.from_env({}, graceful_timeout=7, threads=4))
    assert options["preload_app"] is False and options["bind"] == "127.0.0.1:5000"
    assert options["graceful_timeout"] == 7 and options["worker_class"] == "gthread"


@pytest.mark.parametrize(
    "env", [{"SERVING_PORT": "http"}, {"SERVING_PORT": "0"}, {"SERVING_MAX_ROWS": "-1"}]
)
def test_bad_values_are_refused(env):
    with pytest.raises(ValueError):
        Settings.from_env(env)
    with pytest.raises(SystemExit):
        parse_settings([], env)
