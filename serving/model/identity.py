"""Who a model version is: its registry identity, how it was loaded, and `registry.json`.

`ModelIdentity` is what the registry says of a version (name, version, alias, run id, tags);
`ModelInfo` adds how this process loaded it, and is what /version answers and X-Model-Version
carries. A staged or baked model directory keeps its identity in `registry.json` beside `MLmodel`
(`write_identity`, `read_identity`), so a model loaded from disk, with no registry at hand, still
knows who it is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IDENTITY_FILE = "registry.json"  # beside MLmodel in a staged or baked model directory
IDENTITY_KEYS = ("name", "version", "alias", "run_id", "source", "tags")
LINEAGE_TAGS = ("git_commit", "git_dirty", "dvc_data_hash", "dvc_exp_name")


@dataclass(frozen=True)
class ModelIdentity:
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


@dataclass(frozen=True)
class ModelInfo(ModelIdentity):
    """Who the served model is, and how this process loaded it."""

    loaded_at: float = 0.0
    inference: str = "sklearn"  # "onnx": the fast path; "sklearn": the plain pipeline
    inference_detail: str = ""  # the fast path's self-check, or why there is none
    path: str = ""  # the local model directory it was loaded from

    @property
    def metrics(self) -> dict[str, float]:
        """The training metrics training/register.py copies onto the version as tags."""
        metrics = {}
        for key, value in self.tags.items():
            if key in LINEAGE_TAGS:
                continue
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                metrics[key] = number
        return metrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "resolved_uri": self.resolved_uri,
            "source": self.source,
            "git_commit": self.tags.get("git_commit"),
            "git_dirty": self.tags.get("git_dirty"),
            "dvc_data_hash": self.tags.get("dvc_data_hash"),
            "metrics": self.metrics,
            "tags": self.tags,
            "loaded_at": self.loaded_at,
            "inference": {"path": self.inference, "detail": self.inference_detail},
        }


def write_identity(model_dir: Path, identity: ModelIdentity) -> None:
    """Record `identity` (and the URI it was copied from) beside the model's MLmodel."""
    record = {**identity.identity(), "baked_from": identity.resolved_uri}
    (model_dir / IDENTITY_FILE).write_text(json.dumps(record, indent=2) + "\n")


def read_identity(model_dir: Path) -> dict[str, Any] | None:
    """The identity `write_identity` recorded, as ModelIdentity fields; None if there is none."""
    path = model_dir / IDENTITY_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return {key: saved.get(key) for key in IDENTITY_KEYS} | {"tags": saved.get("tags") or {}}
