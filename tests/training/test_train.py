"""train.py: the saved model is the same bytes for the same data and params, and loads back."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd

from tests.processes import venv_env
from training.config import REPO_ROOT, TrainParams
from training.schema import TARGET
from training.train import canonical_skops, fit, load_model, save_model

SAVE = """
import sys
import pandas as pd
from pathlib import Path
from training.config import TrainParams
from training.train import fit, save_model
train = pd.read_csv(sys.argv[1])
save_model(fit(train, TrainParams(model=sys.argv[3], n_estimators=5)), Path(sys.argv[2]))
"""


def save_in_a_fresh_interpreter(csv, out, model: str) -> bytes:
    """Memory addresses differ between processes: the case a fresh clone meets."""
    subprocess.run(
        [sys.executable, "-c", SAVE, str(csv), str(out), model],
        cwd=REPO_ROOT,
        env=venv_env(PYTHONPATH=str(REPO_ROOT)),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


def test_two_processes_save_byte_identical_models(tmp_path, raw_train: pd.DataFrame):
    csv = tmp_path / "train.csv"
    raw_train.head(300).to_csv(csv, index=False)
    for model in ("random_forest", "logistic_regression"):
        first = save_in_a_fresh_interpreter(csv, tmp_path / "a.skops", model)
        second = save_in_a_fresh_interpreter(csv, tmp_path / "b.skops", model)
        assert first == second, model
        with zipfile.ZipFile(io.BytesIO(first)) as archive:
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_canonical_file_loads_as_the_model(tmp_path, raw_train: pd.DataFrame):
    model = fit(raw_train, TrainParams(n_estimators=10))
    path = tmp_path / "model.skops"
    save_model(model, path)
    loaded = load_model(path)
    frame = raw_train.drop(columns=[TARGET])
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert loaded.named_steps["features"].state_ == model.named_steps["features"].state_
    assert canonical_skops(path.read_bytes()) == path.read_bytes()  # idempotent
