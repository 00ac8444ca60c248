"""The Open Inference Protocol (V2) over REST with KServe's own Python client against a real
server process. `kserve` 0.21 cannot be installed beside this project's pins (it requires
pandas<3 and psutil<6), so it runs from a venv of its own, .venv-kserve (tests/kserve.lock,
built by `make test`): tests/e2e/kserve_client.py drives `kserve.InferenceRESTClient` there, as
a subprocess, and prints what KServe's client made of our answers. For all 418 rows of test.csv
its answers equal /predict's, in the JSON tensor, binary tensor and `pd` forms; a request
without a required column comes back as the error KServe's client raises for a 400, naming it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from training.config import REPO_ROOT

pytestmark = pytest.mark.slow

MODEL = "titanic"
KSERVE_PYTHON = REPO_ROOT / ".venv-kserve" / "bin" / "python"
SCRIPT = Path(__file__).with_name("kserve_client.py")
FORMS = ("tensor", "binary", "pd")


@pytest.fixture(scope="module")
def server(serve, registered_model):
    with serve(registered_model.tracking_uri, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def kserve(server, raw_test, tmp_path_factory) -> dict:
    """What kserve_client.py reports for all of test.csv, run by .venv-kserve's python."""
    if not KSERVE_PYTHON.exists():
        pytest.fail(f"{KSERVE_PYTHON} is missing: `make .venv-kserve/.installed` builds it")
    rows = tmp_path_factory.mktemp("kserve") / "rows.json"
    rows.write_text(raw_test.to_json(orient="records"))  # a missing value is null
    command = [str(KSERVE_PYTHON), "-I", str(SCRIPT), server.url, "--rows", str(rows),
               "--model", MODEL, "--missing", "Sex"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_kserve_sees_a_live_ready_server_and_the_models_metadata(kserve, server):
    assert kserve["checks"] == {
        "server_live": True,
        "server_ready": True,
        "model_ready": True,
        "unknown_model_ready": False,
    }
    metadata = kserve["metadata"]
    version = requests.get(server.url + "/version", timeout=10).json()["version"]
    assert metadata["name"] == MODEL and metadata["versions"] == [version]
    datatypes = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert datatypes["Sex"] == "BYTES" and datatypes["Age"] == "FP64"
    assert kserve["server_metadata"]["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("form", FORMS)
def test_kserve_answers_equal_predict_for_all_of_test_csv(kserve, expected, form):
    answer = kserve["answers"][form]
    sent_as = "application/octet-stream" if form == "binary" else "application/json"
    assert answer["sent_as"] == sent_as  # binary: the JSON header's length in a header
    assert answer["id"] == f"kserve-{form}" and answer["model_name"] == MODEL
    predict, probability = answer["outputs"]["predict"], answer["outputs"]["probability"]
    assert len(expected["prediction"]) == 418
    assert (predict["datatype"], predict["shape"]) == ("INT64", [418])
    assert (probability["datatype"], probability["shape"]) == ("FP64", [418])
    assert predict["data"] == expected["prediction"]
    assert all(0.0 <= p <= 1.0 for p in probability["data"])
    assert probability["data"] == expected["probability"]


def test_kserve_gets_a_400_naming_the_missing_column(kserve):
    missing = kserve["errors"]["missing_column"]
    assert missing is not None, "a request without Sex was answered"
    assert (missing["type"], missing["status"]) == ("HTTPStatusError", 400)
    # KServe's client puts the body's `error` into its message (only for application/json)
    assert "'Sex'" in missing["message"] and "400 BAD REQUEST" in missing["message"].upper()
    unknown = kserve["errors"]["unknown_model"]
    assert (unknown["type"], unknown["status"]) == ("HTTPStatusError", 404)
    assert "'titanic'" in unknown["message"]
