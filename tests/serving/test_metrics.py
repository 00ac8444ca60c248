"""/metrics in a single process (Flask's test client, the default registry) on a real model, and
the multiprocess directory the CLI prepares (in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

from prometheus_client import REGISTRY

from serving import metrics
from tests.conftest import CONTRACT_REQUEST
from training.config import REPO_ROOT


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def test_requests_latency_rows_and_classes_are_counted(client):
    ok = {"endpoint": "/predict", "method": "POST", "status": "200"}
    before = {
        "ok": sample("serving_requests_total", **ok),
        "bad": sample("serving_requests_total", endpoint="/predict", method="POST", status="422"),
        "latency": sample("serving_request_duration_seconds_count", endpoint="/predict"),
        "rows": sample("serving_rows_predicted_total", endpoint="/predict"),
        "classes": sum(
            sample("serving_predictions_total", endpoint="/predict", **{"class": c})
            for c in ("0", "1")
        ),
        "unmatched": sample(
            "serving_requests_total", endpoint="unmatched", method="GET", status="404"
        ),
    }
    for _ in range(3):
        assert client.post("/predict", data=CONTRACT_REQUEST.read_bytes()).status_code == 200
    assert client.post("/predict", json={"Pclass": {"0": 1}}).status_code == 422
    assert client.get("/predict/../nowhere").status_code == 404

    assert sample("serving_requests_total", **ok) - before["ok"] == 3
    assert (
        sample("serving_requests_total", endpoint="/predict", method="POST", status="422")
        - before["bad"]
        == 1
    )
    assert (
        sample("serving_request_duration_seconds_count", endpoint="/predict") - before["latency"]
        == 4
    )
    assert sample("serving_rows_predicted_total", endpoint="/predict") - before["rows"] == 6
    classes = sum(
        sample("serving_predictions_total", endpoint="/predict", **{"class": c}) for c in ("0", "1")
    )
    assert classes - before["classes"] == 6  # refused requests predict nothing
    assert (
        sample("serving_requests_total", endpoint="unmatched", method="GET", status="404")
        - before["unmatched"]
        == 1
    )


def test_invocations_rows_and_classes_are_counted(client):
    before = sample("serving_rows_predicted_total", endpoint="/invocations")
    body = {"dataframe_records": [{"Pclass": 3, "Sex": "male"}, {"Pclass": 1, "Sex": "female"}]}
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 200
    assert sample("serving_rows_predicted_total", endpoint="/invocations") - before == 2
    counted = [
        sample("serving_predictions_total", endpoint="/invocations", **{"class": str(c)})
        for c in answer.get_json()["predictions"]
    ]
    assert all(count >= 1 for count in counted)


def test_the_exposition_names_the_served_model(client, registered_model):
    client.get("/health")  # a served request shows this process's model
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    text = answer.get_data(as_text=True)
    assert (
        f'serving_model_info{{alias="champion",inference="onnx",name="titanic",'
        f'version="{registered_model.version}"}} 1.0'
    ) in text
    assert 'serving_model_loads_total{kind="load"}' in text
    for name in ("serving_request_duration_seconds_bucket", "serving_rows_predicted_total"):
        assert name in text


def test_the_reload_hooks_count_and_switch_model_info(store):
    # a served URI of its own: another store of the session may show the champion's labels
    info = replace(store.current.info, model_uri="models:/titanic@metrics", alias="metrics")
    reloads = sample("serving_model_loads_total", kind="reload")
    failed = sample("serving_model_reload_failures_total", version="99")
    metrics.show_model(info)
    new = SimpleNamespace(
        name=info.name, version="99", alias="metrics", inference="sklearn", model_uri=info.model_uri
    )
    metrics.model_loaded(new, reload=True)
    metrics.reload_failed("99")
    assert sample("serving_model_loads_total", kind="reload") - reloads == 1
    assert sample("serving_model_reload_failures_total", version="99") - failed == 1
    shown = {"name": info.name, "version": "99", "alias": "metrics", "inference": "sklearn"}
    assert sample("serving_model_info", **shown) == 1
    old = {"name": info.name, "version": info.version, "alias": "metrics",
           "inference": info.inference}  # fmt: skip
    assert sample("serving_model_info", **old) == 0  # one model per process shows 1
    metrics.show_model(info)
    assert sample("serving_model_info", **old) == 1


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


PREPARE = """
import os, stat
from serving import metrics
d = metrics.prepare_multiprocess_dir()
import prometheus_client.values as v
assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == d and os.path.isdir(d)
assert v.ValueClass is not v.MutexValue  # multiprocess values
print(d, oct(stat.S_IMODE(os.stat(d).st_mode)))
"""


def test_the_cli_makes_a_private_dir_removed_at_exit():
    done = run_python(PREPARE)
    assert done.returncode == 0, done.stderr
    directory, mode = done.stdout.split()
    assert mode == "0o700" and "serving-metrics-" in directory
    assert not __import__("os").path.exists(directory)  # removed when the process exited


def test_a_dir_the_user_set_is_used_and_kept(tmp_path):
    given = tmp_path / "prom"
    done = run_python(PREPARE, PROMETHEUS_MULTIPROC_DIR=str(given))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(given) and given.is_dir()


def test_too_late_if_prometheus_client_is_already_imported():
    done = run_python(
        "import prometheus_client\nfrom serving import metrics\nmetrics.prepare_multiprocess_dir()"
    )
    assert done.returncode != 0 and "imported before" in done.stderr
