"""DVC stage `evaluate`: repeated cross-validation with intervals, validation metrics, plots.

The estimate of how the model does on passengers it has never seen is repeated stratified
K-fold on the training split (`evaluate.cv_folds` x `evaluate.cv_repeats`, the whole pipeline
refitted in every fold, the groups' table included), as a mean with a confidence interval.
The folds of repeated CV overlap, so their spread understates the uncertainty: the interval uses
Nadeau and Bengio's corrected variance, (1/n + n_test/n_train) * s^2 over the n fold scores, with
Student's t. The validation split (the champion gate's rows) is scored once, beside it, with a
stratified bootstrap interval over its rows.

`metrics/metrics.json` (what `dvc metrics show` and `dvc exp show` compare) holds accuracy, ROC
AUC and log loss; every metric, each fold's score and the method go to `metrics/cv.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display in a DVC stage

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy import stats
from sklearn import metrics
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay
from sklearn.model_selection import RepeatedStratifiedKFold, cross_validate

from training.config import EvaluateParams, Paths, TrainParams, load_params
from training.pipeline import build_pipeline
from training.schema import TARGET
from training.train import load_model

Metric = Callable[[np.ndarray, np.ndarray, float], float]
# Each metric from (true labels, P(survived), threshold); the gate uses the same functions.
METRICS: dict[str, Metric] = {
    "accuracy": lambda y, p, t: float(metrics.accuracy_score(y, (p >= t).astype(int))),
    "roc_auc": lambda y, p, t: float(metrics.roc_auc_score(y, p)),
    "f1": lambda y, p, t: float(metrics.f1_score(y, (p >= t).astype(int))),
    "log_loss": lambda y, p, t: float(metrics.log_loss(y, p, labels=[0, 1])),
    "brier": lambda y, p, t: float(metrics.brier_score_loss(y, p)),
}
HEADLINE = ("accuracy", "roc_auc", "log_loss")  # metrics.json: what a user compares
CV_SCORING = {
    "accuracy": "accuracy",
    "roc_auc": "roc_auc",
    "f1": "f1",
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
}
VALID_SAMPLES = 2000  # bootstrap resamples of the validation rows, for their intervals
PNG_METADATA = {"Software": None}  # no version string in the bytes: same inputs, same file


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Classification metrics from true labels and predicted survival probabilities."""
    return {name: metric(y_true, proba, threshold) for name, metric in METRICS.items()}


def stratified_resamples(y_true: np.ndarray, samples: int, seed: int) -> Iterator[np.ndarray]:
    """`samples` bootstrap resamples of the row indices, drawn within each class (so every
    resample has both classes and the same balance)."""
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y_true == label) for label in (0, 1)]
    for _ in range(samples):
        yield np.concatenate([rng.choice(index, size=len(index)) for index in classes])


def bootstrap_interval(
    y_true: np.ndarray, proba: np.ndarray, threshold: float, confidence: float, seed: int
) -> dict[str, dict[str, float]]:
    """Each HEADLINE metric on these rows, with its percentile bootstrap interval."""
    draws: dict[str, list[float]] = {name: [] for name in HEADLINE}
    for rows in stratified_resamples(y_true, VALID_SAMPLES, seed):
        for name in HEADLINE:
            draws[name].append(METRICS[name](y_true[rows], proba[rows], threshold))
    tail = (1 - confidence) / 2
    return {
        name: {
            "value": METRICS[name](y_true, proba, threshold),
            "low": float(np.quantile(draws[name], tail)),
            "high": float(np.quantile(draws[name], 1 - tail)),
        }
        for name in HEADLINE
    }


def survival_proba(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame.drop(columns=[TARGET], errors="ignore"))[:, 1]


def interval(scores: np.ndarray, test_share: float, confidence: float) -> dict[str, float]:
    """Mean and the corrected resampled-t interval of repeated-CV fold scores.

    `test_share` is n_test / n_train of one fold (1 / (k - 1) for k folds).
    """
    n = len(scores)
    mean = float(np.mean(scores))
    variance = float(np.var(scores, ddof=1)) if n > 1 else 0.0
    half = stats.t.ppf((1 + confidence) / 2, max(n - 1, 1)) * math.sqrt(
        (1 / n + test_share) * variance
    )
    return {"mean": mean, "low": mean - float(half), "high": mean + float(half)}


