"""DVC stage `register`: one MLflow run per real training, a registry version, the champion gate.

The new version takes the `champion` alias only if it passes the gate (training/gate.py: trained
from a committed tree, within the served path's budgets, better than the champion beyond noise on
the validation rows); otherwise it becomes the `challenger`. The outcome, with the figures of
every check, goes to the stage's output, the version's tags and `metrics/registration.json`,
which depends on the registry (version numbers, timings) and so is no DVC output: git ignores
it. The stage's output is `models/registered.json` (`registered_stamp`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.pipeline import Pipeline

from serving.model.fast import load_fast_model
from training import flavor
from training.compile import ONNX_FILE, compile_to_onnx
from training.config import Params, Paths, RegisterParams, load_params
from training.evaluate import survival_proba
from training.features import records
from training.gate import GateResult, budget_checks, committed_check, decide, paired_bootstrap
from training.lineage import lineage_tags
from training.schema import DOMAIN, TARGET
from training.signature import INPUT_SCHEMA, SIGNATURE
from training.tracking import use_experiment
from training.train import load_model

log = logging.getLogger(__name__)

Predict = Callable[[list[dict[str, Any]]], list[float]]


def input_example(frame: pd.DataFrame) -> pd.DataFrame:
    """A couple of raw rows typed as the signature says."""
    example = frame[INPUT_SCHEMA.input_names()].head(2).copy()
    for column in ("Age", "Fare"):
        example[column] = example[column].astype("float64")
    for column in ("Pclass", "SibSp", "Parch"):
        example[column] = example[column].astype("int64")
    return example.astype({c: object for c in ("Name", "Sex", "Cabin", "Embarked", "Ticket")})


def fast_path_file(model: Pipeline, rows: pd.DataFrame, directory: Path) -> str | None:
    """Compile the ONNX fast path into `directory`: its file, or None.

    A model family that does not compile (or disagrees with scikit-learn) still registers, on
    the plain pipeline.
    """
    try:
        onnx_bytes = compile_to_onnx(model, rows.drop(columns=[TARGET], errors="ignore"))
    except Exception as exc:
        log.warning("register: no ONNX fast path for this model: %s", exc)
        return None
    path = directory / ONNX_FILE
    path.write_bytes(onnx_bytes)
    return str(path)


def flat(report: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """{"cv": {"accuracy": {"mean": x}}} -> {"cv_accuracy_mean": x}, and a point estimate
    {"valid": {"accuracy": {"value": y}}} -> {"valid_accuracy": y}; lists are left out."""
    out: dict[str, float] = {}
    for key, value in report.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}_"))
        elif isinstance(value, int | float):
            out[prefix.rstrip("_") if key == "value" else f"{prefix}{key}"] = float(value)
    return out


# What the logged model needs to load and predict. Left to MLflow, the list is inferred from the
# modules a trial load imports, which adds this project's own distribution (its code ships in the
# model's code/; it is on no index) and pytest (scikit-learn's test helpers, which skops' loader
# imports, import it when it is installed): `mlflow models serve`'s default virtualenv could not
# be built from that.
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")
FAST_REQUIREMENTS = ("onnxruntime",)  # the python_function flavor's fast path runs the graph


def model_requirements(fast: bool) -> list[str]:
    """MODEL_REQUIREMENTS (and FAST_REQUIREMENTS for the fast flavor) pinned to the versions
    that trained the model."""
    names = MODEL_REQUIREMENTS + (FAST_REQUIREMENTS if fast else ())
    return [f"{name}=={metadata.version(name)}" for name in names]


def download(model_uri: str, directory: Path) -> Path:
    """The model's files, as a server downloads them."""
    return Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(directory)))


def load_served(model_dir: Path) -> tuple[Predict, str]:
    """What a server serves from `model_dir`: the ONNX fast path when it checks out, else the
    plain pipeline. (P(survived) of contract rows, which path.)"""
    fast, _ = load_fast_model(model_dir)
    if fast is not None:
        return (lambda rows: fast.predict(rows)[1]), "onnx"
    pipeline = mlflow.sklearn.load_model(str(model_dir))
    return (lambda rows: survival_proba(pipeline, pd.DataFrame(rows)).tolist()), "sklearn"


