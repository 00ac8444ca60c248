"""A temp copy of this repo, as a fresh clone would be: tracked files, raw data pulled, one commit.

Shared by the training end-to-end tests (real `git`, `dvc pull`, `dvc repro` in the copy).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.processes import VENV_BIN, venv_env
from training.config import REPO_ROOT

DVC = str(VENV_BIN / "dvc")
PYTHON = str(VENV_BIN / "python")
# The repo's remote URL is relative to .dvc/ (../../shared/dvc-remote): it does not resolve from
# a copy under /tmp, so the copy gets the same remote by absolute path.
DVC_REMOTE = REPO_ROOT.parent / "shared" / "dvc-remote"


@dataclass(frozen=True)
class RepoCopy:
    root: Path
    env: dict[str, str]  # the environment every command in the copy runs with

    def run(
        self, *command: str, timeout: float = 600, check: bool = True, env: Mapping | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` in the copy; on failure the error shows its output."""
        done = subprocess.run(
            list(command),
            cwd=self.root,
            env=dict(env) if env is not None else self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {done.returncode}\n"
                f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
            )
        return done

    def dvc(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return self.run(DVC, *args, **kwargs)

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout.strip()

    def timed(self, *command: str, **kwargs) -> tuple[subprocess.CompletedProcess[str], float]:
        start = time.monotonic()
        done = self.run(*command, **kwargs)
        return done, time.monotonic() - start

    @property
    def sqlite_uri(self) -> str:
        """The copy's embedded MLflow store (what `tracking_uri` picks with the env var unset)."""
        return f"sqlite:///{self.root / 'mlflow.db'}"


def tracked_files(repo: Path = REPO_ROOT) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in listed.split("\0") if name]


def make_repo_copy(
    destination: Path,
    *,
    tracking_uri: str | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
) -> RepoCopy:
    """Copy the tracked files (working state) to `destination`, pull the raw data, commit.

    `tracking_uri` becomes MLFLOW_TRACKING_URI for every command (None: unset, the embedded
    default). `params` overrides keys of params.yaml before the commit ({"train": {...}}).
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in tracked_files():
        source = REPO_ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    if params:
        path = destination / "params.yaml"
        current = yaml.safe_load(path.read_text())
        for block, values in params.items():
            current.setdefault(block, {}).update(values)
        path.write_text(yaml.safe_dump(current, sort_keys=False))

    env = venv_env(
        MLFLOW_TRACKING_URI=tracking_uri, PYTHONPATH=None, DVC_EXP_NAME=None, DVC_ROOT=None
    )
    copy = RepoCopy(destination, env)
    copy.git("init", "-q", "-b", "main")
    copy.git("config", "user.email", "e2e@example.com")
    copy.git("config", "user.name", "e2e tests")
    copy.git("config", "core.hooksPath", "/dev/null")
    copy.dvc("remote", "modify", "--local", "storage", "url", str(DVC_REMOTE))
    copy.dvc("pull", "--quiet", "data/raw.dvc")
    copy.git("add", "--all")
    copy.git("commit", "-q", "-m", "copy of the repo under test")
    return copy
