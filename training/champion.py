"""`python -m training.champion`: make sure the registry has a champion, training if it has none.

`make serve` calls this so that a fresh clone (or a fresh registry) serves a model at once, while
an existing champion is never retrained behind the user's back.
"""

from __future__ import annotations

import subprocess
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training.config import Paths, load_params
from training.tracking import tracking_uri


def champion_version(paths: Paths) -> str | None:
    """The version the champion alias points at, or None if there is none."""
    reg = load_params(paths.root / "params.yaml").registry
    client = MlflowClient(tracking_uri=tracking_uri(paths.root))
    try:
        return client.get_model_version_by_alias(reg.model_name, reg.champion_alias).version
    except MlflowException:
        return None


def ensure_champion(paths: Paths) -> str:
    """Return the champion's version, running the DVC pipeline first if there is none."""
    version = champion_version(paths)
    if version is not None:
        return version
    print("champion: none registered yet; training with `dvc repro`", flush=True)
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=paths.root, check=True)
    version = champion_version(paths)
    if version is None:  # the pipeline was cached: this registry has never seen the model
        subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "register"],
            cwd=paths.root,
            check=True,
        )
        version = champion_version(paths)
    if version is None:
        sys.exit(
            "champion: the pipeline ran but no version earned the champion alias (why: "
            f"{paths.registration.relative_to(paths.root)}; a dirty tree or an experiment "
            "registers a candidate only: commit first, or set register.allow_uncommitted_champion)"
        )
    return version


def main() -> None:
    print(f"champion: version {ensure_champion(Paths())}")


if __name__ == "__main__":
    main()
