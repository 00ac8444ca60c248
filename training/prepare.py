"""DVC stage `prepare`: validate the raw CSVs against the schema, split train/validation."""

from __future__ import annotations

import sys

import pandas as pd
from sklearn.model_selection import train_test_split

from training import schema
from training.config import Paths, PrepareParams, load_params


def read_raw(path: str | object, labelled: bool) -> pd.DataFrame:
    """Read one Kaggle CSV and return it validated (raises schema.RawDataError)."""
    frame = pd.read_csv(path)
    return schema.validate(frame, schema.LABELLED if labelled else schema.UNLABELLED)


def split(frame: pd.DataFrame, params: PrepareParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/validation split of the labelled passengers."""
    train, valid = train_test_split(
        frame,
        test_size=params.valid_size,
        random_state=params.seed,
        stratify=frame[schema.TARGET],
    )
    return train.sort_index(), valid.sort_index()


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    params = load_params(paths.root / "params.yaml").prepare
    try:
        labelled = read_raw(paths.raw_train, labelled=True)
        read_raw(paths.raw_test, labelled=False)
    except schema.RawDataError as exc:
        sys.exit(f"prepare: {exc}")
    train, valid = split(labelled, params)
    paths.train_split.parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(paths.train_split, index=False)
    valid.to_csv(paths.valid_split, index=False)
    print(f"prepare: {len(labelled)} labelled rows valid; {len(train)} train, {len(valid)} valid")


if __name__ == "__main__":
    main()
