"""/openapi.json describes every route of the app, and real answers match what it documents
(schemathesis validates the test client's responses against the document)."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis

from serving.config import Settings
from serving.contract import InputSpec
from serving.rest.openapi import build_document
from tests.conftest import CONTRACT_REQUEST
from training.signature import INPUT_SCHEMA


@pytest.fixture
def schema(client):
    document = client.get("/openapi.json").get_json()
    return schemathesis.openapi.from_dict(document)


def test_every_route_is_documented_with_its_methods(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"] == "3.0.3"
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/docs/assets/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # Flask's <name>: {name}
        documented = {m.upper() for m in document["paths"].get(path, {})}
        assert rule.methods - {"HEAD", "OPTIONS"} <= documented, rule.rule


def test_the_v2_infer_example_is_one_tensor_per_signature_column(client):
    document = client.get("/openapi.json").get_json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    example = infer["requestBody"]["content"]["application/json"]["example"]
    assert [i["name"] for i in example["inputs"]] == [
        c.name for c in InputSpec.from_signature_json(INPUT_SCHEMA.to_json()).columns
    ]
    answer = client.post("/v2/models/titanic/infer", json=example)
    assert answer.status_code == 200, answer.text


def test_the_predict_schema_is_the_models_signature(client):
    document = client.get("/openapi.json").get_json()
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    by_key, lists, records = body["schema"]["anyOf"]
    assert by_key["required"] == lists["required"] == ["Pclass", "Sex"]
    columns = by_key["properties"]
    assert set(columns) == {
        c.name for c in InputSpec.from_signature_json(INPUT_SCHEMA.to_json()).columns
    }
    assert columns["Pclass"]["additionalProperties"]["type"] == "integer"
    assert "nullable" not in columns["Pclass"]["additionalProperties"]
    assert (
        columns["Age"]["additionalProperties"] | {"type": "number", "nullable": True}
        == columns["Age"]["additionalProperties"]
    )
    assert records["maxItems"] == 100 and columns["Sex"]["maxProperties"] == 100


def answers(client):
    article = CONTRACT_REQUEST.read_bytes()
    json_type = {"Content-Type": "application/json"}
    yield "POST", "/predict", client.post("/predict", data=article, headers=json_type)
    yield "POST", "/predict", client.post("/predict?proba=true", data=article, headers=json_type)
    yield "POST", "/predict", client.post("/predict", json=[{"Pclass": 3, "Sex": "male"}])
    yield "POST", "/predict", client.post("/predict", json={"Pclass": {"0": 1}})  # 422
    yield "POST", "/predict", client.post("/predict", data=b"{", headers=json_type)  # 400
    yield "POST", "/predict", client.post("/predict?proba=maybe", data=article)  # 400
    yield "POST", "/predict", client.post("/predict", data=b"x", content_type="text/plain")
    yield "POST", "/predict", client.post("/predict", json=[{"Pclass": 1, "Sex": "m"}] * 101)
    records = {"dataframe_records": [{"Pclass": 3, "Sex": "male"}]}
    yield "POST", "/invocations", client.post("/invocations", json=records)
    yield (
        "POST",
        "/invocations",
        client.post("/invocations", data="Pclass,Sex\n3,male\n", content_type="text/csv"),
    )
    yield "POST", "/invocations", client.post("/invocations", json={"nothing": 1})
    for path in ("/health", "/ready", "/version", "/metrics", "/openapi.json", "/docs"):
        yield "GET", path, client.get(path)
    yield "POST", "/admin/reload", client.post("/admin/reload")
    # V2: (the documented path template, the answer to a request on it)
    for path in ("/v2", "/v2/health/live", "/v2/health/ready"):
        yield "GET", path, client.get(path)
    yield "GET", "/v2/models/{name}", client.get("/v2/models/titanic")
    yield "GET", "/v2/models/{name}", client.get("/v2/models/other")  # 404
    yield "GET", "/v2/models/{name}/ready", client.get("/v2/models/titanic/ready")
    version = client.get("/v2/models/titanic").get_json()["versions"][0]
    yield (
        "GET",
        "/v2/models/{name}/versions/{version}",
        client.get(f"/v2/models/titanic/versions/{version}"),
    )
    one = {"inputs": [{"name": "Pclass", "datatype": "INT64", "shape": [1], "data": [3]},
                      {"name": "Sex", "datatype": "BYTES", "shape": [1], "data": ["male"]}],
           "outputs": [{"name": "probability"}]}  # fmt: skip
    yield "POST", "/v2/models/{name}/infer", client.post("/v2/models/titanic/infer", json=one)
    one["inputs"][0]["datatype"] = "FP64"
    yield "POST", "/v2/models/{name}/infer", client.post("/v2/models/titanic/infer", json=one)


def test_real_answers_match_the_document(client, schema):
    statuses = set()
    for method, path, response in answers(client):
        operation = schema[path][method]
        assert str(response.status_code) in operation.definition.raw["responses"], (
            method,
            path,
            response.status_code,
            response.get_data(as_text=True)[:300],
        )
        operation.validate_response(response)  # raises if the body does not match its schema
        statuses.add(response.status_code)
    assert {200, 400, 404, 413, 415, 422} <= statuses


def test_without_a_model_the_document_still_stands():
    document = build_document(None, Settings.from_env({}))
    schema = schemathesis.openapi.from_dict(document)
    # ours (GET / lists them; /drift among them) and 9 of V2
    assert len(list(schema.get_all_operations())) == 21
    by_key = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert by_key["application/json"]["schema"]["anyOf"][0]["properties"] == {}
    json.dumps(document)  # plain JSON


def test_the_docs_page_loads_only_our_assets(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/docs/assets/{asset}" in page
        answer = client.get(f"/docs/assets/{asset}")
        assert answer.status_code == 200 and len(answer.data) > 10_000
    assert client.get("/docs/assets/index.html").status_code == 404  # only the listed assets
    assert client.get("/docs/assets/..%2f..%2f__init__.py").status_code == 404
