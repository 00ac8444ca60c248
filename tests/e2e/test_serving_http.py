"""The /predict contract and the error answers, over HTTP against a real server process."""

from __future__ import annotations

import json
import subprocess

import mlflow
import orjson
import pandas as pd
import pytest
import requests

from tests.conftest import CONTRACT_REQUEST
from tests.processes import VENV_BIN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(serve, registered_model):
    with serve(registered_model.tracking_uri, max_rows=500, max_body_bytes=1_000_000) as server:
        yield server


@pytest.fixture(scope="module")
def reference_model(registered_model):
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    try:
        yield mlflow.pyfunc.load_model(registered_model.champion_uri)
    finally:
        mlflow.set_tracking_uri(None)


def post(server, body: bytes, content_type: str | None = "application/json", path="/predict"):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(server.url + path, data=body, headers=headers, timeout=30)


def test_the_articles_request_byte_for_byte(server, reference_model, registered_model):
    answer = post(server, CONTRACT_REQUEST.read_bytes())
    assert answer.status_code == 200
    body = answer.json()
    frame = pd.DataFrame(json.loads(CONTRACT_REQUEST.read_text()))
    assert body["prediction"] == reference_model.predict(frame).tolist()
    assert body["index"] == ["53", "111"] == list(frame.index)
    assert "probability" not in body
    assert answer.headers["X-Model-Version"] == registered_model.version
    assert answer.headers["X-Request-ID"]


