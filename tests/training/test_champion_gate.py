"""The register stage's champion gate, in a temp registry (sqlite), with real trained models.

One registry goes through every branch in turn (valid ROC AUC on the seed-42 split in brackets):

  v1 stump (0.644), no champion yet              -> champion
  v2 logistic regression (0.888), clearly better -> champion
  v3 logistic regression C=1.5 (0.888 + 0.0003)  -> challenger: higher, but within noise
  v4 stump again, clearly worse                  -> challenger
  (the champion alias is pointed at a version whose files are gone: a broken champion)
  v6 over the size budget                        -> challenger, though the champion is broken
  v7 from a DVC experiment                       -> challenger
  v8 within budget, committed                    -> champion (the broken one cannot compare)
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import make_layout, run_pipeline, set_params
from training import register
from training.config import Paths

GATE_PARAMS = {"gate_samples": 1000}
STUMP = {"model": "random_forest", "n_estimators": 1, "max_depth": 1}
LOGISTIC = {"model": "logistic_regression", "C": 1.0}


@dataclass(frozen=True)
class Step:
    record: dict
    output: str
    champion: str | None
    challenger: str | None

    @property
    def checks(self) -> dict[str, dict]:
        return {check["name"]: check for check in self.record["gate"]["checks"]}


def alias(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias("titanic", name).version)
    except mlflow.exceptions.MlflowException:
        return None


def step(paths: Paths, client: MlflowClient, train: dict | None = None) -> Step:
    """Train, evaluate and register (`train` params given), or only register again."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        if train is not None:
            set_params(paths, {"train": train})
            record = run_pipeline(paths)
        else:
            register.main(paths)
            record = json.loads(paths.registration.read_text())
    return Step(record, output.getvalue(), alias(client, "champion"), alias(client, "challenger"))


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory) -> tuple[str, dict[str, Step]]:
    root = tmp_path_factory.mktemp("gate")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    paths = make_layout(root)
    set_params(paths, {"register": GATE_PARAMS})
    client = MlflowClient(tracking_uri=uri)
    steps: dict[str, Step] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.delenv("DVC_EXP_NAME", raising=False)
        try:
            steps["first"] = step(paths, client, STUMP)
            steps["better"] = step(paths, client, LOGISTIC)
            steps["noise"] = step(paths, client, {**LOGISTIC, "C": 1.5})
            steps["worse"] = step(paths, client, STUMP)
            set_params(paths, {"train": LOGISTIC})
            run_pipeline(paths)  # v5, the logistic model again (champion stays v2: no better)
            broken = client.create_model_version("titanic", str(root / "gone"), run_id=None)
            client.set_registered_model_alias("titanic", "champion", broken.version)
            steps["broken_version"] = Step({"version": str(broken.version)}, "", None, None)
            set_params(paths, {"register": {"max_model_mb": 0.01}})
            steps["over_budget"] = step(paths, client)
            set_params(paths, {"register": {"max_model_mb": 50.0}})
            set_params(paths, {"register": {"allow_uncommitted_champion": False}})
            patch.setenv("DVC_EXP_NAME", "test-exp")
            steps["experiment"] = step(paths, client)
            patch.delenv("DVC_EXP_NAME")
            set_params(paths, {"register": {"allow_uncommitted_champion": True}})
            steps["replaces_broken"] = step(paths, client)
        finally:
            mlflow.set_tracking_uri(None)
    return uri, steps


def test_with_no_champion_the_first_model_takes_the_alias(gate_run):
    _, steps = gate_run
    first = steps["first"]
    assert first.record["version"] == "1" and first.record["alias"] == "champion"
    assert (first.champion, first.challenger) == ("1", None)
    assert first.record["gate"]["reason"] == "no champion yet"
    assert first.record["gate"]["comparison"] is None
    assert "register: titanic version 1 is now @champion (no champion yet)" in first.output


def test_a_clearly_better_model_takes_the_champion_alias(gate_run):
    _, steps = gate_run
    better = steps["better"]
    assert better.record["alias"] == "champion" and better.champion == "2"
    comparison = better.record["gate"]["comparison"]
    assert comparison["metric"] == "roc_auc" and better.record["gate"]["champion_version"] == "1"
    assert comparison["low"] > comparison["margin"] == 0.0
    assert comparison["candidate"] - comparison["champion"] > 0.1
    assert "beats champion v1 beyond noise" in better.record["gate"]["reason"]
    assert "version 2 is now @champion" in better.output


def test_a_higher_score_within_noise_does_not_move_the_champion(gate_run):
    _, steps = gate_run
    noise = steps["noise"]
    comparison = noise.record["gate"]["comparison"]
    assert comparison["candidate"] > comparison["champion"]  # higher, by a hair
    assert comparison["difference"] < 0.005
    assert comparison["low"] <= 0.0 <= comparison["high"]
    assert noise.record["alias"] == "challenger"
    assert (noise.champion, noise.challenger) == ("2", "3")
    assert not noise.checks["better"]["passed"]
    assert "does not beat champion v2 beyond noise" in noise.record["gate"]["reason"]
    assert "version 3 is now @challenger" in noise.output
    assert "FAIL better:" in noise.output


def test_a_worse_model_becomes_challenger_and_the_champion_stays(gate_run):
    _, steps = gate_run
    worse = steps["worse"]
    assert worse.record["alias"] == "challenger" and (worse.champion, worse.challenger) == (
        "2",
        "4",
    )
    comparison = worse.record["gate"]["comparison"]
    assert comparison["high"] < 0 and comparison["candidate"] < comparison["champion"] - 0.1
    assert "is worse than champion v2" in worse.record["gate"]["reason"]
    # the champion's score is the first better model's own validation score: same rows
    assert comparison["champion"] == pytest.approx(
        steps["better"].record["gate"]["comparison"]["candidate"]
    )


