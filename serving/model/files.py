"""Read a local MLflow model directory without MLflow: its input signature (with the training
domain logged as the model's metadata), its logged input example and its plain model file
(skops, with the types it trusts).

This is what a serving worker needs to answer /predict on the fast path; MLflow itself is not
loaded for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from serving.contract import InputSpec, parse_batch


@dataclass(frozen=True)
class ModelFiles:
    spec: InputSpec
    example_rows: tuple[dict[str, Any], ...]  # the logged input example, typed like a request
    skops_file: str | None  # the sklearn flavor's skops file, if it is saved with skops
    skops_trusted_types: tuple[str, ...] = ()  # the types that file may hold, as logged
    code_dir: str | None = None  # the model's own copy of its code (MLflow code_paths)


def is_model_dir(model_uri: str) -> bool:
    """Is this model URI a local MLflow model directory (a baked model: no registry)?"""
    return (Path(model_uri) / "MLmodel").is_file()


def read_model_dir(model_dir: Path) -> ModelFiles:
    """Raise (FileNotFoundError, ValueError) when the directory is not a usable model."""
    mlmodel = yaml.load((model_dir / "MLmodel").read_text(), Loader=yaml.CSafeLoader)
    if not isinstance(mlmodel, dict):
        raise ValueError("MLmodel is not a mapping")
    domain = (mlmodel.get("metadata") or {}).get("domain")  # what training saw, if logged
    spec = InputSpec.from_signature_json((mlmodel.get("signature") or {}).get("inputs"), domain)
    flavors = mlmodel.get("flavors") or {}
    flavor = flavors.get("sklearn") or {}
    skops = flavor.get("serialization_format") == "skops" and flavor.get("pickled_model")
    code = flavor.get("code") or (flavors.get("python_function") or {}).get("code")
    return ModelFiles(
        spec=spec,
        example_rows=tuple(example_rows(model_dir, mlmodel, spec)),
        skops_file=skops or None,
        skops_trusted_types=tuple(flavor.get("skops_trusted_types") or ()),
        code_dir=code or None,
    )


def example_rows(model_dir: Path, mlmodel: dict[str, Any], spec: InputSpec) -> list[dict[str, Any]]:
    """The logged input example (a DataFrame saved split- or records-oriented) as typed rows."""
    info = mlmodel.get("saved_input_example_info") or {}
    path = info.get("artifact_path")
    if not path or info.get("type") != "dataframe" or not (model_dir / path).is_file():
        return []
    saved = json.loads((model_dir / path).read_text())
    if isinstance(saved, dict) and "columns" in saved and "data" in saved:
        records = [dict(zip(saved["columns"], values, strict=True)) for values in saved["data"]]
    elif isinstance(saved, list):
        records = saved
    else:
        return []
    return parse_batch(records, spec, max_rows=len(records) + 1).rows
