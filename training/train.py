"""DVC stage `train`: fit the Pipeline on the training split and save it with skops."""

from __future__ import annotations

import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from training.config import Paths, TrainParams, load_params
from training.pipeline import SKOPS_TRUSTED_TYPES, build_pipeline
from training.schema import TARGET


def fit(train: pd.DataFrame, params: TrainParams) -> Pipeline:
    """Fit a fresh pipeline on labelled raw rows."""
    return build_pipeline(params).fit(train.drop(columns=[TARGET]), train[TARGET])


def load_model(path: str | object) -> Pipeline:
    """Load a pipeline saved by `main`, trusting only SKOPS_TRUSTED_TYPES."""
    return sio.load(path, trusted=SKOPS_TRUSTED_TYPES)


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    params = load_params(paths.root / "params.yaml").train
    model = fit(pd.read_csv(paths.train_split), params)
    paths.model.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, paths.model)
    print(f"train: fitted {params.model} -> {paths.model.relative_to(paths.root)}")


if __name__ == "__main__":
    main()
