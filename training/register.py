"""DVC stage `register`: one MLflow run per real training, a registry version, the champion gate.

The new version takes the `champion` alias only if it beats the current champion on the same
validation split (or there is none); otherwise it becomes the `challenger`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import mlflow
import pandas as pd
from matplotlib import pyplot as plt
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay
from sklearn.pipeline import Pipeline

import training
from training.compile import ONNX_FILE, compile_to_onnx
from training.config import Params, Paths, load_params
from training.evaluate import score, survival_proba
from training.lineage import lineage_tags
from training.pipeline import SKOPS_TRUSTED_TYPES
from training.schema import TARGET
from training.signature import INPUT_SCHEMA, SIGNATURE
from training.tracking import use_experiment
from training.train import load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    promoted: bool
    metric: str
    candidate: float
    champion: float | None
    champion_version: str | None
    reason: str


def input_example(frame: pd.DataFrame) -> pd.DataFrame:
    """A couple of raw rows typed as the signature says."""
    example = frame[INPUT_SCHEMA.input_names()].head(2).copy()
    for column in ("Age", "Fare"):
        example[column] = example[column].astype("float64")
    for column in ("Pclass", "SibSp", "Parch"):
        example[column] = example[column].astype("int64")
    return example.astype({c: object for c in ("Name", "Sex", "Cabin", "Embarked")})


def champion_gate(
    client: MlflowClient, params: Params, candidate_score: float, valid: pd.DataFrame
) -> GateResult:
    """Score the current champion on `valid` and compare it with the candidate's score."""
    reg = params.registry
    metric = reg.gate_metric
    try:
        current = client.get_model_version_by_alias(reg.model_name, reg.champion_alias)
    except MlflowException:
        return GateResult(True, metric, candidate_score, None, None, "no champion yet")
    try:
        model = mlflow.sklearn.load_model(f"models:/{reg.model_name}/{current.version}")
        proba = survival_proba(model, valid)
        champion_score = score(valid[TARGET].to_numpy(), proba, params.evaluate.threshold)[metric]
    except Exception as exc:  # an unloadable champion must not block a working candidate
        return GateResult(
            True, metric, candidate_score, None, str(current.version), f"champion unusable: {exc}"
        )
    promoted = candidate_score > champion_score
    verdict = "beats" if promoted else "does not beat"
    return GateResult(
        promoted,
        metric,
        candidate_score,
        champion_score,
        str(current.version),
        f"{metric} {candidate_score:.4f} {verdict} champion v{current.version} "
        f"({champion_score:.4f}) on the same validation split",
    )


def _log_figures(model: Pipeline, valid: pd.DataFrame, threshold: float) -> None:
    y_true = valid[TARGET].to_numpy()
    proba = survival_proba(model, valid)
    roc = RocCurveDisplay.from_predictions(y_true, proba, name="validation")
    mlflow.log_figure(roc.figure_, "plots/roc.png")
    confusion = ConfusionMatrixDisplay.from_predictions(y_true, (proba >= threshold).astype(int))
    mlflow.log_figure(confusion.figure_, "plots/confusion.png")
    plt.close("all")


def fast_path_files(model: Pipeline, rows: pd.DataFrame, directory: Path) -> tuple[list[str], str]:
    """Compile the ONNX fast path into `directory`: (extra files for log_model, fast_path tag).

    A model family that does not compile (or disagrees with scikit-learn) still registers.
    """
    try:
        onnx_bytes = compile_to_onnx(model, rows.drop(columns=[TARGET], errors="ignore"))
    except Exception as exc:
        log.warning("register: no ONNX fast path for this model: %s", exc)
        return [], "unavailable"
    path = directory / ONNX_FILE
    path.write_bytes(onnx_bytes)
    return [str(path)], "onnx"


def _flat_metrics(report: dict[str, dict[str, float]]) -> dict[str, float]:
    return {
        f"{group}_{name}": value
        for group, values in report.items()
        for name, value in values.items()
    }


# What the logged model needs to load and predict. Left to MLflow, the list is inferred from the
# modules a trial load imports, which adds this project's own distribution (its code ships in the
# model's code/; it is on no index) and pytest (scikit-learn's test helpers, which skops' loader
# imports, import it when it is installed): `mlflow models serve`'s default virtualenv could not
# be built from that.
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


def model_requirements() -> list[str]:
    """MODEL_REQUIREMENTS pinned to the versions that trained the model."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def register(paths: Paths, params: Params) -> dict[str, Any]:
    """Log the trained pipeline as one MLflow run, register it and apply the champion gate."""
    reg = params.registry
    use_experiment(paths.root, reg.experiment)
    client = MlflowClient()
    model = load_model(paths.model)
    train, valid = pd.read_csv(paths.train_split), pd.read_csv(paths.valid_split)
    report = json.loads(paths.metrics.read_text())
    metrics = _flat_metrics(report)
    tags = lineage_tags(paths.root, paths.raw_dvc_file)

    with mlflow.start_run(tags={**tags, "model_family": params.train.model}) as run:
        mlflow.log_params({f"{stage}.{key}": value for stage, block in params.model_dump().items()
                           for key, value in block.items()})  # fmt: skip
        mlflow.log_metrics(metrics)
        for name, frame in (("train", train), ("validation", valid)):
            dataset = mlflow.data.from_pandas(
                frame, source=str(paths.raw_train), name=f"titanic-{name}", targets=TARGET
            )
            mlflow.log_input(dataset, context="training" if name == "train" else "validation")
        mlflow.log_artifact(str(paths.metrics), "metrics")
        mlflow.log_artifacts(str(paths.plots), "plots")
        _log_figures(model, valid, params.evaluate.threshold)
        with tempfile.TemporaryDirectory() as fast_dir:  # ONNX lands in extra_files/model.onnx
            extra_files, fast_path = fast_path_files(
                model, pd.concat([train, valid]), Path(fast_dir)
            )
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=SIGNATURE,
                input_example=input_example(valid),
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                code_paths=[str(Path(training.__file__).parent)],
                pip_requirements=model_requirements(),
                registered_model_name=reg.model_name,
                tags=tags,
                extra_files=extra_files or None,
            )
    version = str(info.registered_model_version)
    for key, value in {**metrics, **tags, "fast_path": fast_path}.items():
        client.set_model_version_tag(reg.model_name, version, key, str(value))

    gate = champion_gate(client, params, report["valid"][reg.gate_metric], valid)
    alias = reg.champion_alias if gate.promoted else reg.challenger_alias
    client.set_registered_model_alias(reg.model_name, alias, version)
    client.set_model_version_tag(reg.model_name, version, "gate", gate.reason)
    return {
        "name": reg.model_name,
        "version": version,
        "alias": alias,
        "run_id": run.info.run_id,
        "model_uri": f"models:/{reg.model_name}/{version}",
        "gate": asdict(gate),
    }


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    outcome = register(paths, load_params(paths.root / "params.yaml"))
    paths.registration.parent.mkdir(parents=True, exist_ok=True)
    paths.registration.write_text(json.dumps(outcome, indent=2) + "\n")
    print(
        f"register: {outcome['name']} version {outcome['version']} is now "
        f"@{outcome['alias']} ({outcome['gate']['reason']})"
    )


if __name__ == "__main__":
    main()
