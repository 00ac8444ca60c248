"""The Open Inference Protocol (V2) with its real client libraries against a real server
process: Triton's `tritonclient.http`, and `tritonclient.grpc` on --grpc-port (KServe's own
SDK, `kserve`, cannot be installed beside this project's pins, it requires pandas<3 and
psutil<6: test_v2_kserve.py runs it from a venv of its own). For all 418 rows of test.csv
the V2 answers equal /predict's, in the tensor form (the clients' raw binary tensors) and in
the pandas form (`content_type: pd`, shape [rows, 1]; over HTTP as JSON, where rapidjson
writes a missing number as NaN)."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from tests.processes import free_port

pytestmark = pytest.mark.slow

MODEL = "titanic"
NUMPY = {"BYTES": np.object_, "FP64": np.float64, "FP32": np.float32, "INT64": np.int64,
         "INT32": np.int32, "BOOL": np.bool_}  # fmt: skip


@pytest.fixture(scope="module")
def grpc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(serve, registered_model, grpc_port):
    with serve(registered_model.tracking_uri, workers=2, grpc_port=grpc_port) as server:
        yield server


def column(frame: pd.DataFrame, name: str, datatype: str) -> np.ndarray:
    """A column as the client's numpy tensor: a missing number NaN, a missing string empty
    (which the model reads as missing, as it reads null)."""
    values = frame[name]
    if datatype == "BYTES":
        return np.array([("" if pd.isna(v) else str(v)).encode() for v in values], np.object_)
    return values.to_numpy(dtype=NUMPY[datatype])


def http_inputs(frame, metadata, pandas_form: bool) -> list[triton_http.InferInput]:
    inputs = []
    for spec in metadata["inputs"]:
        data = column(frame, spec["name"], spec["datatype"])
        if pandas_form:
            data = data.reshape(-1, 1)
        tensor = triton_http.InferInput(spec["name"], list(data.shape), spec["datatype"])
        tensor.set_data_from_numpy(data, binary_data=not pandas_form)
        inputs.append(tensor)
    return inputs


@pytest.fixture(scope="module")
def http(server):
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def test_the_http_client_sees_a_live_ready_server_and_the_models_metadata(http, server):
    assert http.is_server_live() and http.is_server_ready() and http.is_model_ready(MODEL)
    metadata = http.get_model_metadata(MODEL)
    version = requests.get(server.url + "/version", timeout=10).json()["version"]
    assert metadata["name"] == MODEL and metadata["versions"] == [version]
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]}["Sex"] == "BYTES"
    assert http.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert not http.is_model_ready(MODEL, model_version="999")


@pytest.mark.parametrize("form", ["tensor", "pd"])
def test_http_answers_equal_predict_for_all_of_test_csv(http, raw_test, expected, form):
    metadata = http.get_model_metadata(MODEL)
    pandas_form = form == "pd"
    result = http.infer(
        MODEL,
        http_inputs(raw_test, metadata, pandas_form),
        outputs=[triton_http.InferRequestedOutput(n) for n in ("predict", "probability")],
        request_id=f"all-{form}",
        parameters={"content_type": "pd"} if pandas_form else None,
    )
    assert result.as_numpy("predict").tolist() == expected["prediction"]
    assert result.as_numpy("probability").tolist() == expected["probability"]
    response = result.get_response()
    assert response["id"] == f"all-{form}"
    assert response["model_version"] == expected["model_version"]
    assert len(expected["prediction"]) == 418


def test_the_http_client_gets_errors_that_name_the_column(http, raw_test):
    metadata = http.get_model_metadata(MODEL)
    inputs = [i for i in http_inputs(raw_test.head(2), metadata, False) if i.name() != "Sex"]
    with pytest.raises(InferenceServerException) as missing:
        http.infer(MODEL, inputs)
    assert missing.value.status() == "400" and "'Sex'" in missing.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        http.infer("other", inputs)
    assert unknown.value.status() == "404" and "'titanic'" in unknown.value.message()


# -- gRPC ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpc(server, grpc_port):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    yield client
    client.close()


def grpc_inputs(frame, metadata, pandas_form: bool) -> list[triton_grpc.InferInput]:
    inputs = []
    for spec in metadata["inputs"]:
        data = column(frame, spec["name"], spec["datatype"])
        if pandas_form:
            data = data.reshape(-1, 1)
        tensor = triton_grpc.InferInput(spec["name"], list(data.shape), spec["datatype"])
        inputs.append(tensor.set_data_from_numpy(data))
    return inputs


def test_the_grpc_client_sees_a_live_ready_server_and_the_models_metadata(grpc, http):
    assert grpc.is_server_live() and grpc.is_server_ready() and grpc.is_model_ready(MODEL)
    assert not grpc.is_model_ready(MODEL, model_version="999")
    metadata = grpc.get_model_metadata(MODEL, as_json=True)
    over_http = http.get_model_metadata(MODEL)
    assert metadata["versions"] == over_http["versions"]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (i["name"], i["datatype"]) for i in over_http["inputs"]
    ]
    assert grpc.get_server_metadata(as_json=True)["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("form", ["tensor", "pd"])
def test_grpc_answers_equal_predict_for_all_of_test_csv(grpc, http, raw_test, expected, form):
    metadata = http.get_model_metadata(MODEL)
    pandas_form = form == "pd"
    result = grpc.infer(
        MODEL,
        grpc_inputs(raw_test, metadata, pandas_form),
        outputs=[triton_grpc.InferRequestedOutput(n) for n in ("predict", "probability")],
        request_id=f"grpc-{form}",
        parameters={"content_type": "pd"} if pandas_form else None,
    )
    assert result.as_numpy("predict").tolist() == expected["prediction"]
    assert result.as_numpy("probability").tolist() == expected["probability"]
    response = result.get_response(as_json=True)
    assert response["id"] == f"grpc-{form}"
    assert response["model_version"] == expected["model_version"]


def test_the_grpc_client_gets_errors_that_name_the_column(grpc, http, raw_test):
    metadata = http.get_model_metadata(MODEL)
    inputs = [i for i in grpc_inputs(raw_test.head(2), metadata, False) if i.name() != "Sex"]
    with pytest.raises(InferenceServerException) as missing:
        grpc.infer(MODEL, inputs)
    assert missing.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "'Sex'" in missing.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        grpc.infer(MODEL, inputs, model_version="999")
    assert unknown.value.status() == "StatusCode.NOT_FOUND"


# -- the per-stage histograms -------------------------------------------------------------------


def stage_counts(url: str) -> dict[tuple[str, str], float]:
    """serving_stage_duration_seconds' counts by (stage, endpoint), as prometheus_client's own
    parser reads /metrics."""
    text = requests.get(url + "/metrics", timeout=10).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "serving_stage_duration_seconds":
            continue
        assert family.type == "histogram"
        for sample in family.samples:
            if sample.name.endswith("_count"):
                key = (sample.labels["stage"], sample.labels["endpoint"])
                counts[key] = counts.get(key, 0.0) + sample.value
                assert sample.labels["version"] not in ("", "None")
    return counts


def test_every_stage_of_every_protocol_is_in_metrics(server, http, grpc, raw_test):
    metadata = http.get_model_metadata(MODEL)
    http.infer(MODEL, http_inputs(raw_test.head(1), metadata, False))
    grpc.infer(MODEL, grpc_inputs(raw_test.head(1), metadata, False))
    records = json.loads(raw_test.head(1).to_json(orient="records"))
    assert requests.post(server.url + "/predict", json=records, timeout=10).status_code == 200
    wanted = {
        "/predict": ("read", "decode", "validate", "predict", "encode"),
        "/v2/models/<name>/infer": ("read", "decode", "validate", "predict", "encode"),
        "grpc:ModelInfer": ("decode", "validate", "predict", "encode"),  # gRPC reads in C
    }
    deadline = time.monotonic() + 10  # each worker adds its counts every second
    while True:
        counts = stage_counts(server.url)
        missing = [(s, e) for e, stages in wanted.items() for s in stages if not counts.get((s, e))]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert missing == [], f"no counts for {missing}; have {sorted(counts)}"
