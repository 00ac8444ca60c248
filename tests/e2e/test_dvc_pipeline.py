"""The DVC pipeline end to end in a fresh copy of the repo, with the embedded MLflow store.

One module-scoped copy: the first `dvc repro` (the expensive part) runs once; the tests after it
read its results, check that a second repro is a no-op, then run one `dvc exp run`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.e2e.repo_copy import DVC, RepoCopy, make_repo_copy

pytestmark = pytest.mark.slow

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Iterator[RepoCopy]:
    start = time.monotonic()
    copy = make_repo_copy(tmp_path_factory.mktemp("dvc-e2e") / "repo", tracking_uri=None)
    TIMINGS["copy+pull+commit"] = time.monotonic() - start
    assert "MLFLOW_TRACKING_URI" not in copy.env
    _, TIMINGS["dvc repro"] = copy.timed(DVC, "repro")
    yield copy
    print("\ntimings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))


@pytest.fixture
def client(repo) -> MlflowClient:
    return MlflowClient(tracking_uri=repo.sqlite_uri)


def test_repro_registers_a_champion_in_the_copys_own_embedded_store(repo, client):
    assert (repo.root / "mlflow.db").is_file()
    champion = client.get_model_version_by_alias("titanic", "champion")
    assert str(champion.version) == "1"
    record = json.loads((repo.root / "metrics" / "registration.json").read_text())
    assert record["alias"] == "champion" and record["version"] == "1"
    run = client.get_run(champion.run_id)
    assert run.info.artifact_uri.startswith((repo.root / "mlruns").as_uri())
    assert any((repo.root / "mlruns").iterdir())
    assert run.data.tags["git_commit"] == repo.git("rev-parse", "HEAD")
    assert run.data.tags["dvc_data_hash"].endswith(".dir")


def test_the_champion_loads_from_the_registry_and_predicts_the_article_request(
    repo, article_request
):
    mlflow.set_tracking_uri(repo.sqlite_uri)
    try:
        model = mlflow.pyfunc.load_model("models:/titanic@champion")
    finally:
        mlflow.set_tracking_uri(None)
    predictions = model.predict(pd.DataFrame(article_request))
    assert len(predictions) == 2 and set(predictions) <= {0, 1}
    assert predictions[0] == 1


def test_a_second_repro_runs_no_stage(repo, client):
    done, TIMINGS["second dvc repro"] = repo.timed(DVC, "repro")
    output = done.stdout + done.stderr
    assert "Running stage" not in output, output
    assert "up to date" in output
    assert "Running stage" not in repo.dvc("status").stdout
    assert [str(v.version) for v in client.search_model_versions("name='titanic'")] == ["1"]


def test_metrics_show_lists_accuracy(repo):
    output = repo.dvc("metrics", "show").stdout
    assert "metrics/metrics.json" in output
    assert "valid.accuracy" in output and "cv.accuracy_mean" in output
    accuracy = json.loads((repo.root / "metrics" / "metrics.json").read_text())["valid"]["accuracy"]
    assert 0.75 < accuracy < 0.95
    print(f"\nvalid accuracy {accuracy:.4f}")


def test_plots_show_renders_roc_and_confusion(repo, tmp_path):
    out = tmp_path / "plots"
    repo.dvc("plots", "show", "-o", str(out))
    html = (out / "index.html").read_text()
    for expected in (
        "plots_roc_csv",  # the vega-embed targets DVC names after each plot file
        "plots_confusion_csv",
        "ROC on the validation split",
        "Confusion matrix on the validation split",
    ):
        assert expected in html, expected
    assert '"fpr"' in html and '"tpr"' in html and '"predicted"' in html


def test_exp_run_trains_logs_its_own_run_and_registers_a_new_version(repo, client):
    head = repo.git("rev-parse", "HEAD")
    done, TIMINGS["dvc exp run"] = repo.timed(DVC, "exp", "run", "-S", "train.n_estimators=50")
    output = done.stdout + done.stderr
    for stage in ("train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in output, output
    assert "Running stage 'prepare'" not in output
    versions = sorted(int(v.version) for v in client.search_model_versions("name='titanic'"))
    assert versions == [1, 2]
    version = client.get_model_version("titanic", "2")
    run = client.get_run(version.run_id)
    assert run.data.params["train.n_estimators"] == "50"
    assert run.data.tags["git_commit"] == head  # the experiment's baseline commit
    assert version.tags["git_commit"] == head
    # DVC sets DVC_EXP_NAME for the stages it runs: the run names its experiment
    exp_name = run.data.tags.get("dvc_exp_name")
    assert exp_name, "DVC_EXP_NAME was not set by `dvc exp run`"
    assert exp_name in repo.dvc("exp", "list", "--name-only").stdout
    assert version.tags.get("dvc_exp_name") == exp_name
    experiment = client.get_experiment_by_name("titanic")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    alias = json.loads((repo.root / "metrics" / "registration.json").read_text())["alias"]
    assert alias in ("champion", "challenger")
    assert alias in version.aliases
