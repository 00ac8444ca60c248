"""Where a model came from: git commit, DVC hash of the raw data, DVC experiment name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD") or "unknown"


# Files the pipeline itself rewrites while it runs: their changes do not make the code dirty.
PIPELINE_WRITES = ("dvc.lock", "metrics", "plots")


def git_dirty(root: Path) -> bool:
    """Does the tracked code differ from the commit (ignoring what the pipeline writes)?"""
    excludes = [f":(exclude){path}" for path in PIPELINE_WRITES]
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    return bool(status)


def data_hash(dvc_file: Path) -> str:
    """The md5 DVC recorded for the raw data (`data/raw.dvc`)."""
    try:
        outs = yaml.safe_load(dvc_file.read_text())["outs"]
        return str(outs[0]["md5"])
    except (OSError, KeyError, IndexError, TypeError):
        return "unknown"


def lineage_tags(root: Path, dvc_file: Path) -> dict[str, str]:
    tags = {
        "git_commit": git_commit(root),
        "git_dirty": str(git_dirty(root)).lower(),
        "dvc_data_hash": data_hash(dvc_file),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags
