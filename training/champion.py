"""`python -m training.champion`: make sure the registry has a champion, training if it has none;
`python -m training.champion --set 3`: move the champion alias to version 3 (a rollback).

`make serve` calls the first so that a fresh clone (or a fresh registry) serves a model at once,
while an existing champion is never retrained behind the user's back. Both work from any working
directory: the registry is MLFLOW_TRACKING_URI's, else the embedded store at the repo root.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence

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


def set_champion(paths: Paths, version: str) -> str | None:
    """Point the champion alias at `version` of the model; exit with one line if the registry
    has no such version. Returns the version the alias left (None if there was none)."""
    reg = load_params(paths.root / "params.yaml").registry
    uri = tracking_uri(paths.root)
    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_model_version(reg.model_name, version)
    except MlflowException:
        sys.exit(f"champion: {reg.model_name} has no version {version} in {uri}; nothing moved")
    previous = champion_version(paths)
    client.set_registered_model_alias(reg.model_name, reg.champion_alias, version)
    return previous


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.champion",
        description="Make sure the registry has a champion (train if none), or move it.",
    )
    parser.add_argument(
        "--set",
        metavar="VERSION",
        dest="version",
        help="move the champion alias to this version of the model (e.g. roll back to 3)",
    )
    args = parser.parse_args(argv)
    # MLflow logs at INFO that it creates a new sqlite store's tables: not this command's news.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    paths = Paths()
    if args.version is None:
        print(f"champion: version {ensure_champion(paths)}")
        return
    version = args.version.strip()
    if not version:
        parser.error("--set needs a version number")
    previous = set_champion(paths, version)
    print(f"champion: version {version} (was {previous or 'none'})")


if __name__ == "__main__":
    main()
