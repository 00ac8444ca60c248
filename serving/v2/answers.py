"""What the V2 endpoints answer, defined once for REST and gRPC: the infer answer, the model's
metadata (its inputs from the signature, by the column kinds' V2 datatypes in serving.contract
KINDS) and the server's.

    {"model_name": "titanic", "model_version": "3", "id": "r1",
     "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 1]},
                 {"name": "probability", "datatype": "FP64", "shape": [2], "data": [0.1, 0.9]}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import metadata as package_metadata
from typing import Any

from serving.contract import InputSpec
from serving.v2.tensors import PREDICT, PROBABILITY

SERVER_NAME = "titanic-serving"
PROTOCOL_VERSION = "2"
PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}  # by ModelInfo.inference
OUTPUT_TYPES = {PREDICT: "INT64", PROBABILITY: "FP64"}


def infer_answer(
    model_name: str,
    version: str | None,
    request_id: str | None,
    outputs: Sequence[str],
    labels: list[int],
    probabilities: list[float] | None,
) -> dict[str, Any]:
    """The infer answer: the outputs asked for, in the order asked, and the request's id."""
    answer: dict[str, Any] = {"model_name": model_name, "model_version": version or ""}
    if request_id is not None:
        answer["id"] = request_id
    data = {PREDICT: labels, PROBABILITY: probabilities}
    answer["outputs"] = [
        {"name": name, "datatype": OUTPUT_TYPES[name], "shape": [len(labels)], "data": data[name]}
        for name in outputs
    ]
    return answer


def model_metadata(
    model_name: str,
    versions: Sequence[str],
    spec: InputSpec,
    inference: str,
    aliases: Mapping[str, str | None],
) -> dict[str, Any]:
    """A model's metadata: its loaded versions (the default's first), one input per signature
    column (shape [-1]: any number of rows), the two outputs, and which alias serves which
    version."""
    return {
        "name": model_name,
        "versions": list(versions),
        "platform": PLATFORMS.get(inference, inference),
        "inputs": [
            {
                "name": column.name,
                "datatype": column.type.v2,
                "shape": [-1],
                "parameters": {"required": column.required},
            }
            for column in spec.columns
        ],
        "outputs": [
            {"name": name, "datatype": kind, "shape": [-1]} for name, kind in OUTPUT_TYPES.items()
        ],
        "parameters": {"aliases": dict(aliases)},
    }


def server_metadata() -> dict[str, Any]:
    """The server's name, its package's version, the protocol extensions it speaks."""
    try:
        version = package_metadata.version(SERVER_NAME)
    except package_metadata.PackageNotFoundError:
        version = "unknown"
    return {"name": SERVER_NAME, "version": version, "extensions": ["binary_tensor_data"]}
