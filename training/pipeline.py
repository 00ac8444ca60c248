"""Build the one scikit-learn Pipeline (features -> encoding -> classifier) from params."""

from __future__ import annotations

from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.config import TrainParams
from training.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    VOCABULARY,
    PassengerFeatures,
)

# Every type skops must trust to load the fitted pipeline, and nothing more (no pickle).
SKOPS_TRUSTED_TYPES = [
    "training.features.PassengerFeatures",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
]


# Survival may only fall as the class number rises (1st -> 3rd), other things equal.
MONOTONIC = {"Pclass": -1}


def monotonic_constraints() -> list[int]:
    """One entry per encoded column (numeric features, then each vocabulary's one-hot columns)."""
    columns = NUMERIC_FEATURES + [
        f"{feature}={value}" for feature in CATEGORICAL_FEATURES for value in VOCABULARY[feature]
    ]
    return [MONOTONIC.get(column, 0) for column in columns]


def build_classifier(params: TrainParams) -> ClassifierMixin:
    if params.model == "random_forest":
        return RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
            max_features=params.max_features,
            monotonic_cst=monotonic_constraints(),
            random_state=params.seed,
            n_jobs=1,
        )
    if params.model == "gradient_boosting":
        return GradientBoostingClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth or 3,
            min_samples_leaf=params.min_samples_leaf,
            learning_rate=params.learning_rate,
            random_state=params.seed,
        )
    return LogisticRegression(C=params.C, max_iter=2000, random_state=params.seed)


def build_pipeline(params: TrainParams) -> Pipeline:
    """An unfitted Pipeline that takes raw passenger rows and predicts survival."""
    numeric = [("impute", SimpleImputer(strategy="median"))]
    if params.model == "logistic_regression":
        numeric.append(("scale", StandardScaler()))
    encode = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric), NUMERIC_FEATURES),
            (
                "categorical",
                OneHotEncoder(
                    categories=[VOCABULARY[f] for f in CATEGORICAL_FEATURES],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                CATEGORICAL_FEATURES,
            ),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline(
        [
            ("features", PassengerFeatures()),
            ("encode", encode),
            ("classifier", build_classifier(params)),
        ]
    )
