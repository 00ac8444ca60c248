"""serving/rest/predict_lane.py: POST /predict's common case answered below Flask, exactly as
Flask's view answers it; everything else reaches Flask, with its body intact."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from serving.config import Settings
from serving.rest.app import create_app
from serving.rest.predict_lane import WsgiLane
from tests.conftest import CONTRACT_REQUEST

BODY = CONTRACT_REQUEST.read_bytes()


@pytest.fixture
def lane_client(store, registered_model) -> tuple[FlaskClient, list[str]]:
    """A test client, and the paths (with query) of the requests that reached Flask."""
    settings = Settings.from_env({}, tracking_uri=registered_model.tracking_uri, max_rows=100)
    app = create_app(settings, store)
    lane = app.wsgi_app
    assert isinstance(lane, WsgiLane)
    reached: list[str] = []
    flask = lane.app

    def spy(environ, start_response):
        reached.append(environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", ""))
        return flask(environ, start_response)

    lane.app = spy
    return app.test_client(), reached


def headers_of(answer) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower() != "x-request-id"}


def test_the_lane_answers_as_flasks_view_does(lane_client):
    client, reached = lane_client
    fast = client.post("/predict", data=BODY, headers={"Content-Type": "application/json"})
    assert reached == []  # answered by the lane
    slow = client.post("/predict?proba=false", data=BODY,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert reached == ["/predict?proba=false"]  # answered by Flask
    assert (fast.status_code, fast.data) == (slow.status_code, slow.data)
    assert headers_of(fast) == headers_of(slow)
    assert json.loads(fast.data)["prediction"] in ([0, 0], [0, 1], [1, 0], [1, 1])


def test_curls_default_content_type_and_a_request_id_take_the_lane(lane_client):
    client, reached = lane_client
    answer = client.post("/predict", data=BODY, headers={"X-Request-ID": "trace-42",
                         "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert reached == [] and answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "trace-42"
    fresh = client.post("/predict", data=BODY, headers={"X-Request-ID": "bad id; <script>"})
    assert len(fresh.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b'{"Pclass": {"0": 1}}', 422, "missing_column"),
        (b'{"Pclass": {"0": "first"}, "Sex": {"0": "male"}}', 422, None),
    ],
)
def test_bad_bodies_go_to_flask_with_the_body_intact(lane_client, body, status, code):
    client, reached = lane_client
    answer = client.post("/predict", data=body, headers={"Content-Type": "application/json"})
    assert reached == ["/predict?"]
    assert answer.status_code == status
    if code is not None:
        assert answer.get_json()["error"]["code"] == code


def test_the_lane_logs_and_counts_like_flask(lane_client, caplog):
    from prometheus_client import REGISTRY

    client, reached = lane_client
    labels = {"endpoint": "/predict", "method": "POST", "status": "200"}
    before = REGISTRY.get_sample_value("serving_requests_total", labels) or 0
    with caplog.at_level(logging.INFO, logger="serving.access"):
        client.post("/predict", data=BODY, headers={"X-Request-ID": "lane-log"})
    assert reached == []
    assert REGISTRY.get_sample_value("serving_requests_total", labels) == before + 1
    [record] = [r for r in caplog.records if r.name == "serving.access"]
    fields = record.fields
    assert (fields["path"], fields["status"], fields["rows"]) == ("/predict", 200, 2)
    assert fields["request_id"] == "lane-log" and fields["model_version"]


def test_the_lane_answers_a_v2_infer_as_flasks_view_does(lane_client, raw_test):
    """The one-row V2 request costs no Flask either; a version path or a NaN body goes to
    Flask, which answers it the same."""
    client, reached = lane_client
    metadata = client.get("/v2/models/titanic").get_json()
    reached.clear()
    row = raw_test.head(1)
    inputs = [{"name": i["name"], "datatype": i["datatype"], "shape": [1],
               "data": json.loads(row[i["name"]].to_json(orient="values"))}
              for i in metadata["inputs"]]  # fmt: skip
    body = json.dumps({"id": "a", "inputs": inputs, "outputs": [{"name": "probability"}]})
    fast = client.post("/v2/models/titanic/infer", data=body, content_type="application/json")
    assert reached == []
    version = metadata["versions"][0]
    slow = client.post(f"/v2/models/titanic/versions/{version}/infer", data=body,
                       content_type="application/json")  # fmt: skip
    assert reached == [f"/v2/models/titanic/versions/{version}/infer?"]
    assert (fast.status_code, fast.data) == (slow.status_code, slow.data) == (200, fast.data)
    assert headers_of(fast) == headers_of(slow)
    assert json.loads(fast.data)["outputs"][0]["name"] == "probability"
    bad = client.post("/v2/models/titanic/infer", data=body.replace('"Sex"', '"Sx"'),
                      content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and "'Sex'" in bad.get_json()["error"]  # Sx is ignored
    assert reached[-1] == "/v2/models/titanic/infer?"  # the error is Flask's
