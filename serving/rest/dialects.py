"""How an error is answered, by the protocol of the path it was sent to: defined once, for the
Flask handlers and the front (serving.rest.front) alike.

- our own endpoints (/predict, the probes, ...): `{"error": {"code", "message", ...details}}`
  (serving.errors), with the error's status;
- MLflow's scoring protocol (/invocations, /ping): `{"error_code": "BAD_REQUEST", "message":
  ...}`, MLflow's own shape (`MlflowException.serialize_as_json`, which MLflow's clients parse),
  never a stack trace; a client's bad input is a 400, as `mlflow models serve` answers it;
- the Open Inference Protocol (V2, every path under /v2): `{"error": "..."}`, the message
  naming the problem; bad input is a 400 there too.

This module imports no web framework.
"""

from __future__ import annotations

from typing import Any

from serving.errors import ApiError

MLFLOW_PATHS = frozenset({"/invocations", "/ping"})
V2_PREFIX = "/v2"

# MLflow's error codes (mlflow.protos.databricks_pb2) by the status we answer with; an error that
# MLflow itself raised keeps its own code (the ApiError's `error_code` detail).
MLFLOW_CODES = {
    400: "BAD_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "RESOURCE_EXHAUSTED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def is_v2(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def is_mlflow(path: str) -> bool:
    return path in MLFLOW_PATHS


def client_status(error: ApiError) -> int:
    """The status in the protocols whose bad input is a 400 (MLflow's, V2): our 422s are 400s."""
    return 400 if error.status == 422 else error.status


def mlflow_code(error: ApiError) -> str:
    own = error.details.get("error_code")
    if isinstance(own, str):
        return own
    status = client_status(error)
    return MLFLOW_CODES.get(status, "BAD_REQUEST" if 400 <= status < 500 else "INTERNAL_ERROR")


def error_answer(error: ApiError, path: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of `error` for a request to `path`."""
    if is_v2(path):
        return client_status(error), {"error": error.message}
    if is_mlflow(path):
        return client_status(error), {"error_code": mlflow_code(error), "message": error.message}
    return error.status, error.body()
