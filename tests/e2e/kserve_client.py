"""KServe's own Python client (`kserve` 0.21) against a V2 server: run by .venv-kserve's python
(`make .venv-kserve/.installed`; tests/kserve.lock), never imported by the suite, which cannot
import `kserve` beside its own pins (pandas<3, psutil<6). tests/e2e/test_v2_kserve.py runs it.

    .venv-kserve/bin/python tests/e2e/kserve_client.py URL --rows rows.json [--missing Sex]

`rows.json` is an array of records, as /predict takes them (null for a missing value). With
`InferenceRESTClient(RESTConfig(protocol="v2"))` it checks the server's liveness and readiness
and the model's, reads the model's metadata (KServe's REST client has no metadata call: httpx,
the library it sends with, reads `GET /v2` and `GET /v2/models/{name}`), then infers every row,
asking for the `predict` and `probability` outputs, in three forms:

- `tensor`: one InferInput per input of the metadata, of its datatype and shape [rows], the
  values as JSON data (null where a value is missing);
- `binary`: the same inputs from numpy arrays with KServe's default `set_data_from_numpy`, which
  sends them as binary tensor data after the JSON (application/octet-stream with
  Inference-Header-Content-Length); a missing number is NaN, a missing string empty;
- `pd`: the `tensor` inputs with `"parameters": {"content_type": "pd"}` on the request, as
  KServe's clients send a DataFrame (one input per column, shape [rows]).

and sends two bad requests: the rows without the `--missing` column, and a model that is not
served. It prints one JSON object on stdout: the checks, the metadata, each form's answer (as
KServe's client decoded it, with the Content-Type it was sent as) and each error (its type,
HTTP status and message).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.utils.numpy_codec import to_np_dtype

OUTPUTS = ("predict", "probability")
UNKNOWN_MODEL = "no-such-model"


def json_inputs(rows: list[dict[str, Any]], specs: list[dict[str, Any]]) -> list[InferInput]:
    """One InferInput per input of the metadata, its values as JSON data (None: null)."""
    count = len(rows)
    return [
        InferInput(s["name"], [count], s["datatype"], data=[r.get(s["name"]) for r in rows])
        for s in specs
    ]


def missing_as(value: Any, datatype: str) -> Any:
    if value is not None:
        return value
    if datatype == "BYTES":
        return ""  # a binary BYTES element has no null: empty, which the model reads as missing
    if datatype in ("FP16", "FP32", "FP64"):
        return math.nan
    raise SystemExit(f"a {datatype} tensor holds no missing value in binary form")


def binary_inputs(rows: list[dict[str, Any]], specs: list[dict[str, Any]]) -> list[InferInput]:
    """One InferInput per input of the metadata, from a numpy array by KServe's default
    `set_data_from_numpy` (binary_data=True: raw tensor bytes after the JSON)."""
    inputs = []
    for spec in specs:
        name, datatype = spec["name"], spec["datatype"]
        values = [missing_as(r.get(name), datatype) for r in rows]
        if datatype == "BYTES":
            array = np.array([str(v).encode() for v in values], dtype=np.object_)
        else:
            array = np.array(values, dtype=to_np_dtype(datatype))
        tensor = InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


class Recording(httpx.AsyncHTTPTransport):
    """httpx's own transport, noting the Content-Type of each request KServe's client sends."""

    def __init__(self) -> None:
        super().__init__()
        self.content_types: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.content_types.append(request.headers.get("content-type"))
        return await super().handle_async_request(request)


def decoded(response: Any, sent_as: str | None) -> dict[str, Any]:
    """An InferResponse as KServe's client decoded it, and the Content-Type it was asked with."""
    return {
        "sent_as": sent_as,
        "id": response.id,
        "model_name": response.model_name,
        "outputs": {
            o.name: {"datatype": o.datatype, "shape": o.shape, "data": o.as_numpy().tolist()}
            for o in response.outputs
        },
    }


def failure(exc: Exception) -> dict[str, Any]:
    status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
    return {"type": type(exc).__name__, "status": status, "message": str(exc)}


async def run(url: str, rows: list[dict[str, Any]], model: str, missing: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    wire = Recording()
    config = RESTConfig(protocol="v2", timeout=60, transport=wire)
    async with InferenceRESTClient(config) as client, httpx.AsyncClient(timeout=60) as http:
        report["checks"] = {
            "server_live": await client.is_server_live(url),
            "server_ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, model),
            "unknown_model_ready": await client.is_model_ready(url, UNKNOWN_MODEL),
        }
        server = await http.get(f"{url}/v2")
        metadata = await http.get(f"{url}/v2/models/{model}")
        server.raise_for_status()
        metadata.raise_for_status()
        report["server_metadata"], report["metadata"] = server.json(), metadata.json()
        specs = report["metadata"]["inputs"]

        def request(form: str, inputs: list[InferInput], **parameters: Any) -> InferRequest:
            return InferRequest(
                model,
                inputs,
                request_id=f"kserve-{form}",
                parameters=parameters or None,
                request_outputs=[RequestedOutput(name) for name in OUTPUTS],
            )

        requests = {
            "tensor": request("tensor", json_inputs(rows, specs)),
            "binary": request("binary", binary_inputs(rows, specs)),
            "pd": request("pd", json_inputs(rows, specs), content_type="pd"),
        }
        report["answers"] = {}
        for form, infer_request in requests.items():
            answer = await client.infer(url, infer_request, model_name=model)
            report["answers"][form] = decoded(answer, wire.content_types[-1])

        report["errors"] = {}
        without = [s for s in specs if s["name"] != missing]
        bad = {
            "missing_column": (model, request("missing", json_inputs(rows[:2], without))),
            "unknown_model": (UNKNOWN_MODEL, request("unknown", json_inputs(rows[:2], specs))),
        }
        for case, (name, infer_request) in bad.items():
            try:
                await client.infer(url, infer_request, model_name=name)
            except Exception as exc:  # what KServe's client raises is what is reported
                report["errors"][case] = failure(exc)
            else:
                report["errors"][case] = None
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's base URL, http://127.0.0.1:5000")
    parser.add_argument("--rows", type=Path, required=True, help="a JSON array of records")
    parser.add_argument("--model", default="titanic", help="the model's name under /v2/models")
    parser.add_argument("--missing", default="Sex", help="the column the bad request lacks")
    args = parser.parse_args(argv)
    rows = json.loads(args.rows.read_text())
    report = asyncio.run(run(args.url.rstrip("/"), rows, args.model, args.missing))
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