def measure_served_path(
    model_dir: Path, row: dict[str, Any], calls: int = 200, rounds: int = 5
) -> dict[str, Any]:
    """Load time, one-row latency and size on disk of the served path.

    The latency is timed in `rounds` rounds of `calls` after a warm-up: p50 over all of them,
    and p99 as the lowest round's, so that a moment when the machine was busy with something
    else (a CI runner, a test suite) does not count as what the model costs.
    """
    start = time.perf_counter()
    predict, path = load_served(model_dir)
    load_seconds = time.perf_counter() - start
    for _ in range(50):
        predict([row])
    timings = np.empty((rounds, calls))
    for r in range(rounds):
        for i in range(calls):
            start = time.perf_counter()
            predict([row])
            timings[r, i] = time.perf_counter() - start
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    return {
        "path": path,
        "load_seconds": load_seconds,
        "latency_p50_ms": float(np.percentile(timings, 50) * 1e3),
        "latency_p99_ms": float(np.percentile(timings, 99, axis=1).min() * 1e3),
        "size_mb": size / 2**20,
    }


def champion_proba(
    client: MlflowClient, reg: RegisterParams, rows: list[dict[str, Any]], directory: Path
) -> tuple[str | None, np.ndarray | None, str]:
    """(champion version, its P(survived) on `rows` by its own served path, what happened).

    No champion: (None, None, why). A champion that cannot be loaded or scored: (version, None,
    why): the candidate is then compared with nothing.
    """
    try:
        current = client.get_model_version_by_alias(reg.model_name, reg.champion_alias)
    except MlflowException:
        return None, None, "no champion yet"
    version = str(current.version)
    try:
        predict, _ = load_served(download(f"models:/{reg.model_name}/{version}", directory))
        proba = np.asarray(predict(rows), dtype=np.float64)
        if proba.shape != (len(rows),) or not np.isfinite(proba).all():
            raise ValueError(f"{proba.shape} probabilities for {len(rows)} rows, or not finite")
    except Exception as exc:  # an unusable champion must not block a working candidate
        return version, None, f"champion v{version} unusable: {type(exc).__name__}: {exc}"[:500]
    return version, proba, ""


def gate(
    client: MlflowClient,
    params: Params,
    model: Pipeline,
    valid: pd.DataFrame,
    model_uri: str,
    tags: dict[str, str],
) -> tuple[GateResult, dict[str, Any]]:
    """Measure the new version's served path, score the champion, decide. (result, figures)"""
    rows = records(valid.drop(columns=[TARGET]))
    with tempfile.TemporaryDirectory() as directory:
        measured = measure_served_path(download(model_uri, Path(directory) / "new"), rows[0])
        version, theirs, note = champion_proba(
            client, params.registry, rows, Path(directory) / "champion"
        )
    checks = [committed_check(tags, params.registry), *budget_checks(measured, params.registry)]
    comparison = None
    if theirs is not None:
        ours = survival_proba(model, valid)
        y_true = valid[TARGET].to_numpy()
        comparison = paired_bootstrap(
            y_true, ours, theirs, params.registry, params.evaluate.threshold
        )
    return decide(checks, comparison, version, note), measured


def log_datasets(paths: Paths, frames: Mapping[str, pd.DataFrame]) -> None:
    """The train and validation splits as the run's inputs (for lineage only)."""
    with warnings.catch_warnings():
        # MLflow infers each dataset's schema and hints that integer columns cannot hold nulls:
        # that is about model signatures, and the model's is declared (training/signature.py).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        # A local path matches two registered source types; MLflow picks the right one (a
        # local file) and says so on every call.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        for name, frame in frames.items():
            dataset = mlflow.data.from_pandas(
                frame, source=str(paths.raw_train), name=f"titanic-{name}", targets=TARGET
            )
            mlflow.log_input(dataset, context="training" if name == "train" else "validation")


