"""The registered model's `python_function` flavor: the ONNX fast path, self-checked, else the
plain pipeline. Wherever MLflow's pyfunc loads the model (`mlflow models serve`, `spark_udf`,
`mlflow models predict`, MLServer's and BentoML's MLflow runtimes, a notebook), this runs it.

The model's MLmodel names this module as the flavor's `loader_module` (training/flavor.py writes
it); MLflow puts the model's own `code/` on `sys.path`, imports this module from there and calls
`_load_pyfunc(model_dir)`. That loads the fast path exactly as our server does
(`serving.model.fast.load_fast_model`: the ONNX graph and the row function from the model's own
files, checked against the registered pipeline's own answers carried in the graph) and falls back
to the fitted scikit-learn pipeline, with a warning that says why, when it does not check out.
Nothing here is a pickle: the pipeline is the sklearn flavor's skops file with its trusted types.

The fast path's runtime (`serving/model/fast.py` and `onnx_format.py`, which import only numpy,
onnxruntime and each other) ships with the model under `code/fast_runtime/`, copied from this
repo when the model is logged. An environment that has its own `serving` package (this repo
installed: our server, its batch engines and their Spark workers) uses that one, so the model's
copy never shadows it; anywhere else (MLflow's own virtualenv, MLServer's, BentoML's) the model's
copy is used.

Importing this module does nothing; it imports neither scikit-learn nor MLflow: the fast path
needs numpy, pandas (pyfunc's input) and onnxruntime only, and scikit-learn is loaded only when
the pipeline is asked for (`get_raw_model`) or serves.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from training.passenger import missing  # the standard library only, like this module

log = logging.getLogger(__name__)

RUNTIME_DIR = "fast_runtime"  # under the model's code/: serving/model/{fast,onnx_format}.py
PROBA_PARAM = "proba"  # params={"proba": True}: labels and P(survived), as /predict?proba=true
LABEL_COLUMN, PROBA_COLUMN = "prediction", "probability"  # the columns answered with proba


def fast_runtime(model_dir: Path) -> ModuleType:
    """`serving.model.fast`: this environment's own if it has a `serving` package, else the
    model's copy (put at the end of sys.path, where it shadows nothing)."""
    if importlib.util.find_spec("serving") is None:
        runtime = str(model_dir / code_dir(model_dir) / RUNTIME_DIR)
        if runtime not in sys.path:
            sys.path.append(runtime)
    from serving.model import fast

    return fast


def code_dir(model_dir: Path) -> str:
    """The python_function flavor's `code` directory (where MLflow copied the code_paths)."""
    from mlflow.models import Model

    conf = Model.load(str(model_dir)).flavors.get("python_function") or {}
    return str(conf.get("code") or "code")


def rows_of(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as dicts of Python scalars, None where a cell is missing: what the
    pipeline's features step derives its features from (`training.features.records`)."""
    names = [str(name) for name in frame.columns]
    return [
        {name: None if missing(value) else value for name, value in zip(names, values, strict=True)}
        for values in frame.to_numpy(dtype=object).tolist()  # one conversion, not one per column
    ]


class TitanicPyfunc:
    """What `mlflow.pyfunc.load_model` wraps: `predict(frame, params)` on the fast path when it
    checked out (else on the pipeline), and `get_raw_model()`, the fitted Pipeline."""

    def __init__(self, model_dir: Path, fast: Any, detail: str):
        self.model_dir = model_dir
        self.fast = fast  # serving.model.fast.FastModel, or None: the pipeline serves
        self.inference = "onnx" if fast is not None else "sklearn"
        self.inference_detail = detail  # the fast path's self-check, or why there is none
        self._pipeline: Any = None
        self._lock = threading.Lock()

    def get_raw_model(self) -> Any:
        """The fitted scikit-learn Pipeline (the sklearn flavor, skops), loaded on first use."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    import mlflow.sklearn

                    self._pipeline = mlflow.sklearn.load_model(str(self.model_dir))
        return self._pipeline

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Labels (int64, one per row), or with `params={"proba": True}` a DataFrame of
        `prediction` and `probability` (of survival) per row."""
        import numpy as np
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        proba = bool((params or {}).get(PROBA_PARAM, False))
        if self.fast is not None:
            labels, probabilities = self.fast.predict(rows_of(frame))
        else:
            pipeline = self.get_raw_model()
            labels = pipeline.predict(frame)
            if proba:
                positive = [int(c) for c in pipeline.classes_].index(1)
                probabilities = pipeline.predict_proba(frame)[:, positive]
        labels = np.asarray(labels, dtype=np.int64)
        if not proba:
            return labels
        return pd.DataFrame(
            {LABEL_COLUMN: labels, PROBA_COLUMN: np.asarray(probabilities, dtype=np.float64)}
        )


def load(model_dir: str | Path) -> TitanicPyfunc:
    """The model in `model_dir` on its fast path if that checks out, else on its pipeline
    (loaded now, so that a model that cannot serve fails here rather than on a request)."""
    model_dir = Path(model_dir)
    try:
        fast, detail = fast_runtime(model_dir).load_fast_model(model_dir)
    except Exception as exc:  # no runtime here (onnxruntime missing, a foreign `serving`, ...)
        fast, detail = None, f"no fast path runtime: {type(exc).__name__}: {str(exc)[:300]}"
    model = TitanicPyfunc(model_dir, fast, detail)
    if fast is None:
        log.warning(
            "%s: predicting with the scikit-learn pipeline, not ONNX: %s", model_dir, detail
        )
        model.get_raw_model()
    return model


def _load_pyfunc(path: str) -> TitanicPyfunc:
    """MLflow's loader-module entry point: `path` is the model directory (the flavor has no
    `data` key)."""
    model_dir = Path(path)
    return load(model_dir if model_dir.is_dir() else model_dir.parent)
