"""evaluate.py: the intervals are computed as documented, on real folds and rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from training.config import EvaluateParams, TrainParams
from training.evaluate import (
    HEADLINE,
    bootstrap_interval,
    cross_validation,
    interval,
    stratified_resamples,
)
from training.schema import TARGET


def test_the_corrected_interval_widens_the_naive_one_by_the_test_share():
    scores = np.array([0.80, 0.82, 0.84, 0.86, 0.78, 0.81, 0.83, 0.85, 0.79, 0.82])
    got = interval(scores, test_share=0.25, confidence=0.95)
    half = stats.t.ppf(0.975, 9) * math.sqrt((1 / 10 + 0.25) * np.var(scores, ddof=1))
    assert got["mean"] == pytest.approx(scores.mean())
    assert got["high"] - got["mean"] == pytest.approx(half)
    assert got["mean"] - got["low"] == pytest.approx(half)
    naive = stats.t.ppf(0.975, 9) * np.std(scores, ddof=1) / math.sqrt(10)
    assert half > 1.8 * naive  # folds overlap: the naive interval is far too narrow


def test_stratified_resamples_keep_each_class_count():
    y = np.array([0] * 7 + [1] * 3)
    samples = list(stratified_resamples(y, 50, seed=1))
    assert len(samples) == 50
    for rows in samples:
        assert (y[rows] == 1).sum() == 3 and (y[rows] == 0).sum() == 7
    again = list(stratified_resamples(y, 50, seed=1))
    assert all((a == b).all() for a, b in zip(samples, again, strict=True))


def test_the_validation_interval_holds_the_value_and_narrows_with_skill():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 179)
    good = np.clip(y * 0.6 + rng.uniform(0, 0.4, 179), 0.01, 0.99)
    report = bootstrap_interval(y, good, 0.5, 0.95, seed=3)
    assert set(report) == set(HEADLINE)
    for name, values in report.items():
        assert values["low"] <= values["value"] <= values["high"], name
    assert report["accuracy"]["low"] > 0.9


def test_cross_validation_reports_every_fold_and_the_gender_rule(raw_train: pd.DataFrame):
    report = cross_validation(
        raw_train, TrainParams(model="logistic_regression"), EvaluateParams(cv_repeats=2)
    )
    assert len(report["accuracy"]["folds"]) == 10
    women = raw_train["Sex"].eq("female") == raw_train[TARGET].eq(1)
    assert report["gender_rule_accuracy"]["mean"] == pytest.approx(women.mean(), abs=0.01)
    difference = np.subtract(report["accuracy"]["folds"], report["gender_rule_accuracy"]["folds"])
    assert report["accuracy_over_gender_rule"]["folds"] == pytest.approx(difference, abs=1e-5)
    for name in ("accuracy", "roc_auc", "log_loss", "f1", "brier"):
        assert report[name]["low"] < report[name]["mean"] < report[name]["high"], name
