"""Training configuration: `params.yaml` validated once, plus the pipeline's file layout."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

REPO_ROOT = Path(__file__).resolve().parent.parent


class Paths(BaseModel):
    """Where each DVC stage reads and writes, relative to a repo root."""

    root: Path = REPO_ROOT

    @property
    def raw_train(self) -> Path:
        return self.root / "data" / "raw" / "train.csv"

    @property
    def raw_test(self) -> Path:
        return self.root / "data" / "raw" / "test.csv"

    @property
    def raw_dvc_file(self) -> Path:
        return self.root / "data" / "raw.dvc"

    @property
    def train_split(self) -> Path:
        return self.root / "data" / "prepared" / "train.csv"

    @property
    def valid_split(self) -> Path:
        return self.root / "data" / "prepared" / "valid.csv"

    @property
    def model(self) -> Path:
        return self.root / "models" / "model.skops"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics" / "metrics.json"

    @property
    def cv_details(self) -> Path:
        return self.root / "metrics" / "cv.json"

    @property
    def registered(self) -> Path:
        return self.root / "models" / "registered.json"

    @property
    def registration(self) -> Path:
        return self.root / "metrics" / "registration.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"


class _Block(BaseModel):
    """One stage's block of params.yaml: a misspelt key is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class PrepareParams(_Block):
    valid_size: float = Field(0.2, gt=0, lt=1)
    seed: int = 42


class TrainParams(_Block):
    model: Literal["random_forest", "gradient_boosting", "logistic_regression"] = "random_forest"
    seed: int = 42
    n_estimators: int = Field(200, ge=1)
    max_depth: int | None = Field(6, ge=1)
    min_samples_leaf: int = Field(2, ge=1)
    max_features: Literal["sqrt", "log2"] | float | None = "sqrt"
    learning_rate: float = Field(0.05, gt=0)
    C: float = Field(1.0, gt=0)


class EvaluateParams(_Block):
    cv_folds: int = Field(5, ge=2)
    cv_repeats: int = Field(10, ge=1)
    confidence: float = Field(0.95, gt=0, lt=1)
    threshold: float = Field(0.5, gt=0, lt=1)


class RegisterParams(_Block):
    model_name: str = "titanic"
    experiment: str = "titanic"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    gate_metric: Literal["roc_auc", "accuracy", "f1"] = "roc_auc"
    gate_margin: float = Field(0.0, ge=0)
    gate_confidence: float = Field(0.95, gt=0.5, lt=1)
    gate_samples: int = Field(2000, ge=100)
    seed: int = 42
    max_latency_ms: float = Field(5.0, gt=0)
    max_model_mb: float = Field(50.0, gt=0)
    max_load_seconds: float = Field(5.0, gt=0)
    allow_uncommitted_champion: bool = False


class Params(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    prepare: PrepareParams = PrepareParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    registry: RegisterParams = Field(RegisterParams(), alias="register")


def load_params(path: Path | None = None) -> Params:
    """Read and validate `params.yaml` (the repo root's unless `path` is given)."""
    path = path or REPO_ROOT / "params.yaml"
    return Params.model_validate(yaml.safe_load(path.read_text()) or {})
