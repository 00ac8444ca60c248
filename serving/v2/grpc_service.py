"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, its messages from
proto/open_inference.proto): ServerLive, ServerReady, ModelReady, ServerMetadata,
ModelMetadata, ModelInfer, answered from the worker's own stores, by the same code as V2 REST.

`add_to_server` registers the service under the protocol's own name (grpcio's generic method
handlers), whatever the package of our messages (see the proto); `Client` calls it the same way.

A ModelInferRequest is turned into the REST request's shape (tensors with their `contents`, or
`raw_input_contents` as the binary tensor data) and goes through serving.v2.infer; the answer
goes back as raw little-endian outputs (`raw_output_contents`, which every V2 client reads). An
ApiError becomes the status of its HTTP code (400: INVALID_ARGUMENT, 404: NOT_FOUND, ...) with
its message; a bug is INTERNAL with no detail (its trace goes to the log). Each call has its
access-log line and its metrics, under the endpoint `grpc:<method>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from serving.errors import ApiError
from serving.metrics import Recorder, show_model
from serving.request_log import log_request, request_id
from serving.stores import Stores
from serving.v2.answers import OUTPUT_TYPES, server_metadata
from serving.v2.infer import infer, metadata, pick_store, ready_model
from serving.v2.proto import open_inference_pb2 as pb
from serving.v2.tensors import BINARY_SIZE

log = logging.getLogger("serving.v2.grpc_service")

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
CONTENTS = {  # the InferTensorContents field of each datatype
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip
RAW_OUTPUTS = {"INT64": "<i8", "FP64": "<f8"}
Reply = TypeVar("Reply")

SERVICE = "inference.GRPCInferenceService"  # the protocol's name, which clients call
METHODS = {  # each RPC's request and answer messages
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}


def add_to_server(service: InferenceService, server: grpc.Server) -> None:
    """Serve `service`'s RPCs on `server` as `inference.GRPCInferenceService`. Each handler gets
    the request's bytes and decodes them itself (`decoding`), so that bytes which are no such
    message are the client's error, not grpcio's INTERNAL."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            decoding(service, name, request), response_serializer=answer.SerializeToString
        )
        for name, (request, answer) in METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def decoding(service: InferenceService, method: str, message: Any) -> Callable[[bytes, Any], Any]:
    """`service.<method>` on the request decoded from its bytes; bytes that are no `message` are
    an INVALID_ARGUMENT that says so (with the call's log line and metrics)."""
    handle = getattr(service, method)

    def call(raw: bytes, context: Any) -> Any:
        try:
            request = message.FromString(raw)
        except DecodeError:
            return service.refuse(method, context, f"the request is not a valid {method} message "
                                  f"({message.DESCRIPTOR.name})")  # fmt: skip
        return handle(request, context)

    return call


class Client:
    """The service's RPCs on a channel, as attributes: `Client(channel).ModelInfer(request)`
    (for the tests and the bench; any V2 client works as well)."""

    def __init__(self, channel: grpc.Channel | grpc.aio.Channel):
        for name, (request, answer) in METHODS.items():
            setattr(self, name, channel.unary_unary(
                f"/{SERVICE}/{name}", request_serializer=request.SerializeToString,
                response_deserializer=answer.FromString,
            ))  # fmt: skip


def parameter(value: pb.InferParameter) -> Any:
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind is not None else None


def as_rest_request(request: pb.ModelInferRequest) -> tuple[dict[str, Any], bytes]:
    """A ModelInferRequest as the REST infer request (JSON shape) and its binary tensor data."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise ApiError("invalid_v2_request", f"{len(raw)} raw_input_contents for "
                       f"{len(request.inputs)} inputs", status=400)  # fmt: skip
    inputs = []
    for position, tensor in enumerate(request.inputs):
        parameters = {key: parameter(value) for key, value in tensor.parameters.items()}
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                                 "shape": list(tensor.shape), "parameters": parameters}  # fmt: skip
        if raw:
            parameters[BINARY_SIZE] = len(raw[position])
        else:
            values = list(getattr(tensor.contents, CONTENTS.get(tensor.datatype, "bytes_contents")))
            if tensor.datatype == "BYTES":
                try:
                    values = [v.decode("utf-8") for v in values]
                except UnicodeDecodeError:
                    raise ApiError("invalid_v2_request", f"input {tensor.name[:64]!r}: an "
                                   "element is not UTF-8 text", status=400) from None  # fmt: skip
            entry["data"] = values
        inputs.append(entry)
    body: dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = {k: parameter(v) for k, v in request.parameters.items()}
    if request.outputs:
        body["outputs"] = [{"name": output.name} for output in request.outputs]
    return body, b"".join(raw)


def as_grpc_answer(answer: dict[str, Any]) -> pb.ModelInferResponse:
    """The REST infer answer as a ModelInferResponse with raw outputs."""
    response = pb.ModelInferResponse(
        model_name=answer["model_name"], model_version=answer["model_version"],
        id=answer.get("id", ""),
    )  # fmt: skip
    for output in answer["outputs"]:
        response.outputs.add(name=output["name"], datatype=output["datatype"],
                             shape=output["shape"])  # fmt: skip
        dtype = RAW_OUTPUTS[OUTPUT_TYPES[output["name"]]]
        response.raw_output_contents.append(np.asarray(output["data"], dtype=dtype).tobytes())
    return response


class InferenceService:
    def __init__(self, stores: Stores, recorder: Recorder, max_rows: int):
        self.stores, self.recorder, self.max_rows = stores, recorder, max_rows

    def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return self._call("ServerLive", context, lambda: pb.ServerLiveResponse(live=True))

    def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        def ready() -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=self.stores.default.ensure() is not None)

        return self._call("ServerReady", context, ready)

    def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        def ready() -> pb.ModelReadyResponse:
            try:
                store = pick_store(self.stores, request.name, request.version or None)
            except ApiError:  # another name, or a version not loaded: not ready
                return pb.ModelReadyResponse(ready=False)
            return pb.ModelReadyResponse(ready=store.ensure() is not None)

        return self._call("ModelReady", context, ready)

    def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        shown = server_metadata()
        return self._call("ServerMetadata", context, lambda: pb.ServerMetadataResponse(**shown))

    def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        def answer() -> pb.ModelMetadataResponse:
            store = pick_store(self.stores, request.name, request.version or None)
            shown = metadata(self.stores, store)
            tensors = {
                key: [pb.ModelMetadataResponse.TensorMetadata(
                    name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in shown[key]]
                for key in ("inputs", "outputs")
            }  # fmt: skip
            return pb.ModelMetadataResponse(name=shown["name"], versions=shown["versions"],
                                            platform=shown["platform"], **tensors)  # fmt: skip

        return self._call("ModelMetadata", context, answer)

    def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        rows: list[int] = []

        def answer() -> pb.ModelInferResponse:
            store = pick_store(self.stores, request.model_name, request.model_version or None)
            model = ready_model(store)
            show_model(model.info)
            began = time.perf_counter()
            body, binary = as_rest_request(request)
            decoded = time.perf_counter()
            done = infer(model, body, self.max_rows, binary)
            if done.unknown:
                self.recorder.out_of_domain("grpc:ModelInfer", done.unknown)
            encoding = time.perf_counter()
            response = as_grpc_answer(done.answer)
            stages = (None, decoded - began, *done.stages, time.perf_counter() - encoding)
            self.recorder.stages("grpc:ModelInfer", done.version, stages)
            rows[:] = done.labels
            return response

        return self._call("ModelInfer", context, answer, rows)

    def refuse(self, method: str, context: Any, message: str) -> Any:
        """Abort the call with INVALID_ARGUMENT and `message`, logged and counted as a 400."""

        def refused() -> Any:
            raise ApiError("invalid_grpc_message", message)

        return self._call(method, context, refused)

    def _call(
        self, method: str, context: Any, answer: Callable[[], Reply], rows: list[int] | None = None
    ) -> Reply:
        """`answer()`, with the call's status, log line and metrics; an error aborts the call."""
        started = time.perf_counter()
        status, error, code = 200, None, grpc.StatusCode.OK
        try:
            return answer()
        except ApiError as exc:
            status, error = exc.status, exc.code
            code = STATUS_CODES.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT)
            context.abort(code, exc.message)
            raise  # unreachable: abort raises
        except Exception:
            log.exception("gRPC %s failed", method)
            status, error = 500, "internal"
            context.abort(grpc.StatusCode.INTERNAL, "the server failed; see its log")
            raise
        finally:
            endpoint = f"grpc:{method}"
            model = self.stores.default.current
            version = model.info.version if model is not None else None
            log_request(method="gRPC", path=endpoint, status=status, started=started,
                        request_id=request_id(""), model_version=version,
                        rows=len(rows) if rows else None, error=error)  # fmt: skip
            self.recorder.record(endpoint, "gRPC", status, time.perf_counter() - started,
                                 len(rows) if rows else None, rows or None)  # fmt: skip
