"""One V2 inference, from a decoded request to its answer, for every transport (the REST view,
the predict lane's fast case, gRPC): which store answers (the model by name, a version by its
path), the columns through the same parser, domain rule and model as /predict, the answer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from serving.contract import parse_batch, require_rows
from serving.errors import ApiError
from serving.evidence.hook import observe
from serving.model.loaded import LoadedModel
from serving.store import ModelNotReady, ModelStore
from serving.stores import Stores
from serving.v2.answers import infer_answer, model_metadata
from serving.v2.tensors import PROBABILITY, decode_inputs

REGISTERED_NAME = re.compile(r"^models:/(?P<name>[^/@]+)")


@dataclass(frozen=True)
class Inferred:
    """An answered inference, and what its log line and metrics record."""

    answer: dict[str, Any]
    version: str | None
    labels: list[int]
    unknown: dict[str, int] = field(default_factory=dict)  # optional values outside the domain
    stages: tuple[float, float] = (0.0, 0.0)  # validate, predict: seconds


def served_name(stores: Stores) -> str:
    """The model's name under /v2/models/: the registered model's (titanic)."""
    model = stores.default.current
    if model is not None and model.info.name:
        return model.info.name
    match = REGISTERED_NAME.match(stores.default.model_uri)
    return match["name"] if match else "model"


def pick_store(stores: Stores, name: str, version: str | None = None) -> ModelStore:
    """The store a V2 path names: the default one, or the one whose loaded version is
    `version`; a 404 naming what is served otherwise."""
    served = served_name(stores)
    if name != served:
        raise ApiError(
            "unknown_model",
            f"this server serves the model {served!r}, not {name[:64]!r}",
            status=404,
        )
    return stores.by_version(version) if version else stores.default


def ready_model(store: ModelStore) -> LoadedModel:
    """The store's loaded model, or a 503 saying why there is none."""
    try:
        return store.get()
    except ModelNotReady as exc:
        raise ApiError("model_not_ready", str(exc), status=503) from None


def infer(
    model: LoadedModel, body: Any, max_rows: int, binary: bytes | memoryview = b""
) -> Inferred:
    """A decoded infer request (and its binary tensor data) -> the answer, by `model`."""
    began = time.perf_counter()
    inputs = decode_inputs(body, model.spec, binary)
    batch = require_rows(parse_batch(inputs.columns, model.spec, max_rows))
    validated = time.perf_counter()
    labels, probabilities = model.predict(batch.rows, proba=PROBABILITY in inputs.outputs)
    predicted = time.perf_counter()
    observe(model, batch.rows, labels)  # drift and shadow, off the response path
    name, version = model.info.name or "model", model.info.version
    answer = infer_answer(name, version, inputs.id, inputs.outputs, labels, probabilities)
    stages = (validated - began, predicted - validated)
    return Inferred(answer, version, labels, batch.unknown, stages)


def metadata(stores: Stores, store: ModelStore) -> dict[str, Any]:
    """The metadata of the model `store` serves, listing every loaded version and alias."""
    model = ready_model(store)
    aliases = {
        (s.alias or s.model_uri): (s.current.info.version if s.current is not None else None)
        for s in stores
    }
    versions = stores.versions()
    if model.info.version in versions:  # the one asked for first
        versions.remove(model.info.version)
        versions.insert(0, model.info.version)
    return model_metadata(served_name(stores), versions, model.spec, model.info.inference, aliases)
