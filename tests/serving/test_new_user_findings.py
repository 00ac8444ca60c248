"""What a new user hit, in-process on a real model: rows counted after parsing on every
/invocations format (and --max-rows on all of them), the training domain's rule per column
kind, one rule for empty input, `?proba` alone, a 405 counted under its URL rule, a body over
the limit that names the limit, GET /, and a missing model told from an unreachable registry."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from serving.config import Settings
from serving.contract import Column, Domain, InputSpec, parse_batch
from serving.errors import ApiError
from serving.rest.app import create_app
from serving.store import ModelStore
from tests.conftest import CONTRACT_REQUEST
from tests.processes import free_port

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs", "inputs_columns", "csv")


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def invocation(frame: pd.DataFrame, kind: str) -> tuple[bytes, str]:
    records = json.loads(frame.to_json(orient="records"))
    bodies = {
        "dataframe_split": {"dataframe_split": json.loads(frame.to_json(orient="split"))},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": records},
        "inputs_columns": {"inputs": {c: frame[c].tolist() for c in frame.columns}},
    }
    if kind == "csv":
        return frame.to_csv(index=False).encode(), "text/csv"
    return json.dumps(bodies[kind]).encode(), "application/json"


@pytest.fixture
def small_client(store, registered_model):
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri, max_rows=10)
    return create_app(settings, store).test_client()


@pytest.mark.parametrize("kind", FORMATS)
def test_invocations_count_rows_not_columns_in_every_format(small_client, raw_test, kind, caplog):
    frame = raw_test.head(2).astype(object).where(raw_test.head(2).notna(), None)
    body, content_type = invocation(frame, kind)
    before = sample("serving_rows_predicted_total", endpoint="/invocations")
    with caplog.at_level(logging.INFO, logger="serving.access"):
        answer = small_client.post("/invocations", data=body, content_type=content_type)
    assert answer.status_code == 200, answer.get_json()
    assert len(answer.get_json()["predictions"]) == 2
    assert sample("serving_rows_predicted_total", endpoint="/invocations") - before == 2
    [line] = [r for r in caplog.records if r.name == "serving.access"]
    assert line.fields["rows"] == 2


@pytest.mark.parametrize("kind", FORMATS)
def test_the_row_limit_holds_for_every_invocations_format(small_client, raw_test, kind):
    frame = raw_test.head(20).astype(object).where(raw_test.head(20).notna(), None)
    body, content_type = invocation(frame, kind)
    answer = small_client.post("/invocations", data=body, content_type=content_type)
    assert answer.status_code == 413
    error = answer.get_json()  # MLflow's shape, on /invocations
    assert error["error_code"] == "RESOURCE_EXHAUSTED" and "more than 10" in error["message"]
    assert "--max-rows" in error["message"]


SPEC = InputSpec(
    (
        Column("Pclass", "long", True, Domain(values=frozenset({1, 2, 3}))),
        Column("Sex", "string", True, Domain(values=frozenset({"female", "male"}))),
        Column("Age", "double", False, Domain(minimum=0, maximum=120)),
        Column("Embarked", "string", False, Domain(values=frozenset({"C", "Q", "S"}))),
        Column("Name", "string", False),
    )
)


@pytest.mark.parametrize(
    ("column", "value"),
    [("Pclass", 7), ("Sex", "banana"), ("Sex", "Female"), ("Pclass", 0)],
)
def test_a_required_value_outside_the_training_domain_is_refused(column, value):
    body = {"Pclass": {"0": 3}, "Sex": {"0": "male"}} | {column: {"0": value}}
    with pytest.raises(ApiError) as refused:
        parse_batch(body, SPEC, 10)
    error = refused.value
    assert (error.status, error.code, error.details["column"]) == (422, "out_of_domain", column)
    assert repr(value) in error.message or str(value) in error.message
    assert error.details["domain"]["values"]  # what is allowed, named


def test_an_optional_value_outside_the_domain_is_unknown_and_counted():
    body = {
        "Pclass": {"a": 1, "b": 2},
        "Sex": {"a": "female", "b": "male"},
        "Age": {"a": -40, "b": 30},
        "Embarked": {"a": "X", "b": "S"},
        "Name": {"a": "anything at all", "b": None},
    }
    batch = parse_batch(body, SPEC, 10)
    assert [row["Age"] for row in batch.rows] == [None, 30.0]
    assert [row["Embarked"] for row in batch.rows] == [None, "S"]
    assert batch.rows[0]["Name"] == "anything at all"  # no domain: any string
    assert batch.unknown == {"Age": 1, "Embarked": 1}


def test_records_and_columns_meet_the_same_domain_rule():
    records = [{"Pclass": 3, "Sex": "male", "Age": 200.0}]
    columns = {"Pclass": [3], "Sex": ["male"], "Age": [200.0]}
    assert parse_batch(records, SPEC, 10).rows == parse_batch(columns, SPEC, 10).rows
    with pytest.raises(ApiError):
        parse_batch([{"Pclass": 4, "Sex": "male"}], SPEC, 10)


@pytest.mark.parametrize("body", [[], {}, {"Pclass": {}, "Sex": {}}, {"Pclass": [], "Sex": []}])
def test_empty_input_is_one_rule_422(client, body):
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] in ("no_rows", "missing_column")
    if body not in ({},):
        assert answer.get_json()["error"]["code"] == "no_rows"


def test_an_empty_invocation_is_the_same_error_in_mlflows_shape(client):
    answer = client.post("/invocations", json={"dataframe_records": []})
    assert answer.status_code == 400  # MLflow's status for bad input
    error = answer.get_json()
    assert error["error_code"] == "BAD_REQUEST" and "no rows" in error["message"]


def test_proba_alone_means_true(client):
    answer = client.post("/predict?proba", data=CONTRACT_REQUEST.read_bytes())
    assert answer.status_code == 200 and len(answer.get_json()["probability"]) == 2


def test_a_405_is_counted_under_its_url_rule(client):
    labels = {"endpoint": "/predict", "method": "GET", "status": "405"}
    before = sample("serving_requests_total", **labels)
    assert client.get("/predict").status_code == 405
    assert sample("serving_requests_total", **labels) - before == 1


def test_a_body_over_the_limit_names_the_limit_and_its_flag(store, registered_model):
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri,
                                 max_body_bytes=100)  # fmt: skip
    client = create_app(settings, store).test_client()
    answer = client.post("/predict?proba=true", data=CONTRACT_REQUEST.read_bytes())
    error = answer.get_json()["error"]
    assert answer.status_code == 413 and error["limit_bytes"] == 100
    assert "100 bytes" in error["message"] and "--max-body-bytes" in error["message"]


def test_the_root_names_the_service_the_model_and_links(client, registered_model):
    answer = client.get("/").get_json()
    assert answer["model"]["version"] == registered_model.version and answer["ready"]
    assert {"/docs", "/version", "/metrics", "/v2", "/drift"} <= set(answer["links"].values())


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("models:/nope@champion", "no model named 'nope'"),
        ("models:/titanic@nope", "has no alias 'nope'"),
        ("models:/titanic/99", "has no version 99"),
    ],
)
def test_a_missing_model_alias_or_version_is_not_an_unreachable_registry(
    registered_model, uri, said, caplog
):
    store = ModelStore(uri, registered_model.tracking_uri)
    with caplog.at_level(logging.INFO, logger="serving"):
        assert store.poll() == "missing"
    assert said in store.reason and "waiting for it" in store.reason
    assert "unreachable" not in store.reason
    health = store.status()["registry"]
    assert health["reachable"] and said in health["missing"]
    events = [getattr(r, "fields", {}).get("event") for r in caplog.records]
    assert "model_not_found" in events and "registry_unreachable" not in events
    assert all(r.levelno < logging.WARNING for r in caplog.records)


def test_an_unreachable_registry_is_said_as_such(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = ModelStore("models:/titanic@champion", f"http://127.0.0.1:{free_port()}")
    assert store.poll() == "unreachable"
    assert "the registry is unreachable" in store.reason
    assert store.status()["registry"]["reachable"] is False


def test_the_batch_engines_meet_the_same_domain_rule_row_by_row():
    import pyarrow as pa

    from serving.batch.columns import type_columns

    chunk = pa.table(
        {"Pclass": ["3", "7", "1"], "Sex": ["male", "female", "banana"],
         "Age": ["-40", "30", None], "Embarked": ["S", "X", "C"]},
    )  # fmt: skip
    typed = type_columns(chunk, SPEC)
    errors = typed.errors.to_pylist()
    assert errors[0] is None
    assert "Pclass: 7 is outside the model's training domain" in errors[1]
    assert "Sex: 'banana' is outside the model's training domain" in errors[2]
    assert typed.unknown == {"Age": 1, "Embarked": 1}
    assert typed.good.tolist() == [True, False, False]
    # an optional value outside the domain is scored as unknown (null), as the server does
    assert typed.columns["Age"].is_null().to_pylist() == [True, False, True]
    assert typed.columns["Embarked"].to_pylist() == ["S", None, "C"]
