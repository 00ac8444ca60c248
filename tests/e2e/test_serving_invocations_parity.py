"""POST /invocations answers exactly what a real `mlflow models serve` answers, for every format;
both run the registered model's fast python_function flavor, and answer as the plain pipeline."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import requests

from tests.processes import VENV_BIN, free_port, running, venv_env
from training.config import REPO_ROOT
from training.flavor import plain_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ours(serve, registered_model):
    with serve(registered_model.tracking_uri, workers=1) as server:
        yield server.url


@pytest.fixture(scope="module")
def mlflows(registered_model, tmp_path_factory):
    """`mlflow models serve -m models:/titanic@champion --env-manager local`, from the repo root."""
    port = free_port()
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", registered_model.champion_uri,
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = tmp_path_factory.mktemp("mlflow-serve") / "serve.log"
    env = venv_env(MLFLOW_TRACKING_URI=registered_model.tracking_uri)
    url = f"http://127.0.0.1:{port}"
    with running(command, url + "/ping", log=log, env=env, cwd=REPO_ROOT, timeout=150):
        yield url


@pytest.fixture(scope="module")
def pipeline(registered_model):
    """The plain scikit-learn pipeline (the sklearn flavor)."""
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    try:
        return mlflow.sklearn.load_model(registered_model.champion_uri)
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def plain(registered_model, tmp_path_factory):
    """The same version with the pyfunc every version had before the fast flavor (MLflow's own
    sklearn loader, `python -m training.flavor plain`): the answers to equal, byte for byte."""
    mlflow.set_tracking_uri(registered_model.tracking_uri)
    try:
        target = tmp_path_factory.mktemp("plain") / "model"
        return mlflow.pyfunc.load_model(str(plain_copy(registered_model.champion_uri, target)))
    finally:
        mlflow.set_tracking_uri(None)


def plain_answer(plain, content_type: str, body: str) -> dict:
    """What `mlflow models serve` of the plain copy answers: its scoring function, in-process."""
    from mlflow.pyfunc import scoring_server

    answer = scoring_server.invocations(
        body, content_type, plain, plain.metadata.get_input_schema()
    )
    assert answer.status == 200, answer.response
    return json.loads(answer.response)


def bodies(raw_test):
    records = json.loads(raw_test.to_json(orient="records"))
    return {
        "dataframe_split": ("application/json",
                            json.dumps({"dataframe_split": json.loads(raw_test.to_json(
                                orient="split", index=False))})),
        "dataframe_records": ("application/json", json.dumps({"dataframe_records": records})),
        "instances": ("application/json", json.dumps({"instances": records})),
        "inputs": ("application/json", json.dumps({"inputs": records})),
        "inputs_with_params": ("application/json", json.dumps({"inputs": records, "params": {}})),
        "csv": ("text/csv", raw_test.to_csv(index=False)),
    }  # fmt: skip


FORMATS = ["dataframe_split", "dataframe_records", "instances", "inputs", "inputs_with_params",
           "csv"]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_predictions_as_mlflow_models_serve(ours, mlflows, raw_test, plain, fmt):
    content_type, body = bodies(raw_test)[fmt]
    headers = {"Content-Type": content_type}
    theirs = requests.post(mlflows + "/invocations", data=body, headers=headers, timeout=60)
    mine = requests.post(ours + "/invocations", data=body, headers=headers, timeout=60)
    assert theirs.status_code == 200, theirs.text[:500]
    assert mine.status_code == 200, mine.text[:500]
    assert mine.json() == theirs.json()
    predictions = mine.json()["predictions"]
    assert len(predictions) == 418 and set(predictions) == {0, 1}
    # and what the plain sklearn pyfunc answered the same body (MLflow's parsing included: its
    # `inputs` and `instances` read a null string as "None", for both flavors alike)
    assert mine.json() == plain_answer(plain, content_type, body)
    assert mine.headers["X-Model-Version"]


def test_the_proba_param_answers_labels_and_probabilities(ours, mlflows, raw_test, pipeline):
    """`params: {"proba": true}`, as /predict?proba=true: each row's label and P(survived)."""
    split = json.loads(raw_test.to_json(orient="split", index=False))
    body = {"dataframe_split": split, "params": {"proba": True}}
    theirs = requests.post(mlflows + "/invocations", json=body, timeout=60)
    mine = requests.post(ours + "/invocations", json=body, timeout=60)
    assert theirs.status_code == mine.status_code == 200, (theirs.text[:300], mine.text[:300])
    assert mine.json() == theirs.json()
    rows = mine.json()["predictions"]
    assert [row["prediction"] for row in rows] == pipeline.predict(raw_test).tolist()
    probabilities = np.array([row["probability"] for row in rows])
    assert np.max(np.abs(probabilities - pipeline.predict_proba(raw_test)[:, 1])) <= 1e-6


def test_invocations_agree_with_predict(ours, raw_test):
    records = json.loads(raw_test.to_json(orient="records"))
    invocations = requests.post(ours + "/invocations", json={"dataframe_records": records})
    predict = requests.post(ours + "/predict", json=records)
    assert invocations.json()["predictions"] == predict.json()["prediction"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"dataframe_split": {}, "instances": []}', "application/json", 400),
        ('{"rows": []}', "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("{not json", "application/json", 400),
        ('{"dataframe_records": [{"Pclass": "x", "Sex": "male"}]}', "application/json", 400),
        ('{"dataframe_records": [{"Age": 3}]}', "application/json", 400),
        ("Pclass,Sex\nx,male\n", "text/csv", 400),
        ("", "text/csv", 400),
        ("<a/>", "application/xml", 415),
    ],
)
def test_bad_scoring_requests_get_our_error_shape(ours, body, content_type, status):
    answer = requests.post(
        ours + "/invocations", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] and error["message"]
    assert "stack_trace" not in answer.text and "Traceback" not in answer.text
