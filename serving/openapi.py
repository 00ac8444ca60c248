"""The OpenAPI 3.0 document of this server, built from code: `GET /openapi.json`, `GET /docs`.

`build_document(spec, settings)` is the single source: /openapi.json answers it and the /docs
page (Swagger UI, see serving.docs) renders it. The /predict and /invocations request schemas are
built from the served model's input signature (`InputSpec`: column names, types, which are
required, hence which may be null) and the server's limits (`max_rows`), so the document
describes what this server accepts right now; with no model loaded, columns are left open.

The document is OpenAPI 3.0.3 (`nullable`), which the bundled Swagger UI 4 renders fully.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from serving.config import Settings
from serving.contract import INT32, INT64, Column, InputSpec
from serving.errors import json_response

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERRORS = {
    400: "The body is not JSON (or is empty), or a query parameter is invalid",
    401: "No bearer token was sent",
    403: "The bearer token is not valid",
    404: "No such resource (or the admin endpoints are disabled)",
    405: "The path exists but not with this method (the Allow header lists the methods)",
    413: "The body is larger than the byte limit, or has more rows than the row limit",
    415: "The Content-Type (or charset) is not one this endpoint reads",
    422: "The body is JSON but does not fit the model's input signature",
    503: "No model is loaded (yet): the message says why",
    504: "The request took longer than the server's request timeout",
}

CELL = {
    "long": {"type": "integer", "format": "int64", "minimum": INT64[0], "maximum": INT64[1]},
    "integer": {"type": "integer", "format": "int32", "minimum": INT32[0], "maximum": INT32[1]},
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
}


def cell_schema(column: Column) -> dict[str, Any]:
    """One value of a column, as the parser accepts it (integers may be sent as 3.0)."""
    schema = dict(CELL[column.kind])
    if schema["type"] == "integer":  # what the parser does with 3.0 (and 1e19)
        schema["x-note"] = "a number with no fraction counts as an integer up to 2**53"
    if column.required:
        schema["description"] = f"{column.name} ({column.kind}), required"
    else:
        schema["nullable"] = True
        schema["description"] = f"{column.name} ({column.kind}), optional: null or absent"
    return schema


def predict_request_schema(spec: InputSpec | None, max_rows: int) -> dict[str, Any]:
    """Column-oriented objects (pandas `orient="columns"` or lists), or an array of records."""
    columns = spec.columns if spec is not None else ()
    required = [c.name for c in columns if c.required]
    by_key = {
        "type": "object",
        "title": "columns",
        "description": "pandas column orient: {column: {row key: value}}; rows are the union of "
        "the row keys, in the order pd.DataFrame(body) gives them; a required column needs a "
        "value at every row key; other columns are ignored but must be objects too",
        "properties": {
            c.name: {
                "type": "object",
                "additionalProperties": cell_schema(c),
                "maxProperties": max_rows,
            }
            for c in columns
        },
        "additionalProperties": {"type": "object", "maxProperties": max_rows},
    }
    lists = {
        "type": "object",
        "title": "column lists",
        "description": "{column: [value, ...]}, every list of the same length (row keys 0, 1, ...)",
        "properties": {
            c.name: {"type": "array", "items": cell_schema(c), "maxItems": max_rows}
            for c in columns
        },
        "additionalProperties": {"type": "array", "maxItems": max_rows},
    }
    records = {
        "type": "array",
        "title": "records",
        "description": "[{column: value, ...}, ...] (row keys 0, 1, ...); other keys are ignored",
        "maxItems": max_rows,
        "items": {
            "type": "object",
            "properties": {c.name: cell_schema(c) for c in columns},
            "additionalProperties": True,
        },
    }
    if required:
        by_key["required"] = lists["required"] = records["items"]["required"] = required
    return {"anyOf": [by_key, lists, records]}


def example_request(spec: InputSpec | None) -> dict[str, Any]:
    examples = {"long": 3, "integer": 3, "double": 22.0, "float": 22.0, "string": "S"}
    known = {
        "Pclass": 3,
        "Sex": "male",
        "Name": "Braund, Mr. Owen Harris",
        "Age": 22.0,
        "SibSp": 1,
        "Parch": 0,
        "Fare": 7.25,
        "Embarked": "S",
        "Cabin": None,
    }
    if spec is None:
        return {"Pclass": {"0": 3}, "Sex": {"0": "male"}}
    return {
        c.name: {"0": known.get(c.name, examples.get(c.kind, True))}
        for c in spec.columns
        if c.name in known or c.kind in examples
    }


def errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"$ref": f"#/components/responses/E{status}"} for status in sorted(statuses)
    }


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def build_document(spec: InputSpec | None, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for a server with this input `spec` and these settings."""
    columns = (
        ", ".join(f"{c.name} ({c.kind}{'' if c.required else ', optional'})" for c in spec.columns)
        if spec
        else "unknown: no model loaded"
    )
    predict_body = predict_request_schema(spec, settings.max_rows)
    model_work = (400, 413, 415, 422, 503, 504)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Titanic survival prediction API",
            "version": "1.0.0",
            "description": "Serves the MLflow-registered model "
            f"`{settings.model_uri}`. Input columns: {columns}. Limits: "
            f"{settings.max_body_bytes} bytes and {settings.max_rows} rows per request. Every "
            'error is JSON: {"error": {"code", "message", ...}}.',
        },
        "tags": [
            {"name": "predict", "description": "Predictions"},
            {"name": "probes", "description": "Liveness, readiness, the served model"},
            {"name": "operations", "description": "Metrics, documentation and admin"},
        ],
        "paths": {
            "/predict": {
                "post": {
                    "tags": ["predict"],
                    "operationId": "predict",
                    "summary": "Predict survival for a batch of passengers",
                    "description": "The body is a pandas column-oriented JSON object (as "
                    "`DataFrame.to_json(orient='columns')` writes), an object of equal-length "
                    "column lists, or an array of records. Values are typed by the model's "
                    "signature: integers (3.0 counts as 3), finite numbers, strings; optional "
                    "columns take null. Answers one prediction per row, in the row order of "
                    "`pd.DataFrame(body)`, with the row keys as `index`.",
                    "parameters": [
                        {
                            "name": "proba",
                            "in": "query",
                            "required": False,
                            "description": "also answer the survival probability of each row",
                            "schema": {"type": "boolean", "default": False},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": predict_body, "example": example_request(spec)}
                        },
                    },
                    "responses": {
                        "200": json_body(
                            {"$ref": "#/components/schemas/Prediction"},
                            "One prediction per row",
                        ),
                        **errors(*model_work),
                    },
                }
            },
            "/invocations": {
                "post": {
                    "tags": ["predict"],
                    "operationId": "invocations",
                    "summary": "MLflow scoring protocol (as `mlflow models serve`)",
                    "description": "JSON with exactly one of `dataframe_split`, "
                    "`dataframe_records`, `instances`, `inputs` (and optional `params`), or "
                    "`text/csv` with a header row. Parsed by MLflow's own scoring-server code "
                    "against the model's signature.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": {"$ref": "#/components/schemas/ScoringRequest"}},
                            "text/csv": {"schema": {"type": "string", "minLength": 1}},
                        },
                    },
                    "responses": {
                        "200": json_body(
                            {
                                "type": "object",
                                "required": ["predictions"],
                                "properties": {"predictions": {"type": "array", "items": {}}},
                            },
                            'MLflow\'s answer: {"predictions": [...]}',
                        ),
                        **errors(*model_work),
                    },
                }
            },
            "/health": {
                "get": {
                    "tags": ["probes"],
                    "operationId": "health",
                    "summary": "Liveness: the process answers (with or without a model)",
                    "responses": {
                        "200": json_body(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string", "enum": ["alive"]}},
                            },
                            "Alive",
                        )
                    },
                }
            },
            "/ready": {
                "get": {
                    "tags": ["probes"],
                    "operationId": "ready",
                    "summary": "Readiness: a model is loaded and answers its own input example",
                    "responses": {
                        "200": json_body({"$ref": "#/components/schemas/Readiness"}, "Ready"),
                        "503": json_body(
                            {"$ref": "#/components/schemas/Readiness"},
                            "Not ready: `reason` says why",
                        ),
                    },
                }
            },
            "/version": {
                "get": {
                    "tags": ["probes"],
                    "operationId": "version",
                    "summary": "The served model: registry name, version, lineage, metrics",
                    "responses": {
                        "200": json_body({"$ref": "#/components/schemas/ModelInfo"}, "The model"),
                        **errors(503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text exposition format, all workers)",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": json_body({"type": "object"}, "OpenAPI 3.0 document")},
                }
            },
            "/docs": {
                "get": {
                    "tags": ["operations"],
                    "operationId": "docs",
                    "summary": "Interactive documentation of this document (Swagger UI)",
                    "responses": {
                        "200": {
                            "description": "An HTML page (its assets are served by this server)",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/admin/reload": {
                "post": {
                    "tags": ["operations"],
                    "operationId": "adminReload",
                    "summary": "Re-resolve the model URI's alias now; load, check and swap",
                    "description": "Enabled only when the server's environment sets "
                    "SERVING_ADMIN_TOKEN (else 404); send it as `Authorization: Bearer "
                    "<token>`. Retries a version refused before; signals the other workers. "
                    "422: the new version was refused (the old one keeps serving); 503: the "
                    "registry did not answer.",
                    "security": [{"adminToken": []}],
                    "responses": {
                        "200": json_body({"$ref": "#/components/schemas/Reload"}, "Reloaded"),
                        "422": json_body(
                            {"$ref": "#/components/schemas/Reload"}, "The version was refused"
                        ),
                        "503": json_body(
                            {"$ref": "#/components/schemas/Reload"}, "The registry is unreachable"
                        ),
                        **errors(401, 403, 404),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "responses": {
                f"E{status}": json_body(ERROR_REF, description)
                for status, description in ERRORS.items()
            },
            "schemas": SCHEMAS,
        },
    }


NULLABLE_STRING = {"type": "string", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "stable machine-readable name"},
                    "message": {"type": "string", "description": "the problem, for a human"},
                    "column": {"type": "string"},
                    "row": {"type": "string"},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "limit_rows": {"type": "integer"},
                    "limit_bytes": {"type": "integer"},
                    "allowed": {"type": "array", "items": {"type": "string"}},
                },
                "additionalProperties": True,
            }
        },
    },
    "Prediction": {
        "type": "object",
        "required": ["prediction", "index", "model_version"],
        "properties": {
            "prediction": {
                "type": "array",
                "items": {"type": "integer", "enum": [0, 1]},
                "description": "1: survived, 0: did not; one per row",
            },
            "index": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the row keys, in the order of `prediction`",
            },
            "probability": {
                "type": "array",
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                "description": "survival probability per row (only with ?proba=true)",
            },
            "model_version": {**NULLABLE_STRING, "description": "the registry version"},
        },
        "additionalProperties": False,
    },
    "ScoringRequest": {
        "type": "object",
        "description": "exactly one of the four input keys, and optional params",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array", "items": {}}},
                    "index": {"type": "array", "items": {}},
                },
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {},
            "inputs": {},
            "params": {"type": "object"},
        },
        "oneOf": [
            {"required": ["dataframe_split"]},
            {"required": ["dataframe_records"]},
            {"required": ["instances"]},
            {"required": ["inputs"]},
        ],
    },
    "Readiness": {
        "type": "object",
        "required": ["ready"],
        "properties": {
            "ready": {"type": "boolean"},
            "version": NULLABLE_STRING,
            "inference": {"type": "string", "enum": ["onnx", "sklearn"]},
            "reason": {"type": "string"},
        },
    },
    "ModelInfo": {
        "type": "object",
        "required": ["model_uri", "resolved_uri", "name", "version"],
        "properties": {
            "name": NULLABLE_STRING,
            "version": NULLABLE_STRING,
            "alias": NULLABLE_STRING,
            "run_id": NULLABLE_STRING,
            "model_uri": {"type": "string"},
            "resolved_uri": {"type": "string"},
            "source": NULLABLE_STRING,
            "git_commit": NULLABLE_STRING,
            "git_dirty": NULLABLE_STRING,
            "dvc_data_hash": NULLABLE_STRING,
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "loaded_at": {"type": "number"},
            "inference": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
        "additionalProperties": True,
    },
    "Reload": {
        "type": "object",
        "required": ["result"],
        "properties": {
            "result": {
                "type": "string",
                "enum": ["unchanged", "swapped", "refused", "skipped", "unreachable"],
            },
            "version": NULLABLE_STRING,
            "refused": {"type": "object", "nullable": True},
            "registry": {"type": "object", "nullable": True},
            "other_workers": {"type": "string"},
        },
        "additionalProperties": True,
    },
}


def register(app: Flask, settings: Settings, store: Any) -> None:
    """`GET /openapi.json` (this document, for the model being served) and `GET /docs`."""
    from serving.docs import docs_blueprint

    cache: dict[str, Any] = {}

    @app.get("/openapi.json")
    def openapi():
        model = store.current
        spec = model.spec if model is not None else None
        if cache.get("spec", ...) is not spec:
            cache.update(spec=spec, document=build_document(spec, settings))
        return json_response(cache["document"])

    app.register_blueprint(docs_blueprint())
