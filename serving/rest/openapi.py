"""The OpenAPI 3.0 document of this server: `GET /openapi.json`, rendered by `GET /docs`.

Most of the document is fixed and lives beside this module as data (`openapi.json`: every path,
the answers, the error shape). What depends on the served model is built here from its input
signature (`InputSpec`: column names, types by serving.contract's kind table, which are
required, hence which may be null), its logged input example and the server's limits, so the
document describes what this server accepts right now; with no model loaded, columns are left
open.

The document is OpenAPI 3.0.3 (`nullable`), which the bundled Swagger UI 4 renders fully.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response

from serving.config import Settings
from serving.contract import Column, InputSpec
from serving.rest.errors import json_response
from serving.stores import Stores

STATIC = Path(__file__).with_name("openapi.json")


@cache
def static_document() -> dict[str, Any]:
    return json.loads(STATIC.read_text())


def cell_schema(column: Column) -> dict[str, Any]:
    """One value of a column, as the parser accepts it (integers may be sent as 3.0)."""
    schema = dict(column.type.openapi)
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


def example_request(
    spec: InputSpec | None, examples: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """One row in the article's shape: the model's own logged input example where it has one,
    else a plausible value of each column's kind."""
    if spec is None:
        return {"Pclass": {"0": 3}, "Sex": {"0": "male"}}
    row = examples[0] if examples else {}
    return {c.name: {"0": row.get(c.name, c.type.example)} for c in spec.columns}


def v2_example(
    spec: InputSpec | None, examples: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The same row as a V2 infer request: one tensor per column, by its kind's V2 datatype."""
    if spec is None:
        return {"inputs": [{"name": "Pclass", "datatype": "INT64", "shape": [1], "data": [3]}]}
    row = examples[0] if examples else {}
    inputs = [
        {"name": c.name, "datatype": c.type.v2, "shape": [1],
         "data": [row.get(c.name, c.type.example)]}
        for c in spec.columns
    ]  # fmt: skip
    return {"id": "example", "inputs": inputs, "outputs": [{"name": "predict"}]}


def build_document(
    spec: InputSpec | None, settings: Settings, examples: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for a server with this input `spec` and these settings."""
    columns = (
        ", ".join(f"{c.name} ({c.kind}{'' if c.required else ', optional'})" for c in spec.columns)
        if spec
        else "unknown: no model loaded"
    )
    document = copy.deepcopy(static_document())
    document["info"]["description"] = (
        f"Serves the MLflow-registered model `{settings.model_uri}`. Input columns: {columns}. "
        f"Limits: {settings.max_body_bytes} bytes and {settings.max_rows} rows per request. "
        'Every error is JSON: {"error": {"code", "message", ...}}.'
    )
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = predict_request_schema(spec, settings.max_rows)
    body["example"] = example_request(spec, examples)
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    infer["application/json"]["example"] = v2_example(spec, examples)
    return document


def openapi_blueprint(stores: Stores, settings: Settings) -> Blueprint:
    """`GET /openapi.json`: this document, for the model being served now."""
    openapi = Blueprint("openapi", __name__)
    cache: dict[str, Any] = {}

    @openapi.get("/openapi.json")
    def document() -> Response:
        model = stores.default.current
        if cache.get("model", ...) is not model:
            spec = model.spec if model is not None else None
            examples = model.probe_rows if model is not None else ()
            cache.update(model=model, document=build_document(spec, settings, examples))
        return json_response(cache["document"])

    return openapi
