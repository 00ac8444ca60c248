"""The Open Inference Protocol (V2) with its real client library against a real server
process: Triton's `tritonclient.http` (KServe's own SDK, `kserve`, cannot be installed beside
this project's pins: it requires pandas<3 and psutil<6). For all 418 rows of test.csv the V2
answers equal /predict's, in the tensor form (the client's default binary tensors) and in the
pandas form (`content_type: pd`, JSON, shape [rows, 1])."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.slow

MODEL = "titanic"
NUMPY = {"BYTES": np.object_, "FP64": np.float64, "FP32": np.float32, "INT64": np.int64,
         "INT32": np.int32, "BOOL": np.bool_}  # fmt: skip


@pytest.fixture(scope="module")
def server(serve, registered_model):
    with serve(registered_model.tracking_uri, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def expected(server, raw_test) -> dict:
    """What /predict answers for all of test.csv (labels and probabilities)."""
    records = json.loads(raw_test.to_json(orient="records"))
    answer = requests.post(server.url + "/predict?proba=true", json=records, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


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