def register(paths: Paths, params: Params) -> dict[str, Any]:
    """Log the trained pipeline as one MLflow run, register it and apply the champion gate."""
    reg = params.registry
    use_experiment(paths.root, reg.experiment)
    client = MlflowClient()
    model = load_model(paths.model)
    train, valid = pd.read_csv(paths.train_split), pd.read_csv(paths.valid_split)
    headline = flat(json.loads(paths.metrics.read_text()))
    details = flat(json.loads(paths.cv_details.read_text()))
    tags = lineage_tags(paths.root, paths.raw_dvc_file)

    with mlflow.start_run(tags={**tags, "model_family": params.train.model}) as run:
        # named as in params.yaml (`register.*`, the alias of Params.registry)
        mlflow.log_params({f"{stage}.{key}": value
                           for stage, block in params.model_dump(by_alias=True).items()
                           for key, value in block.items()})  # fmt: skip
        mlflow.log_metrics({**details, **headline})  # every metric, the intervals included
        log_datasets(paths, {"train": train, "validation": valid})
        mlflow.log_artifact(str(paths.metrics), "metrics")
        mlflow.log_artifact(str(paths.cv_details), "metrics")
        mlflow.log_artifacts(str(paths.plots), "plots")
        with tempfile.TemporaryDirectory() as fast_dir:  # ONNX lands in extra_files/model.onnx
            onnx_file = fast_path_file(model, pd.concat([train, valid]), Path(fast_dir))
            info = flavor.log_model(
                model,
                onnx_file,
                registered_model_name=reg.model_name,
                signature=SIGNATURE,
                input_example=input_example(valid),
                pip_requirements=model_requirements(fast=onnx_file is not None),
                tags=tags,
                metadata={"domain": DOMAIN},  # MLmodel's metadata: what a server validates
            )
        fast_path = "onnx" if onnx_file is not None else "unavailable"
    version = str(info.registered_model_version)
    model_uri = f"models:/{reg.model_name}/{version}"
    for key, value in {**headline, **tags, "fast_path": fast_path}.items():
        client.set_model_version_tag(reg.model_name, version, key, str(value))

    result, measured = gate(client, params, model, valid, model_uri, tags)
    alias = reg.champion_alias if result.promoted else reg.challenger_alias
    client.set_registered_model_alias(reg.model_name, alias, version)
    gate_tags = {
        "gate": result.reason,
        "gate_promoted": str(result.promoted).lower(),
        **{f"gate_{c.name}": f"{'pass' if c.passed else 'fail'}: {c.detail}"
           for c in result.checks},
        **{f"served_{key}": f"{value:.4g}" if isinstance(value, float) else value
           for key, value in measured.items()},
    }  # fmt: skip
    for key, value in gate_tags.items():
        client.set_model_version_tag(reg.model_name, version, key, str(value)[:5000])
    return {
        "name": reg.model_name,
        "version": version,
        "alias": alias,
        "run_id": run.info.run_id,
        "model_uri": model_uri,
        "served": measured,
        "gate": result.record(),
    }


def registered_stamp(paths: Paths, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's DVC output: what was registered, without anything the registry decides
    (version, run id, alias, timings), so the same model gives the same bytes. A workspace that
    has not registered this model (a fresh clone) lacks the file, and `dvc repro` runs the stage.
    """
    return {
        "name": outcome["name"],
        "model_md5": hashlib.md5(paths.model.read_bytes()).hexdigest(),
        "served_path": outcome["served"]["path"],
    }


def main(paths: Paths | None = None) -> None:
    # The stage downloads two models to measure and score them: no progress bars in its output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow logs at INFO that it creates a new sqlite store's tables: not this stage's news.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    paths = paths or Paths()
    outcome = register(paths, load_params(paths.root / "params.yaml"))
    paths.registration.parent.mkdir(parents=True, exist_ok=True)
    paths.registration.write_text(json.dumps(outcome, indent=2) + "\n")
    paths.registered.write_text(json.dumps(registered_stamp(paths, outcome), indent=2) + "\n")
    print(
        f"register: {outcome['name']} version {outcome['version']} is now "
        f"@{outcome['alias']} ({outcome['gate']['reason']})"
    )
    for check in outcome["gate"]["checks"]:
        print(f"register:   {'pass' if check['passed'] else 'FAIL'} {check['name']}: "
              f"{check['detail']}")  # fmt: skip


if __name__ == "__main__":
    main()