def test_a_model_over_budget_is_challenger_with_the_figures(gate_run):
    _, steps = gate_run
    over = steps["over_budget"]
    assert over.record["alias"] == "challenger" and over.challenger == over.record["version"]
    assert over.champion == steps["broken_version"].record["version"]  # not moved
    size = over.checks["size"]
    assert not size["passed"] and "MB on disk > 0.01" in size["detail"]
    assert over.record["served"]["size_mb"] > 0.01
    assert "MB on disk > 0.01" in over.record["gate"]["reason"]
    for name in ("latency", "load_time", "committed", "better"):  # only the budget failed
        assert over.checks[name]["passed"], name
    assert "FAIL size:" in over.output


def test_an_experiment_registers_a_candidate_only(gate_run):
    uri, steps = gate_run
    experiment = steps["experiment"]
    assert experiment.record["alias"] == "challenger"
    assert experiment.champion == steps["broken_version"].record["version"]
    committed = experiment.checks["committed"]
    assert not committed["passed"] and "a DVC experiment (test-exp)" in committed["detail"]
    assert "allow_uncommitted_champion is false" in experiment.record["gate"]["reason"]
    tags = MlflowClient(tracking_uri=uri).get_model_version("titanic", experiment.record["version"])
    assert tags.tags["dvc_exp_name"] == "test-exp" and tags.tags["gate_promoted"] == "false"


def test_a_broken_champion_is_replaced_and_the_reason_says_why(gate_run):
    _, steps = gate_run
    replaces = steps["replaces_broken"]
    broken = steps["broken_version"].record["version"]
    assert (
        replaces.record["alias"] == "champion" and replaces.champion == replaces.record["version"]
    )
    assert replaces.record["gate"]["champion_version"] == broken
    assert replaces.record["gate"]["comparison"] is None
    assert replaces.record["gate"]["reason"].startswith(f"champion v{broken} unusable:")
    assert all(check["passed"] for check in replaces.record["gate"]["checks"])


def test_budgets_are_measured_on_the_served_path(gate_run):
    _, steps = gate_run
    served = steps["better"].record["served"]
    assert served["path"] == "onnx"
    assert 0 < served["latency_p50_ms"] <= served["latency_p99_ms"] < 5
    assert 0 < served["load_seconds"] < 5 and 0 < served["size_mb"] < 50


def test_versions_carry_metrics_lineage_and_gate_tags(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    for label in ("first", "better", "noise", "worse", "over_budget"):
        record = steps[label].record
        tags = client.get_model_version("titanic", record["version"]).tags
        assert tags["dvc_data_hash"].endswith(".dir"), label
        for metric in ("valid_accuracy", "cv_accuracy_mean", "cv_accuracy_low", "cv_roc_auc_high"):
            assert 0 <= float(tags[metric]) <= 1, (label, metric)
        assert tags["gate"] == record["gate"]["reason"]
        assert tags["gate_promoted"] == str(record["gate"]["promoted"]).lower()
        assert tags["gate_size"].startswith(("pass: ", "fail: "))
        assert float(tags["served_latency_p99_ms"]) == pytest.approx(
            record["served"]["latency_p99_ms"], rel=1e-3
        )
        assert client.get_model_version("titanic", record["version"]).run_id == record["run_id"]


def test_the_run_has_params_metrics_dataset_inputs_and_lineage_tags(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    record = steps["worse"].record
    run = client.get_run(record["run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["train.model"] == "random_forest"
    assert params["train.n_estimators"] == "1" and params["train.max_depth"] == "1"
    assert params["prepare.valid_size"] == "0.2" and params["evaluate.cv_repeats"] == "1"
    # named as in params.yaml: `register:` (not the pydantic field, `registry`)
    assert params["register.gate_metric"] == "roc_auc" and params["register.gate_samples"] == "1000"
    assert not [key for key in params if key.startswith("registry.")]
    assert metrics["valid_roc_auc"] == pytest.approx(record["gate"]["comparison"]["candidate"])
    for name in ("accuracy", "roc_auc", "log_loss", "brier", "f1"):
        assert {f"cv_{name}_mean", f"cv_{name}_low", f"cv_{name}_high"} <= set(metrics), name
    assert tags["dvc_data_hash"].endswith(".dir") and "dvc_exp_name" not in tags
    assert tags["model_family"] == "random_forest"
    inputs = {
        (d.dataset.name, {t.key: t.value for t in d.tags}.get("mlflow.data.context"))
        for d in run.inputs.dataset_inputs
    }
    assert inputs == {("titanic-train", "training"), ("titanic-validation", "validation")}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/confusion.png", "plots/roc.csv"} <= artifacts


def test_each_pipeline_run_is_one_mlflow_run(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("titanic")
    runs = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    recorded = {s.record["run_id"] for s in steps.values() if "run_id" in s.record}
    assert recorded <= runs and len(runs) == len(recorded) + 1  # + the unrecorded v5


def test_the_champion_loads_from_the_registry_and_predicts(gate_run, article_request):
    import pandas as pd

    uri, _ = gate_run
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/titanic@champion")
    finally:
        mlflow.set_tracking_uri(None)
    predictions = model.predict(pd.DataFrame(article_request))
    assert list(predictions) in ([1, 1], [1, 0])
    assert Path(uri.removeprefix("sqlite:///")).exists()
