"""The champion behind BentoML 1.4 with adaptive batching, as `make bench` runs it.

Run by .venv-bentoml's `bentoml serve bench.bentoml_service:Titanic` (never imported by this
project's own code). The model directory and worker count come from the environment. Rows arrive
as a list of records so that BentoML can batch them (its DataFrame batching failed in 1.4.40);
the batch is one DataFrame for MLflow's pyfunc, as `mlflow models serve` would predict it.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "2")))
class Titanic:
    def __init__(self) -> None:
        import mlflow

        self.model = mlflow.pyfunc.load_model(os.environ["BENCH_MODEL_DIR"])

    # max_batch_size above the 100-row case: BentoML refuses a request bigger than a batch.
    @bentoml.api(batchable=True, max_batch_size=128)
    def predict(self, rows: list[dict[str, Any]]) -> list[int]:
        import pandas as pd

        return [int(label) for label in self.model.predict(pd.DataFrame(rows))]