def test_curl_and_httpie_style_clients_get_answers(server):
    # curl --data sends application/x-www-form-urlencoded; a JSON body is still read as JSON
    curl = subprocess.run(
        ["curl", "-s", "--data", f"@{CONTRACT_REQUEST}", server.url + "/predict"],
        capture_output=True,
        check=True,
    )
    assert json.loads(curl.stdout)["index"] == ["53", "111"]
    curl_json = subprocess.run(
        ["curl", "-s", "-H", "Content-Type: application/json", "--data", f"@{CONTRACT_REQUEST}",
         server.url + "/predict"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    assert json.loads(curl_json.stdout) == json.loads(curl.stdout)
    # `http POST url < data.json` (httpie) sends application/json; so does no header at all
    assert post(server, CONTRACT_REQUEST.read_bytes(), content_type=None).status_code == 200
    if (VENV_BIN / "http").exists():
        httpie = subprocess.run(
            [str(VENV_BIN / "http"), "--ignore-stdin", "--body", "POST", server.url + "/predict",
             f"@{CONTRACT_REQUEST}"],
            capture_output=True,
            check=True,
        )  # fmt: skip
        assert json.loads(httpie.stdout) == json.loads(curl.stdout)


def test_probabilities_when_asked(server):
    answer = post(server, CONTRACT_REQUEST.read_bytes())
    asked = requests.post(
        server.url + "/predict?proba=true", data=CONTRACT_REQUEST.read_bytes(), timeout=30
    ).json()
    assert asked["prediction"] == answer.json()["prediction"]
    assert len(asked["probability"]) == 2
    for label, p in zip(asked["prediction"], asked["probability"], strict=True):
        assert 0.0 <= p <= 1.0
        assert label == int(p >= 0.5)


def test_shuffled_test_set_matches_pyfunc_row_for_row(server, reference_model, raw_test):
    shuffled = raw_test.sample(frac=1.0, random_state=7)
    payload = shuffled.to_json(orient="columns").encode()
    answer = post(server, payload)
    assert answer.status_code == 200, answer.text
    body = orjson.loads(payload)
    frame = pd.DataFrame(body)
    expected = reference_model.predict(frame).tolist()
    got = answer.json()
    assert len(got["prediction"]) == 418
    assert got["index"] == list(frame.index)
    assert got["prediction"] == expected
    assert set(expected) == {0, 1}


def test_records_orient_gives_the_same_answers(server, raw_test):
    head = raw_test.head(50)
    records = post(server, head.to_json(orient="records").encode()).json()
    columns = post(server, head.to_json(orient="columns").encode()).json()
    assert records["prediction"] == columns["prediction"]
    assert records["index"] == [str(i) for i in range(50)]


def test_request_id_is_echoed_and_logged_without_the_payload(server):
    answer = requests.post(
        server.url + "/predict",
        data=CONTRACT_REQUEST.read_bytes(),
        headers={"Content-Type": "application/json", "X-Request-ID": "trace-42"},
        timeout=30,
    )
    assert answer.headers["X-Request-ID"] == "trace-42"
    lines = [json.loads(line) for line in server.log.read_text().splitlines()
             if line.startswith("{") and "trace-42" in line]  # fmt: skip
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST" and line["path"] == "/predict" and line["status"] == 200
    assert line["duration_ms"] > 0 and line["model_version"] == answer.headers["X-Model-Version"]
    assert "Fortune" not in server.log.read_text()  # a name from the request never reaches it


BAD_REQUESTS = [
    # (name, body, content type, status, error code, words the message must contain)
    ("malformed json", b'{"Age": {"53": 28,', "application/json", 400, "malformed_json", []),
    ("empty body", b"", "application/json", 400, "empty_body", []),
    ("json scalar", b"42", "application/json", 400, "not_columns", []),
    ("json string", b'"hello"', "application/json", 400, "not_columns", []),
    ("not utf-8", b'{"Sex": {"0": "\xff"}}', "application/json", 400, "malformed_json", []),
    ("column not object", b'{"Pclass": 3, "Sex": "male"}', "application/json", 422,
     "not_columns", ["Pclass"]),
    ("missing Sex", b'{"Pclass": {"0": 3}}', "application/json", 422, "missing_column", ["Sex"]),
    ("missing both", b"{}", "application/json", 422, "missing_column", ["Pclass", "Sex"]),
    ("Age abc", b'{"Pclass": {"53": 1}, "Sex": {"53": "male"}, "Age": {"53": "abc"}}',
     "application/json", 422, "invalid_value", ["Age", "53"]),
    ("Pclass 1.5", b'{"Pclass": {"7": 1.5}, "Sex": {"7": "male"}}', "application/json", 422,
     "invalid_value", ["Pclass", "7"]),
    ("Pclass x", b'{"Pclass": {"7": "x"}, "Sex": {"7": "male"}}', "application/json", 422,
     "invalid_value", ["Pclass", "7"]),
    ("Sex 3", b'{"Pclass": {"7": 1}, "Sex": {"7": 3}}', "application/json", 422,
     "invalid_value", ["Sex", "7"]),
    ("Sex null", b'{"Pclass": {"7": 1}, "Sex": {"7": null}}', "application/json", 422,
     "missing_value", ["Sex", "7"]),
    ("row only in an extra column", b'{"Pclass": {"1": 1}, "Sex": {"1": "male"}, '
     b'"Ticket": {"1": "A", "2": "B"}}', "application/json", 422, "missing_value", ["2"]),
    ("Fare boolean", b'{"Pclass": {"1": 1}, "Sex": {"1": "male"}, "Fare": {"1": true}}',
     "application/json", 422, "invalid_value", ["Fare"]),
    ("huge integer", b'{"Pclass": {"1": 99999999999999999999}, "Sex": {"1": "male"}}',
     "application/json", 422, "invalid_value", ["Pclass", "1"]),
    ("record not object", b'[{"Pclass": 1, "Sex": "male"}, 5]', "application/json", 422,
     "not_records", ["record 1"]),
    ("text/plain", b"Pclass=1", "text/plain", 415, "unsupported_media_type", ["text/plain"]),
    ("xml", b"<Pclass>1</Pclass>", "application/xml", 415, "unsupported_media_type", ["xml"]),
    ("form that is not json", b"Pclass=1&Sex=male", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type", []),
    ("latin-1 charset", b"{}", "application/json; charset=latin-1", 415, "unsupported_charset",
     []),
    ("too many rows", orjson.dumps([{"Pclass": 1, "Sex": "male"}] * 501), "application/json",
     413, "too_many_rows", ["500"]),
    ("too large", b'{"Name": {"0": "' + b"x" * 1_100_000 + b'"}}', "application/json", 413,
     "payload_too_large", []),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, "application/json", 400, "malformed_json", []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_gets_a_json_4xx_that_names_the_problem(
    server, body, content_type, status, code, words
):
    answer = post(server, body, content_type)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code
    for word in words:
        assert word in error["message"]
    assert "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/predict", 405, "method_not_allowed"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/v3/models/titanic/infer", 404, "not_found"),
    ],
)
def test_wrong_method_or_path(server, method, path, status, code):
    answer = requests.request(method, server.url + path, timeout=10)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_wrong_methods_on_the_other_protocols_get_their_shapes(server):
    """MLflow's {error_code, message} on /invocations, V2's {error} under /v2."""
    mlflow = requests.put(server.url + "/invocations", timeout=10)
    assert mlflow.status_code == 405 and mlflow.json()["error_code"] == "BAD_REQUEST"
    v2 = requests.get(server.url + "/v2/models/titanic/infer", timeout=10)
    assert v2.status_code == 405 and isinstance(v2.json()["error"], str)


def test_bad_query_parameter(server):
    answer = requests.post(
        server.url + "/predict?proba=maybe", data=CONTRACT_REQUEST.read_bytes(), timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "proba"


def test_server_still_answers_after_all_the_bad_input(server, reference_model):
    for _, body, content_type, *_ in BAD_REQUESTS:
        post(server, body, content_type)
    answer = post(server, CONTRACT_REQUEST.read_bytes())
    assert answer.status_code == 200
    assert answer.json()["index"] == ["53", "111"]
    assert server.process.poll() is None
    assert '"status":500' not in server.log.read_text().replace(" ", "")


def test_health_ready_version(server, registered_model):
    assert requests.get(server.url + "/health", timeout=10).json() == {"status": "alive"}
    ready = requests.get(server.url + "/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    version = requests.get(server.url + "/version", timeout=10).json()
    assert version["name"] == registered_model.name
    assert version["version"] == registered_model.version
    assert version["alias"] == "champion"
    assert version["model_uri"] == "models:/titanic@champion"
    assert len(version["run_id"]) == 32
    assert version["git_commit"] and version["dvc_data_hash"]
    assert 0.5 < version["metrics"]["valid_accuracy"] <= 1.0
