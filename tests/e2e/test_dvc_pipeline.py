"""The DVC pipeline end to end in a fresh copy of the repo, with the embedded MLflow store.

One module-scoped copy: the first `dvc repro` (the expensive part) runs once; the tests after it
read its results, check that a second repro is a no-op, then run `dvc exp run` (in a temp copy,
then in the workspace): neither takes the champion.
"""

from __future__ import annotations

import json
import shutil
import subprocess
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


def test_metrics_show_lists_the_estimates_with_their_intervals(repo):
    output = repo.dvc("metrics", "show").stdout
    assert "metrics/metrics.json" in output
    for name in ("accuracy", "roc_auc", "log_loss"):
        for part in ("mean", "low", "high"):
            assert f"cv.{name}.{part}" in output, (name, part)
        for part in ("value", "low", "high"):
            assert f"valid.{name}.{part}" in output, (name, part)
    assert "f1" not in output and "brier" not in output  # details are in metrics/cv.json
    report = json.loads((repo.root / "metrics" / "metrics.json").read_text())
    cv, valid = report["cv"]["accuracy"], report["valid"]["accuracy"]
    assert cv["low"] < cv["mean"] < cv["high"] and 0.75 < cv["mean"] < 0.95
    assert valid["low"] < valid["value"] < valid["high"] and 0.75 < valid["value"] < 0.95
    details = json.loads((repo.root / "metrics" / "cv.json").read_text())
    assert len(details["cv"]["accuracy"]["folds"]) == 50
    print(f"\nCV accuracy {cv['mean']:.4f} [{cv['low']:.4f}, {cv['high']:.4f}]")


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
    # the page carries Vega itself (.dvc/plots/offline.html): no CDN, and it draws offline
    assert "cdn.jsdelivr" not in html and "<script src=" not in html
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make system-deps`"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=8000", "--dump-dom", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert dom.count('class="marks"') == 2, dom[-2000:]  # the two Vega plots, drawn
    # the image plots render without a network: DVC copies them beside the page
    for image in ("roc.png", "confusion.png"):
        assert image in html
        copied = list(out.rglob(f"*{image}"))
        assert copied and copied[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_exp_run_registers_a_candidate_that_does_not_take_the_champion(repo, client):
    """`dvc exp run --temp -S ...`, as the README shows: a new version, logged and registered
    in the user's own store (not the temp copy's), tagged with its experiment, @challenger; the
    workspace keeps the committed params."""
    head = repo.git("rev-parse", "HEAD")
    params_before = (repo.root / "params.yaml").read_text()
    done, TIMINGS["dvc exp run --temp"] = repo.timed(
        DVC, "exp", "run", "--temp", "-S", "train.C=0.5"
    )
    output = done.stdout + done.stderr
    for stage in ("train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in output, output
    assert "is now @challenger" in output and "a DVC experiment" in output, output
    versions = sorted(int(v.version) for v in client.search_model_versions("name='titanic'"))
    assert versions == [1, 2]
    assert str(client.get_model_version_by_alias("titanic", "champion").version) == "1"
    version = client.get_model_version("titanic", "2")
    assert "challenger" in version.aliases and version.tags["gate_promoted"] == "false"
    assert version.tags["gate_committed"].startswith("fail: trained from a DVC experiment")
    run = client.get_run(version.run_id)
    assert run.data.params["train.C"] == "0.5"
    exp_name = run.data.tags.get("dvc_exp_name")
    assert exp_name, "DVC_EXP_NAME was not set by `dvc exp run`"
    assert exp_name in repo.dvc("exp", "list", "--name-only").stdout
    assert version.tags.get("dvc_exp_name") == exp_name
    assert version.tags["git_commit"] != "unknown"
    experiment = client.get_experiment_by_name("titanic")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    # the workspace is untouched: the committed params, the committed HEAD
    assert (repo.root / "params.yaml").read_text() == params_before
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""


def test_exp_run_in_the_workspace_is_a_candidate_too_and_git_checkout_undoes_it(repo, client):
    done = repo.dvc("exp", "run", "-S", "train.C=0.3")
    assert "is now @challenger" in done.stdout + done.stderr
    assert str(client.get_model_version_by_alias("titanic", "champion").version) == "1"
    assert "C: 0.3" in (repo.root / "params.yaml").read_text()
    repo.git("checkout", "params.yaml", "dvc.lock", "metrics", "plots")  # as the README says
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    assert "models/model.skops" in repo.dvc("status").stdout  # `dvc repro` rebuilds it
