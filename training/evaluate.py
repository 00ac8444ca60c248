"""DVC stage `evaluate`: validation metrics, 5-fold CV on the train split, ROC and confusion."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.model_selection import StratifiedKFold, cross_validate

from training.config import Paths, load_params
from training.pipeline import build_pipeline
from training.schema import TARGET
from training.train import load_model

CV_SCORING = {
    "accuracy": "accuracy",
    "roc_auc": "roc_auc",
    "f1": "f1",
    "log_loss": "neg_log_loss",
    "brier": "neg_brier_score",
}


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Classification metrics from true labels and predicted survival probabilities."""
    predicted = (proba >= threshold).astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "roc_auc": float(metrics.roc_auc_score(y_true, proba)),
        "f1": float(metrics.f1_score(y_true, predicted)),
        "log_loss": float(metrics.log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(metrics.brier_score_loss(y_true, proba)),
    }


def survival_proba(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame.drop(columns=[TARGET], errors="ignore"))[:, 1]


def cross_validation(train: pd.DataFrame, paths: Paths) -> dict[str, float]:
    params = load_params(paths.root / "params.yaml")
    folds = StratifiedKFold(params.evaluate.cv_folds, shuffle=True, random_state=params.train.seed)
    result = cross_validate(
        build_pipeline(params.train),
        train.drop(columns=[TARGET]),
        train[TARGET],
        cv=folds,
        scoring=CV_SCORING,
    )
    summary: dict[str, float] = {}
    for name in CV_SCORING:
        values = result[f"test_{name}"]
        values = -values if CV_SCORING[name].startswith("neg_") else values
        summary[f"{name}_mean"] = float(np.mean(values))
        summary[f"{name}_std"] = float(np.std(values))
    return summary


def write_plots(y_true: np.ndarray, proba: np.ndarray, threshold: float, paths: Paths) -> None:
    paths.plots.mkdir(parents=True, exist_ok=True)
    fpr, tpr, thresholds = metrics.roc_curve(y_true, proba)
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thresholds, 0, 1)})
    roc.to_csv(paths.plots / "roc.csv", index=False)
    confusion = pd.DataFrame({"actual": y_true, "predicted": (proba >= threshold).astype(int)})
    confusion.to_csv(paths.plots / "confusion.csv", index=False)


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    params = load_params(paths.root / "params.yaml").evaluate
    valid = pd.read_csv(paths.valid_split)
    proba = survival_proba(load_model(paths.model), valid)
    y_true = valid[TARGET].to_numpy()
    report = {
        "valid": score(y_true, proba, params.threshold),
        "cv": cross_validation(pd.read_csv(paths.train_split), paths),
    }
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text(json.dumps(report, indent=2) + "\n")
    write_plots(y_true, proba, params.threshold, paths)
    print(
        f"evaluate: valid accuracy {report['valid']['accuracy']:.4f}, "
        f"roc_auc {report['valid']['roc_auc']:.4f}; "
        f"{params.cv_folds}-fold CV accuracy {report['cv']['accuracy_mean']:.4f}"
    )


if __name__ == "__main__":
    main()
