"""The Open Inference Protocol (V2) over REST, in-process (Flask's test client, through the
predict lane like a real server): metadata from the signature, infer in the tensor and the
pandas (`pd`) forms equal to /predict for all of test.csv, and errors in the protocol's shape."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

INFER = "/v2/models/titanic/infer"


def tensors(frame: pd.DataFrame, metadata: dict, rows_by_one: bool = False) -> list[dict]:
    """One input per signature column, typed as the model's metadata says (nulls as null)."""
    inputs = []
    for spec in metadata["inputs"]:
        values = [None if isinstance(v, float) and math.isnan(v) else v
                  for v in frame[spec["name"]].tolist()]  # fmt: skip
        shape = [len(values), 1] if rows_by_one else [len(values)]
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape,
                       "data": values})  # fmt: skip
    return inputs


@pytest.fixture
def metadata(client) -> dict:
    answer = client.get("/v2/models/titanic")
    assert answer.status_code == 200, answer.text
    return answer.get_json()


def test_server_and_model_are_live_and_ready(client, store):
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").get_json()["extensions"] == ["binary_tensor_data"]
    ready = client.get("/v2/models/titanic/ready")
    assert ready.status_code == 200 and ready.get_json()["ready"] is True
    version = store.current.info.version
    assert client.get(f"/v2/models/titanic/versions/{version}/ready").status_code == 200


def test_metadata_lists_the_signature_columns_with_v2_datatypes(metadata, store):
    columns = store.current.spec.columns
    assert [i["name"] for i in metadata["inputs"]] == [c.name for c in columns]
    by_name = {i["name"]: i for i in metadata["inputs"]}
    assert by_name["Name"]["datatype"] == "BYTES" and by_name["Age"]["datatype"] == "FP64"
    assert by_name["Pclass"]["datatype"] in ("INT64", "INT32")
    assert all(i["shape"] == [-1] for i in metadata["inputs"])
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["versions"] == [store.current.info.version]
    assert metadata["parameters"]["aliases"] == {"champion": store.current.info.version}


@pytest.mark.parametrize("form", ["tensor", "pd"])
def test_infer_answers_as_predict_for_all_of_test_csv(client, metadata, raw_test, form):
    frame = raw_test.head(100)  # the client's --max-rows
    body = {"id": "req-1", "inputs": tensors(frame, metadata, rows_by_one=form == "pd"),
            "outputs": [{"name": "predict"}, {"name": "probability"}]}  # fmt: skip
    if form == "pd":
        body["parameters"] = {"content_type": "pd"}
    answer = client.post(INFER, json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.get_json()["outputs"]}
    predict = client.post("/predict?proba=true", json=json.loads(frame.to_json(orient="records")))
    assert outputs["predict"]["data"] == predict.get_json()["prediction"]
    assert outputs["predict"]["datatype"] == "INT64" and outputs["predict"]["shape"] == [100]
    assert outputs["probability"]["data"] == predict.get_json()["probability"]
    assert answer.get_json()["id"] == "req-1"
    assert answer.headers["X-Model-Version"] == answer.get_json()["model_version"]


def test_one_row_without_outputs_answers_predict_only(client, metadata, raw_test):
    answer = client.post(INFER, json={"inputs": tensors(raw_test.head(1), metadata)})
    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert [o["name"] for o in body["outputs"]] == ["predict"] and "id" not in body


def test_a_version_path_answers_with_that_version(client, metadata, raw_test, store):
    version = store.current.info.version
    body = {"inputs": tensors(raw_test.head(3), metadata)}
    answer = client.post(f"/v2/models/titanic/versions/{version}/infer", json=body)
    assert answer.status_code == 200 and answer.get_json()["model_version"] == version


def request_with(metadata, raw_test, change) -> dict:
    inputs = tensors(raw_test.head(2), metadata)
    change({i["name"]: i for i in inputs})
    return {"inputs": [i for i in inputs if i.get("name")]}


def drop(name):
    return lambda inputs: inputs[name].clear()