def cross_validation(
    train: pd.DataFrame, train_params: TrainParams, params: EvaluateParams
) -> dict[str, Any]:
    """Repeated stratified K-fold of the whole pipeline on `train`: every metric's mean and
    interval, and each fold's score."""
    folds = RepeatedStratifiedKFold(
        n_splits=params.cv_folds, n_repeats=params.cv_repeats, random_state=train_params.seed
    )
    result = cross_validate(
        build_pipeline(train_params),
        train.drop(columns=[TARGET]),
        train[TARGET],
        cv=folds,
        scoring=CV_SCORING,
        return_indices=True,
    )
    test_share = 1 / (params.cv_folds - 1)

    def summary(values: np.ndarray) -> dict[str, Any]:
        return {
            **interval(values, test_share, params.confidence),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "folds": [round(float(v), 6) for v in values],
        }

    report: dict[str, Any] = {}
    for name, scorer in CV_SCORING.items():
        values = result[f"test_{name}"]
        report[name] = summary(-values if scorer.startswith("neg_") else values)
    # "Women survive", on the same folds: what the model must clearly beat.
    women = train["Sex"].eq("female").to_numpy()
    y = train[TARGET].to_numpy()
    rule = np.array([np.mean(women[i] == y[i]) for i in result["indices"]["test"]])
    report["gender_rule_accuracy"] = summary(rule)
    report["accuracy_over_gender_rule"] = summary(result["test_accuracy"] - rule)
    return report


def write_plots(y_true: np.ndarray, proba: np.ndarray, threshold: float, paths: Paths) -> None:
    """ROC and confusion on the validation split: CSVs for DVC's Vega plots, PNGs that need
    no network (also logged with the MLflow run)."""
    paths.plots.mkdir(parents=True, exist_ok=True)
    fpr, tpr, thresholds = metrics.roc_curve(y_true, proba)
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thresholds, 0, 1)})
    roc.to_csv(paths.plots / "roc.csv", index=False)
    predicted = (proba >= threshold).astype(int)
    confusion = pd.DataFrame({"actual": y_true, "predicted": predicted})
    confusion.to_csv(paths.plots / "confusion.csv", index=False)
    figures = {
        "roc.png": RocCurveDisplay.from_predictions(y_true, proba, name="validation").figure_,
        "confusion.png": ConfusionMatrixDisplay.from_predictions(y_true, predicted).figure_,
    }
    for name, figure in figures.items():
        figure.savefig(paths.plots / name, format="png", metadata=PNG_METADATA)
    plt.close("all")


def evaluate(paths: Paths) -> dict[str, Any]:
    """The stage's outputs: (metrics.json's content, cv.json's content); writes the plots."""
    params = load_params(paths.root / "params.yaml")
    threshold = params.evaluate.threshold
    valid = pd.read_csv(paths.valid_split)
    proba = survival_proba(load_model(paths.model), valid)
    y_true = valid[TARGET].to_numpy()
    valid_scores = score(y_true, proba, threshold)
    cv = cross_validation(pd.read_csv(paths.train_split), params.train, params.evaluate)
    write_plots(y_true, proba, threshold, paths)
    headline = {
        "cv": {name: {k: cv[name][k] for k in ("mean", "low", "high")} for name in HEADLINE},
        "valid": bootstrap_interval(
            y_true, proba, threshold, params.evaluate.confidence, params.train.seed
        ),
    }
    details = {
        "method": (
            f"repeated stratified {params.evaluate.cv_folds}-fold x {params.evaluate.cv_repeats} "
            f"on the training split; {params.evaluate.confidence:.0%} corrected resampled-t "
            "interval (Nadeau and Bengio); the validation split's: stratified percentile "
            f"bootstrap of its rows ({VALID_SAMPLES} resamples)"
        ),
        "cv": cv,
        "valid": valid_scores,
    }
    return {"metrics": headline, "details": details}


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    report = evaluate(paths)
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text(json.dumps(report["metrics"], indent=2) + "\n")
    paths.cv_details.write_text(json.dumps(report["details"], indent=2) + "\n")
    cv, valid = report["metrics"]["cv"], report["metrics"]["valid"]
    print(
        f"evaluate: CV accuracy {cv['accuracy']['mean']:.3f} "
        f"[{cv['accuracy']['low']:.3f}, {cv['accuracy']['high']:.3f}], "
        f"ROC AUC {cv['roc_auc']['mean']:.3f}, log loss {cv['log_loss']['mean']:.3f} "
        f"({report['details']['method'].split(' on ')[0]}); validation accuracy "
        f"{valid['accuracy']['value']:.3f} [{valid['accuracy']['low']:.3f}, "
        f"{valid['accuracy']['high']:.3f}], ROC AUC {valid['roc_auc']['value']:.3f}"
    )


if __name__ == "__main__":
    main()
