"""The registry side of serving: where a model URI points now, and a local copy of that version.

This is the only serving module that talks to MLflow's registry, and it imports MLflow inside
its functions: under `python -m serving` it runs in the model agent process (serving.agent), so
the workers that answer requests never load MLflow at all. In-process users (tests, batch
scoring, `python -m serving.bake`) call it directly.

A staged version is MLflow's model directory (as `download_artifacts` writes it) plus
`registry.json`, its registry identity: the same layout `python -m serving.bake` writes for an
image, so the server loads both the same way (serving.model_files).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.tempdirs import owned_temp_dir

ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
IDENTITY_FILE = "registry.json"  # beside MLmodel in a staged or baked model directory
IDENTITY_KEYS = ("name", "version", "alias", "run_id", "source", "tags")
KEEP_STAGED = 4  # staged versions kept on disk (a worker may still be serving an older one)


@dataclass(frozen=True)
class Resolved:
    """A model URI resolved in the registry: which version (if any) and its identity."""

    model_uri: str  # as configured, e.g. models:/titanic@champion
    resolved_uri: str  # what to download, e.g. models:/titanic/3
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in IDENTITY_KEYS}


def is_registry_uri(model_uri: str) -> bool:
    """Does this URI name a registry version or alias (which the registry must resolve)?"""
    return bool(ALIAS_URI.match(model_uri) or VERSION_URI.match(model_uri))


def resolve(model_uri: str, tracking_uri: str) -> Resolved:
    """The registered version `model_uri` names now; any other URI resolves to itself."""
    if not is_registry_uri(model_uri):
        return Resolved(model_uri=model_uri, resolved_uri=model_uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if match := ALIAS_URI.match(model_uri):
        mv = client.get_model_version_by_alias(match["name"], match["alias"])
        alias = match["alias"]
    else:
        match = VERSION_URI.match(model_uri)
        assert match is not None
        mv = client.get_model_version(match["name"], match["version"])
        alias = None
    return Resolved(
        model_uri=model_uri,
        resolved_uri=f"models:/{mv.name}/{mv.version}",
        name=mv.name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        source=mv.source,
        tags=dict(mv.tags),
    )


def download(resolved: Resolved, tracking_uri: str, output: Path) -> Path:
    """MLflow's model directory for `resolved` in `output` (created), with registry.json."""
    import mlflow

    output.mkdir(parents=True, exist_ok=True)
    # MLflow resolves a registry version's LoggedModel through the global tracking URI,
    # whatever download_artifacts is told: point it at ours.
    mlflow.set_tracking_uri(tracking_uri)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=resolved.resolved_uri,
            dst_path=str(output),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    )
    if not (local / "MLmodel").is_file():
        raise FileNotFoundError(f"{resolved.resolved_uri} has no MLmodel file")
    if resolved.version is not None:
        identity = {**resolved.identity(), "baked_from": resolved.resolved_uri}
        (local / IDENTITY_FILE).write_text(json.dumps(identity, indent=2) + "\n")
    return local


class StagingArea:
    """A private directory of staged versions: each download in a fresh subdirectory, the
    oldest removed beyond KEEP_STAGED. Removed when the process that made it exits."""

    def __init__(self, root: Path | None = None):
        if root is None:
            root = owned_temp_dir("serving-models-")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def stage(self, resolved: Resolved, tracking_uri: str) -> Path:
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{resolved.name or 'model'}-{resolved.version}")
        target = Path(tempfile.mkdtemp(prefix=f"{label}-{time.time_ns()}-", dir=self.root))
        try:
            local = download(resolved, tracking_uri, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self._prune(keep=target)
        return local

    def _prune(self, keep: Path) -> None:
        staged = sorted(
            (p for p in self.root.iterdir() if p.is_dir() and p != keep),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for old in staged[: max(0, len(staged) - (KEEP_STAGED - 1))]:
            shutil.rmtree(old, ignore_errors=True)
