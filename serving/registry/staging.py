"""Where a model URI points now in MLflow's registry, and a local copy of that version.

The one module that talks to MLflow's registry; it imports MLflow inside its functions. Under
`python -m serving` it runs in the model agent process (serving.registry.agent), so the workers
that answer requests never load MLflow at all. In-process users (tests, batch scoring,
`python -m serving.bake`) call it directly.

A staged version is MLflow's model directory (as `download_artifacts` writes it) plus
`registry.json`, its registry identity (serving.model.identity): the same layout
`python -m serving.bake` writes for an image, so the server loads both the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from serving.config import ALIAS_URI
from serving.model.identity import ModelIdentity, write_identity
from serving.registry.health import ModelNotFound
from serving.tempdirs import owned_temp_dir

VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
KEEP_STAGED = 4  # staged versions kept on disk (a worker may still be serving an older one)
# MLflow retries a failing HTTP call 7 times with a 2 s backoff factor and waits 120 s per call by
# default: minutes per poll against a dead registry. The server lowers both unless they are set.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # no progress bars in the server log
}


def set_mlflow_http_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Low MLflow HTTP retry/timeout defaults for the server process (the user's values win)."""
    environ = os.environ if environ is None else environ
    for key, value in MLFLOW_HTTP_DEFAULTS.items():
        environ.setdefault(key, value)


def watches_alias(model_uri: str) -> bool:
    """Only an alias can move: a fixed version or a path is never polled once loaded."""
    return ALIAS_URI.match(model_uri) is not None


def alias_of(model_uri: str) -> str | None:
    """The alias an alias URI names (models:/titanic@champion -> champion), else None."""
    match = ALIAS_URI.match(model_uri)
    return match["alias"] if match else None


def is_registry_uri(model_uri: str) -> bool:
    """Does this URI name a registry version or alias (which the registry must resolve)?"""
    return bool(ALIAS_URI.match(model_uri) or VERSION_URI.match(model_uri))


def resolve(model_uri: str, tracking_uri: str) -> ModelIdentity:
    """The registered version `model_uri` names now; any other URI resolves to itself."""
    if not is_registry_uri(model_uri):
        return ModelIdentity(model_uri=model_uri, resolved_uri=model_uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if match := ALIAS_URI.match(model_uri):
            mv = client.get_model_version_by_alias(match["name"], match["alias"])
            alias = match["alias"]
        else:
            match = VERSION_URI.match(model_uri)
            assert match is not None
            mv = client.get_model_version(match["name"], match["version"])
            alias = None
    except Exception as exc:
        if not _not_found(exc):
            raise
        raise _what_is_missing(client, model_uri) from exc
    return ModelIdentity(
        model_uri=model_uri,
        resolved_uri=f"models:/{mv.name}/{mv.version}",
        name=mv.name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        source=mv.source,
        tags=dict(mv.tags),
    )


# MLflow's answer when a registered model, alias, version or run does not exist (the alias
# lookup says INVALID_PARAMETER_VALUE on a SQL store, RESOURCE_DOES_NOT_EXIST elsewhere).
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def _not_found(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) in NOT_FOUND_CODES


def _what_is_missing(client: Any, model_uri: str) -> ModelNotFound:
    """Which part of `model_uri` the registry does not have (it answered: not a fault)."""
    match = ALIAS_URI.match(model_uri) or VERSION_URI.match(model_uri)
    assert match is not None
    name = match["name"]
    try:
        client.get_registered_model(name)
    except Exception as exc:
        if _not_found(exc):
            return ModelNotFound(f"the registry has no model named {name!r}")
        raise
    if "alias" in match.groupdict():
        return ModelNotFound(f"model {name!r} has no alias {match['alias']!r} (yet)")
    return ModelNotFound(f"model {name!r} has no version {match['version']}")


def download(resolved: ModelIdentity, tracking_uri: str, output: Path) -> Path:
    """MLflow's model directory for `resolved` in `output` (created), with registry.json."""
    import mlflow

    output.mkdir(parents=True, exist_ok=True)
    # MLflow resolves a registry version's LoggedModel through the global tracking URI,
    # whatever download_artifacts is told: point it at ours.
    mlflow.set_tracking_uri(tracking_uri)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=resolved.resolved_uri,
                dst_path=str(output),
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
        )
    except Exception as exc:
        if _not_found(exc):  # e.g. runs:/<id>/model with no such run
            raise ModelNotFound(f"the registry has nothing at {resolved.resolved_uri}: "
                                f"{str(exc)[:200]}") from exc  # fmt: skip
        raise
    if not (local / "MLmodel").is_file():
        raise FileNotFoundError(f"{resolved.resolved_uri} has no MLmodel file")
    if resolved.version is not None:
        write_identity(local, resolved)
    return local


class StagingArea:
    """A private directory of staged versions: each download in a fresh subdirectory, the
    oldest removed beyond KEEP_STAGED. Removed when the process that made it exits."""

    def __init__(self, root: Path | None = None):
        if root is None:
            root = owned_temp_dir("serving-models-")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def stage(self, resolved: ModelIdentity, tracking_uri: str) -> Path:
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
