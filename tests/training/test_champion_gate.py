"""The register stage's champion gate, in a temp registry (sqlite), with real trained models.

good (champion) -> clearly worse (challenger, champion unchanged) -> better (takes champion).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import make_layout, run_pipeline
from training.config import Paths

STEPS = {  # valid roc_auc on the seed-42 split: about 0.847, 0.765, 0.872
    "good": {"model": "random_forest", "n_estimators": 30, "max_depth": 3},
    "worse": {"model": "random_forest", "n_estimators": 1, "max_depth": 1},
    "better": {"model": "logistic_regression", "C": 1.0},
}


@dataclass(frozen=True)
class Step:
    record: dict
    output: str
    champion: str
    challenger: str | None


def set_train_params(paths: Paths, train: dict) -> None:
    path = paths.root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["train"].update(train)
    params["evaluate"]["cv_folds"] = 2  # the gate does not look at CV: keep the test quick
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def alias(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias("titanic", name).version)
    except mlflow.exceptions.MlflowException:
        return None


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory) -> tuple[str, dict[str, Step]]:
    root = tmp_path_factory.mktemp("gate")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    paths = make_layout(root)
    client = MlflowClient(tracking_uri=uri)
    steps: dict[str, Step] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.delenv("DVC_EXP_NAME", raising=False)
        try:
            for label, train in STEPS.items():
                set_train_params(paths, train)
                output = io.StringIO()
                with contextlib.redirect_stdout(output):
                    record = run_pipeline(paths)
                champion, challenger = alias(client, "champion"), alias(client, "challenger")
                steps[label] = Step(record, output.getvalue(), champion, challenger)
        finally:
            mlflow.set_tracking_uri(None)
    return uri, steps


def test_first_good_model_becomes_champion(gate_run):
    _, steps = gate_run
    good = steps["good"]
    assert good.record["version"] == "1" and good.record["alias"] == "champion"
    assert good.champion == "1" and good.challenger is None
    assert good.record["gate"]["reason"] == "no champion yet"
    assert "register: titanic version 1 is now @champion (no champion yet)" in good.output


def test_a_worse_model_becomes_challenger_and_the_champion_stays(gate_run):
    _, steps = gate_run
    worse = steps["worse"]
    assert worse.record["version"] == "2" and worse.record["alias"] == "challenger"
    assert (worse.champion, worse.challenger) == ("1", "2")
    gate = worse.record["gate"]
    assert gate["promoted"] is False and gate["metric"] == "roc_auc"
    assert str(gate["champion_version"]) == "1"
    assert gate["candidate"] < gate["champion"] - 0.05
    assert "does not beat champion v1" in gate["reason"]
    assert "version 2 is now @challenger" in worse.output and "does not beat" in worse.output


def test_a_better_model_takes_the_champion_alias(gate_run):
    _, steps = gate_run
    better = steps["better"]
    assert better.record["version"] == "3" and better.record["alias"] == "champion"
    assert better.champion == "3"
    assert better.challenger == "2"  # the old challenger keeps its alias
    gate = better.record["gate"]
    assert gate["promoted"] is True and str(gate["champion_version"]) == "1"
    assert gate["candidate"] > gate["champion"]
    assert "beats champion v1" in gate["reason"]
    assert "version 3 is now @champion" in better.output
    # the champion's gate score is the first model's own validation score: same split
    assert gate["champion"] == pytest.approx(steps["good"].record["gate"]["candidate"])


def test_registration_record_names_the_version_and_its_run(gate_run):
    _, steps = gate_run
    record = steps["better"].record
    assert set(record) >= {"name", "version", "alias", "run_id", "model_uri", "gate"}
    assert record["model_uri"] == "models:/titanic/3"


def test_versions_carry_metric_lineage_and_gate_tags(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    for label, step in steps.items():
        version = client.get_model_version("titanic", step.record["version"])
        tags = version.tags
        assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown", label
        assert tags["dvc_data_hash"].endswith(".dir")
        assert float(tags["valid_roc_auc"]) == pytest.approx(step.record["gate"]["candidate"])
        for metric in ("valid_accuracy", "valid_f1", "cv_accuracy_mean", "cv_roc_auc_std"):
            assert 0 <= float(tags[metric]) <= 1, (label, metric)
        assert tags["gate"] == step.record["gate"]["reason"]
        assert version.run_id == step.record["run_id"]


def test_the_run_has_params_metrics_dataset_inputs_and_lineage_tags(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    record = steps["worse"].record
    run = client.get_run(record["run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["train.model"] == "random_forest"
    assert params["train.n_estimators"] == "1" and params["train.max_depth"] == "1"
    assert params["prepare.valid_size"] == "0.2" and params["evaluate.cv_folds"] == "2"
    assert metrics["valid_roc_auc"] == pytest.approx(record["gate"]["candidate"])
    assert {"valid_accuracy", "valid_log_loss", "cv_accuracy_mean", "cv_brier_std"} <= set(metrics)
    assert tags["git_commit"] and tags["dvc_data_hash"].endswith(".dir")
    assert tags["model_family"] == "random_forest" and "dvc_exp_name" not in tags
    inputs = {
        (d.dataset.name, {t.key: t.value for t in d.tags}.get("mlflow.data.context"))
        for d in run.inputs.dataset_inputs
    }
    assert inputs == {("titanic-train", "training"), ("titanic-validation", "validation")}
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "titanic"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics", "plots"} <= artifacts


def test_each_pipeline_run_is_one_mlflow_run(gate_run):
    uri, steps = gate_run
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("titanic")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(s.record["run_id"] for s in steps.values())


def test_the_champion_loads_from_the_registry_and_predicts(gate_run, article_request):
    import pandas as pd

    uri, _ = gate_run
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/titanic@champion")
    finally:
        mlflow.set_tracking_uri(None)
    assert model.metadata.run_id
    predictions = model.predict(pd.DataFrame(article_request))
    assert list(predictions) in ([1, 1], [1, 0])
    assert json.dumps([int(p) for p in predictions])
    assert Path(uri.removeprefix("sqlite:///")).exists()
