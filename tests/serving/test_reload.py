"""Hot reload in-process, on a real sqlite registry copy: poll outcomes, refusals, the registry
gone, the admin endpoint's token rules, the backoff and MLflow HTTP defaults."""

from __future__ import annotations

import logging

import pytest

from serving.config import Settings
from serving.registry.health import Backoff
from serving.registry.staging import set_mlflow_http_defaults
from serving.rest.admin import admin_blueprint
from serving.rest.app import create_app
from serving.rundir import ReloadFlag
from serving.store import ModelStore
from tests.processes import free_port

TOKEN = "unit-admin-token-9c1e"


def test_poll_swaps_refuses_once_and_rolls_back(registry, caplog):
    uri, client, name, original, good, nowhere = registry
    client.set_registered_model_alias(name, "champion", original)
    store = ModelStore(f"models:/{name}@champion", uri)
    store.load()
    assert store.poll() == "unchanged"

    client.set_registered_model_alias(name, "champion", good)
    before = store.current
    assert store.poll() == "swapped" and store.current.info.version == good
    assert before.info.version == original  # a request holding the old model keeps it whole

    client.set_registered_model_alias(name, "champion", nowhere)
    with caplog.at_level(logging.WARNING, logger="serving"):
        assert store.poll() == "refused"
        assert store.poll() == "skipped" and store.poll() == "skipped"  # not retried each poll
    assert sum("refused version" in r.getMessage() for r in caplog.records) == 1
    assert store.current.info.version == good
    refused = store.status()["refused"]
    assert refused["version"] == nowhere and refused["reason"]
    assert store.poll(force=True) == "refused"  # an operator's reload tries it again

    client.set_registered_model_alias(name, "champion", original)  # rolling back
    assert store.poll() == "swapped" and store.current.info.version == original


def test_an_unreachable_registry_keeps_the_model_and_logs_once_per_streak(registry, caplog):
    uri, client, name, original, _, _ = registry
    client.set_registered_model_alias(name, "champion", original)
    store = ModelStore(f"models:/{name}@champion", uri)
    store.load()
    store.source.tracking_uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        pytest.MonkeyPatch.context() as patch,
        caplog.at_level(logging.INFO, logger="serving"),
    ):
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        results = [store.poll() for _ in range(4)]
        store.source.tracking_uri = uri
        assert store.poll() == "unchanged"
    assert results == ["unreachable"] * 4
    assert store.current.info.version == original
    messages = [r.getMessage() for r in caplog.records]
    assert sum("registry poll failed" in m for m in messages) == 1
    assert any("reachable again after 4 failed polls" in m for m in messages)


def test_nothing_loaded_reports_the_unreachable_registry():
    store = ModelStore("models:/titanic@champion", f"http://127.0.0.1:{free_port()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        assert store.poll() == "unreachable"
    assert store.current is None and "unreachable" in store.reason


@pytest.fixture(scope="module")
def loaded_store(registry):
    uri, client, name, original, _, _ = registry
    client.set_registered_model_alias(name, "champion", original)
    store = ModelStore(f"models:/{name}@champion", uri)
    store.load()
    return store


def test_admin_reload_is_disabled_without_a_token(loaded_store, registry):
    client = create_app(Settings.from_env({}, tracking_uri=registry[0]), loaded_store).test_client()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SERVING_ADMIN_TOKEN", raising=False)
        answer = client.post("/admin/reload")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "admin_disabled"


def test_admin_reload_token_rules(loaded_store, registry, caplog):
    from flask import Flask

    app = Flask("admin-test")
    app.register_blueprint(admin_blueprint(loaded_store, environ={"SERVING_ADMIN_TOKEN": TOKEN}))
    client = app.test_client()
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Basic x"}).status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 403
    with caplog.at_level(logging.DEBUG):
        ok = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.get_json()["result"] == "unchanged"
    assert TOKEN not in caplog.text


def test_the_reload_flag_signals_other_processes_not_its_own(tmp_path):
    flag = ReloadFlag(tmp_path / "reload")
    flag.path.write_text("0")
    other = ReloadFlag(flag.path)  # another worker's view of the same file
    before = other.stamp()
    flag.touch()
    assert other.stamp() != before and flag.stamp() == flag.touched_here


def test_backoff_doubles_to_its_cap_and_resets():
    backoff = Backoff(1, 30)
    assert [backoff.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_mlflow_http_defaults_do_not_override_the_user():
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    set_mlflow_http_defaults(env)
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"


def test_the_reload_interval_defaults_to_30_s_and_may_not_be_negative():
    with pytest.raises(ValueError):
        Settings.from_env({}, reload_interval=-1)
    assert Settings.from_env({}).reload_interval == 30
