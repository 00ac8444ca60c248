"""The plain path: the registered scikit-learn pipeline itself, loaded from its skops file.

Used when a model has no fast path that proves itself. The file is read with skops and exactly
the types the model was logged to trust (its MLmodel says which): nothing is unpickled, and a
model saved as a pickle is refused. The model's own copy of its code (MLflow `code_paths`) goes
on `sys.path` first, as MLflow's loader does, so its custom transformers import. scikit-learn and
pandas are loaded on first use only.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from serving.contract import InputSpec
from serving.model.files import ModelFiles
from serving.model.frame import build_frame, columns_of


class PlainModel:
    """A model directory's scikit-learn pipeline, loaded on first use (thread-safe)."""

    def __init__(self, model_dir: Path, files: ModelFiles):
        self.model_dir, self.files = model_dir, files
        self._lock = threading.Lock()
        self._pipeline: Any = None

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = self._load()
        return self._pipeline

    def _load(self) -> Any:
        files = self.files
        if files.skops_file is None:
            raise ValueError("the model is not saved with skops; this server loads no pickles")
        if files.code_dir:
            code = str(self.model_dir / files.code_dir)
            if code not in sys.path:
                sys.path.insert(0, code)
        import skops.io

        return skops.io.load(
            self.model_dir / files.skops_file, trusted=list(files.skops_trusted_types)
        )

    @property
    def positive_column(self) -> int:
        """The predict_proba column of the class 1 (survived)."""
        classes = [int(c) for c in getattr(self.pipeline, "classes_", [0, 1])]
        return classes.index(1) if 1 in classes else len(classes) - 1

    def predict(
        self, rows: Sequence[Mapping[str, Any]], spec: InputSpec, proba: bool
    ) -> tuple[list[int], list[float] | None]:
        frame = build_frame(spec, *columns_of(rows, spec))
        pipeline = self.pipeline
        labels = [int(label) for label in pipeline.predict(frame)]
        if not proba:
            return labels, None
        probabilities = pipeline.predict_proba(frame)[:, self.positive_column]
        return labels, [float(p) for p in probabilities]
