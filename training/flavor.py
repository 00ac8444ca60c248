"""The registered model's files: the sklearn flavor, and a python_function flavor on the fast path.

`log_model` logs the fitted pipeline as `mlflow.sklearn.log_model` does (the same `Model.log`:
a LoggedModel, its registration, signature, input example, requirements, the training code), by
`save_model` below: it lets `mlflow.sklearn.save_model` write the directory (the skops file with
exactly its trusted types, never a pickle; `extra_files/model.onnx`; `code/`), then, when the
model has an ONNX fast path, ships that path's runtime in `code/fast_runtime/` and points the
python_function flavor's `loader_module` at `training.pyfunc_loader` instead of `mlflow.sklearn`.
So `mlflow.sklearn.load_model` still returns the Pipeline, and every pyfunc consumer runs the
fast path, self-checked, or falls back to the pipeline.

Why a loader module and not models-from-code (`python_model` given as a file): the loader module
is one line of MLmodel on top of MLflow's own sklearn layout, so the sklearn flavor and its skops
file stay what they are (models-from-code writes a python_function-only model whose files are
"artifacts", and runs a script at load), and the line can be put back: `plain_copy` (`python -m
training.flavor plain URI DIR`) writes a copy whose pyfunc is the plain scikit-learn pipeline, as
every version registered before the fast flavor served it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow.models import Model
from mlflow.models.model import ModelInfo
from sklearn.pipeline import Pipeline

import training
from serving.model import fast
from training import pyfunc_loader
from training.config import REPO_ROOT
from training.pipeline import SKOPS_TRUSTED_TYPES
from training.tracking import tracking_uri

MLMODEL = "MLmodel"
PYFUNC = "python_function"
FAST_LOADER = pyfunc_loader.__name__  # the fast flavor: training.pyfunc_loader
PLAIN_LOADER = mlflow.sklearn.__name__  # MLflow's own sklearn pyfunc
# The fast path's runtime, as a package under code/fast_runtime/: the artifact's format and the
# runtime that loads, checks and runs it, the very files our server runs (they import only the
# standard library, numpy, onnxruntime and each other), and the two package markers.
RUNTIME_FILES = (
    "__init__.py",
    "model/__init__.py",
    "model/onnx_format.py",
    "model/fast.py",
)


def copy_runtime(directory: Path) -> Path:
    """`directory/fast_runtime/serving/...`: this repo's RUNTIME_FILES, byte for byte."""
    source = Path(fast.__file__).resolve().parents[1]  # the `serving` package
    root = directory / pyfunc_loader.RUNTIME_DIR
    for name in RUNTIME_FILES:
        target = root / "serving" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    return root


def save_model(
    path: str,
    mlflow_model: Model,
    sk_model: Pipeline,
    onnx_file: str | None = None,
    serialization_format: str = "skops",
    **kwargs: Any,
) -> None:
    """`Model.log`'s flavor entry point: the sklearn layout (skops, this repo's `training` as the
    code), plus the fast python_function flavor when `onnx_file` (the compiled fast path) is
    given. `kwargs` go to `mlflow.sklearn.save_model`; skops is the only serialization."""
    if serialization_format != "skops":
        raise ValueError(f"the model is saved with skops, never {serialization_format!r}")
    with tempfile.TemporaryDirectory() as scratch:
        code_paths = [str(Path(training.__file__).parent)]
        if onnx_file is not None:
            code_paths.append(str(copy_runtime(Path(scratch))))
        mlflow.sklearn.save_model(
            sk_model,
            path,
            mlflow_model=mlflow_model,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            code_paths=code_paths,
            extra_files=[onnx_file] if onnx_file is not None else None,
            **kwargs,
        )
    if onnx_file is not None:
        mlflow_model.flavors[PYFUNC]["loader_module"] = FAST_LOADER
        mlflow_model.save(str(Path(path) / MLMODEL))


def log_model(
    sk_model: Pipeline, onnx_file: str | None, registered_model_name: str, **kwargs: Any
) -> ModelInfo:
    """Log (and register) the fitted pipeline as `name="model"`, on the fast flavor when
    `onnx_file` is given. `kwargs`: Model.log's and mlflow.sklearn.save_model's (signature,
    input_example, pip_requirements, tags, metadata, ...)."""
    return Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        sk_model=sk_model,
        onnx_file=onnx_file,
        serialization_format="skops",  # Model.log records it on the LoggedModel
        **kwargs,
    )


def set_loader(model_dir: Path, loader_module: str) -> None:
    """Point the python_function flavor of the model in `model_dir` at `loader_module`."""
    mlmodel = Model.load(str(model_dir / MLMODEL))
    mlmodel.flavors[PYFUNC]["loader_module"] = loader_module
    mlmodel.save(str(model_dir / MLMODEL))


def plain_copy(model_uri: str, output: Path) -> Path:
    """The model at `model_uri` (a models:/ URI, or a local model directory) copied to `output`
    with its python_function flavor on the plain scikit-learn pipeline (`mlflow.sklearn`'s own
    loader): what `mlflow models serve` ran before the fast flavor. Returns `output`."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=scratch))
        if not (local / MLMODEL).is_file():
            raise ValueError(f"{model_uri} is not a model directory (no {MLMODEL})")
        shutil.copytree(local, output)
    set_loader(output, PLAIN_LOADER)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.flavor",
        description="The registered model's pyfunc flavors.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plain = commands.add_parser(
        "plain",
        help="copy a model with its pyfunc on the plain scikit-learn pipeline (mlflow.sklearn)",
    )
    plain.add_argument("model_uri", help="models:/titanic@champion, models:/titanic/3 or a dir")
    plain.add_argument("output", type=Path, help="a new directory for the copy")
    args = parser.parse_args(argv)
    mlflow.set_tracking_uri(tracking_uri(REPO_ROOT))
    print(f"flavor: {plain_copy(args.model_uri, args.output)} (python_function: {PLAIN_LOADER})")


if __name__ == "__main__":
    main()
