"""DVC stage `train`: fit the Pipeline on the training split and save it with skops."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from training.config import Paths, TrainParams, load_params
from training.pipeline import SKOPS_TRUSTED_TYPES, build_pipeline
from training.schema import TARGET


def fit(train: pd.DataFrame, params: TrainParams) -> Pipeline:
    """Fit a fresh pipeline on labelled raw rows."""
    return build_pipeline(params).fit(train.drop(columns=[TARGET]), train[TARGET])


def canonical_skops(data: bytes) -> bytes:
    """The same skops file with the same bytes for the same model.

    skops names each object by its `id()` (a memory address) and each array file after it, and
    stamps every zip member with the time of writing. Here ids are renumbered in order of first
    appearance, array files named after them, and every member dated 1980-01-01: a fresh clone's
    `dvc repro` gives the model.skops hash that dvc.lock records.
    """
    ids: dict[int, int] = {}
    names: dict[str, str] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    value = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str):
                    suffix = Path(value).suffix
                    value = names.setdefault(value, f"{len(names) + 1:06d}{suffix}")
                else:
                    value = renumber(value)
                out[key] = value
            return out
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = renumber(json.loads(source.read("schema.json")))
        members = {info.filename: source.read(info) for info in source.infolist()}
    if set(members) - {"schema.json"} != set(names):
        raise ValueError("skops file members that its schema does not name")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        entries = [(names[n], members[n]) for n in sorted(names, key=names.get)]
        entries.append(("schema.json", json.dumps(schema, indent=2).encode()))
        for name, content in entries:
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def save_model(model: Pipeline, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_skops(sio.dumps(model)))


def load_model(path: str | object) -> Pipeline:
    """Load a pipeline saved by `main`, trusting only SKOPS_TRUSTED_TYPES."""
    return sio.load(path, trusted=SKOPS_TRUSTED_TYPES)


def main(paths: Paths | None = None) -> None:
    paths = paths or Paths()
    params = load_params(paths.root / "params.yaml").train
    model = fit(pd.read_csv(paths.train_split), params)
    save_model(model, paths.model)
    print(f"train: fitted {params.model} -> {paths.model.relative_to(paths.root)}")


if __name__ == "__main__":
    main()
