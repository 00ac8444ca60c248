"""The app factory through Flask's test client, on a real registry (no server process)."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from serving.config import Settings
from serving.rest.app import create_app
from serving.store import ModelStore
from tests.conftest import CONTRACT_REQUEST


def test_store_resolves_the_alias_and_reads_the_version_tags(store, registered_model):
    info = store.current.info
    assert (info.name, info.version, info.alias) == ("titanic", registered_model.version,
                                                     "champion")  # fmt: skip
    assert info.resolved_uri == f"models:/titanic/{registered_model.version}"
    assert "git_commit" in info.tags and "valid_roc_auc" in info.metrics


def test_predict_rows_equals_pyfunc_and_sklearn_probabilities(store, registry_env, raw_test):
    model = mlflow.pyfunc.load_model(registry_env.champion_uri)
    frame = raw_test.head(60)
    rows = frame[store.current.spec.names].astype(object).where(frame.notna(), None)
    labels, probabilities = store.get().predict(rows.to_dict(orient="records"), proba=True)
    assert labels == model.predict(frame).tolist()
    assert probabilities == pytest.approx(model.get_raw_model().predict_proba(frame)[:, 1].tolist())
    assert store.get().predict([]) == ([], None)


def test_predict_over_the_test_client(client, registry_env):
    answer = client.post("/predict?proba=1", data=CONTRACT_REQUEST.read_bytes(),
                         headers={"X-Request-ID": "abc"})  # fmt: skip
    assert answer.status_code == 200
    body = answer.get_json()
    reference = mlflow.pyfunc.load_model(registry_env.champion_uri)
    frame = pd.DataFrame(json.loads(CONTRACT_REQUEST.read_text()))
    assert body["prediction"] == reference.predict(frame).tolist()
    assert len(body["probability"]) == 2
    assert answer.headers["X-Request-ID"] == "abc"
    assert answer.headers["X-Model-Version"] == registry_env.version


def test_nullable_integer_columns_are_served(client):
    # mlflow#5207: a null SibSp makes MLflow's own server reject the request; we answer
    answer = client.post("/predict", json={"Pclass": {"0": 3}, "Sex": {"0": "male"},
                                           "SibSp": {"0": None}})  # fmt: skip
    assert answer.status_code == 200 and answer.get_json()["prediction"] in ([0], [1])


def test_a_bug_answers_a_generic_500_and_logs_the_trace(client, caplog):
    @client.application.get("/boom")  # a genuine bug, not client input
    def boom():
        raise RuntimeError("secret internals")

    answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "internal_error"
    assert "secret" not in answer.get_data(as_text=True)
    assert any("secret internals" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


def test_no_model_means_not_ready_but_alive(registered_model):
    store = ModelStore("models:/titanic@nobody", registered_model.tracking_uri)
    assert store.try_load() is False
    client = create_app(Settings.from_env({}), store).test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and "nobody" in ready.get_json()["reason"]
    assert client.post("/predict", json={}).status_code == 503
    mlflow.set_tracking_uri(None)


def test_the_champion_is_served_by_its_onnx_fast_path(client):
    version = client.get("/version").get_json()
    assert version["inference"]["path"] == "onnx"
    assert "labels identical" in version["inference"]["detail"]
    assert client.get("/ready").get_json() == {
        "ready": True,
        "version": version["version"],
        "inference": "onnx",
    }
