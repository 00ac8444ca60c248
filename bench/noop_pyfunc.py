"""The ceiling of `mlflow models serve` itself, for `make bench`: a python_function loader whose
model answers 0 for every row at once, without looking at it.

The bench copies the registered model (its signature, input example and environment stay as they
are, so MLflow parses, checks and answers every request as it does for the real model) and points
the copy's pyfunc at this module (`noop_copy`, which bench/run.py calls). What that server
answers per second is what MLflow's scoring server alone allows, whatever the model does; the
fast flavor's rate is shown as a share of it (bench/peer_goals.py's `flavor_goals`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

LOADER = "noop_pyfunc"  # this file, as the copy's code/ holds it


class NoopModel:
    """`predict(frame) -> zeros`, one int64 per row."""

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        return np.zeros(len(model_input), dtype=np.int64)


def _load_pyfunc(path: str) -> NoopModel:
    """What MLflow's pyfunc calls with the model's data path."""
    return NoopModel()


def noop_copy(model_dir: Path, output: Path) -> Path:
    """A copy of the model directory `model_dir` at `output` whose pyfunc is this module's
    no-op model (this file goes into the copy's code/); returns `output`."""
    from training.flavor import set_loader
    from training.pyfunc_loader import code_dir

    shutil.copytree(model_dir, output)
    shutil.copy(Path(__file__), output / code_dir(output) / f"{LOADER}.py")
    set_loader(output, LOADER)
    return output