@pytest.mark.parametrize(
    ("change", "status", "named"),
    [
        (lambda i: i["Age"].update(datatype="BYTES"), 400, "Age"),
        (lambda i: i["Pclass"].update(data=[1]), 400, "Pclass"),
        (lambda i: i["Pclass"].update(shape=[2, 2]), 400, "Pclass"),
        (lambda i: i["Sex"].update(data=["male", None]), 400, "Sex"),
        (lambda i: i["Sex"].update(data=["male", 3]), 400, "Sex"),
        (lambda i: i["Pclass"].update(data=[1, 7]), 400, "Pclass"),
        (drop("Pclass"), 400, "Pclass"),
        (lambda i: i["Age"].update(parameters={"content_type": "base64"}), 400, "Age"),
        (lambda i: i["SibSp"].update(datatype="INT8", data=[300, 0]), 400, "SibSp"),
        (lambda i: i["SibSp"].update(datatype="UINT64", data=[-1, 0]), 400, "SibSp"),
    ],
)
def test_bad_tensors_get_a_400_naming_the_column(client, metadata, raw_test, change, status,
                                                  named):  # fmt: skip
    answer = client.post(INFER, json=request_with(metadata, raw_test, change))
    assert answer.status_code == status, answer.text
    error = answer.get_json()
    assert list(error) == ["error"] and named in error["error"], error


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v2/models/titanic/infer", b"{not json", 400),
        ("/v2/models/titanic/infer", b"", 400),
        ("/v2/models/titanic/infer", b'{"inputs": []}', 400),
        ("/v2/models/titanic/infer", b"[1]", 400),
        ("/v2/models/titanic/infer", b'{"inputs": [{"name": "Age"}], "parameters": 1}', 400),
        (
            "/v2/models/titanic/infer",
            b'{"inputs": [{"name": "Age"}], "parameters": {"content_type": {}}}',
            400,
        ),  # found by schemathesis: a 500 once (unhashable)
        (
            "/v2/models/titanic/infer",
            b'{"inputs": [{"name": "Age", "datatype": ["FP64"], "shape": [1], "data": [1.0]}]}',
            400,
        ),
        (
            "/v2/models/titanic/infer",
            b'{"inputs": [{"name": "Age", "datatype": "FP64", '
            b'"shape": [1], "data": [1.0], "parameters": {"content_type": []}}]}',
            400,
        ),
        ("/v2/models/other/infer", b'{"inputs": []}', 404),
        ("/v2/models/titanic/versions/999/infer", b'{"inputs": []}', 404),
    ],
)
def test_bad_requests_get_the_protocols_error_shape(client, path, body, status):
    answer = client.post(path, data=body, content_type="application/json")
    assert answer.status_code == status, answer.text
    assert list(answer.get_json()) == ["error"] and answer.get_json()["error"]


def test_unknown_models_and_versions_are_404s_naming_what_is_served(client, store):
    other = client.get("/v2/models/other")
    assert other.status_code == 404 and "'titanic'" in other.get_json()["error"]
    missing = client.get("/v2/models/titanic/versions/999")
    assert missing.status_code == 404
    assert repr(store.current.info.version) in missing.get_json()["error"]


def test_inputs_that_are_no_model_column_are_ignored_as_predict_ignores_them(
    client, metadata, raw_test
):
    """A whole DataFrame (PassengerId too), as MLServer's pandas codec sends one."""
    extra = {"name": "PassengerId", "datatype": "INT64", "shape": [2], "data": [892, 893]}
    body = {"inputs": [*tensors(raw_test.head(2), metadata), extra]}
    answer = client.post(INFER, json=body)
    assert answer.status_code == 200, answer.text
    plain = client.post(INFER, json={"inputs": tensors(raw_test.head(2), metadata)})
    assert answer.get_json()["outputs"] == plain.get_json()["outputs"]


def test_an_unknown_output_is_a_400_naming_it(client, metadata, raw_test):
    body = {"inputs": tensors(raw_test.head(1), metadata), "outputs": [{"name": "proba"}]}
    answer = client.post(INFER, json=body)
    assert answer.status_code == 400 and "proba" in answer.get_json()["error"]


def test_a_nan_from_a_json_client_is_a_missing_number(client, metadata, raw_test):
    """rapidjson (Triton's HTTP client) writes a missing FP64 as the bare token NaN."""
    row = raw_test[raw_test["Age"].isna()].head(1)
    inputs = tensors(row, metadata)
    next(i for i in inputs if i["name"] == "Age")["data"] = [math.nan]
    raw = json.dumps({"inputs": inputs})  # Python's json writes NaN as rapidjson does
    assert "NaN" in raw
    answer = client.post(INFER, data=raw, content_type="application/json")
    predict = client.post("/predict", json=json.loads(row.to_json(orient="records")))
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["outputs"][0]["data"] == predict.get_json()["prediction"]
