"""A fresh `git clone` of the committed HEAD: `dvc pull` exits 0, and `make train` leaves
`git status` clean (same code, data and params: byte-identical outputs, the committed dvc.lock).

The clone sits beside shared/ (the DVC remote is `../../shared/dvc-remote`, relative to .dvc/),
and borrows this repo's venv through a `.venv` symlink (make is told not to rebuild it): the test
is about the pipeline, not about pip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.e2e.repo_copy import DVC, RepoCopy
from tests.processes import VENV_BIN, venv_env
from training.config import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone() -> Iterator[RepoCopy]:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    # an empty directory beside shared/, cloned into: `<root>/.dvc/../../shared` resolves
    root = Path(tempfile.mkdtemp(prefix="fresh-clone-", dir=REPO_ROOT.parent))
    try:
        subprocess.run(
            ["git", "clone", "-q", "--no-checkout", str(REPO_ROOT), str(root)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        env = venv_env(MLFLOW_TRACKING_URI=None, PYTHONPATH=None, DVC_EXP_NAME=None, DVC_ROOT=None)
        copy = RepoCopy(root, env)
        copy.git("checkout", "-q", head)
        yield copy
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dvc_pull_in_a_fresh_clone_exits_0(clone: RepoCopy) -> None:
    done = clone.dvc("pull", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (clone.root / "data" / "raw" / "train.csv").is_file()
    assert not (clone.root / "models" / "model.skops").exists()  # built by dvc repro, not pulled


def test_make_train_in_a_fresh_clone_leaves_git_status_clean(clone: RepoCopy) -> None:
    (clone.root / ".venv").symlink_to(VENV_BIN.parent)
    done = clone.run("make", "-o", ".venv/.installed", "train", timeout=900)
    output = done.stdout + done.stderr
    # evaluate's outputs (metrics, plots) are committed and come out the same: it is skipped
    for stage in ("prepare", "train", "register"):
        assert f"Running stage '{stage}'" in output, output
    assert "is now @champion" in output, output
    for noise in ("Warning", "INFO", "Downloading artifacts"):  # each stage prints its own
        assert noise not in done.stderr, done.stderr
    status = clone.git("status", "--porcelain")
    assert status == "", f"{status}\n--- dvc.lock diff ---\n{clone.git('diff', 'dvc.lock')}"
    client = MlflowClient(tracking_uri=clone.sqlite_uri)
    champion = client.get_model_version_by_alias("titanic", "champion")
    assert champion.tags["git_dirty"] == "false"
    assert champion.tags["git_commit"] == clone.git("rev-parse", "HEAD")
    again = clone.run(DVC, "repro")
    assert "Running stage" not in again.stdout + again.stderr
