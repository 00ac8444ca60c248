"""The V2 gRPC service (serving.v2.grpc_service), in-process over a real gRPC channel: the
committed messages are what grpcio-tools generates from the proto, they live beside Triton's
client's in one process, and bad calls get the status of their error with a message naming the
input, never INTERNAL. (tests/e2e/test_v2_clients.py drives a real server with Triton's client.)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from serving.config import Settings
from serving.metrics import Recorder
from serving.server.grpc_listener import start_grpc
from serving.stores import Stores
from serving.v2.grpc_service import Client, InferenceService, add_to_server
from serving.v2.proto import open_inference_pb2 as pb
from training.config import REPO_ROOT

PROTO = Path("serving/v2/proto/open_inference.proto")
GENERATED = ("open_inference_pb2.py", "open_inference_pb2.pyi")


def test_the_committed_stubs_are_what_the_proto_generates(tmp_path):
    (tmp_path / PROTO.parent).mkdir(parents=True)
    shutil.copy(REPO_ROOT / PROTO, tmp_path / PROTO)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", "--python_out=.", "--pyi_out=.",
         str(PROTO)],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    for name in GENERATED:
        fresh = (tmp_path / PROTO.parent / name).read_text()
        assert fresh == (REPO_ROOT / PROTO.parent / name).read_text(), f"run make v2-stubs: {name}"


@pytest.fixture(scope="module")
def channel(store):
    server = grpc.server(ThreadPoolExecutor(2))
    add_to_server(InferenceService(Stores([store]), Recorder(), max_rows=100), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(0)


@pytest.fixture(scope="module")
def stub(channel):
    return Client(channel)


def one_row(**changes) -> pb.ModelInferRequest:
    """One passenger as typed contents (not raw bytes): Pclass, Sex, Age."""
    request = pb.ModelInferRequest(model_name="titanic", id="r1")
    pclass = request.inputs.add(name="Pclass", datatype="INT64", shape=[1])
    pclass.contents.int64_contents.append(3)
    sex = request.inputs.add(name="Sex", datatype="BYTES", shape=[1])
    sex.contents.bytes_contents.append(b"female")
    age = request.inputs.add(name="Age", datatype="FP64", shape=[1])
    age.contents.fp64_contents.append(changes.pop("age", 30.0))
    request.outputs.add(name="predict")
    request.outputs.add(name="probability")
    for key, value in changes.items():
        setattr(request, key, value)
    return request


def test_typed_contents_get_raw_outputs(stub, store):
    answer = stub.ModelInfer(one_row())
    assert answer.id == "r1" and answer.model_version == store.current.info.version
    assert [o.name for o in answer.outputs] == ["predict", "probability"]
    label = np.frombuffer(answer.raw_output_contents[0], dtype="<i8").tolist()
    probability = np.frombuffer(answer.raw_output_contents[1], dtype="<f8").tolist()
    expected = store.current.predict(
        [{**{c.name: None for c in store.current.spec.columns},
          "Pclass": 3, "Sex": "female", "Age": 30.0}], proba=True,
    )  # fmt: skip
    assert (label, probability) == expected


def test_a_nan_age_is_a_missing_age(stub):
    assert stub.ModelInfer(one_row(age=float("nan"))).outputs[0].name == "predict"


@pytest.mark.parametrize(
    ("request_", "code", "named"),
    [
        (one_row(model_name="other"), grpc.StatusCode.NOT_FOUND, "titanic"),
        (one_row(model_version="999"), grpc.StatusCode.NOT_FOUND, "999"),
        (pb.ModelInferRequest(model_name="titanic"), grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
    ],
)
def test_bad_calls_get_their_status_and_a_message(stub, request_, code, named):
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(request_)
    assert error.value.code() == code and named in error.value.details()


def test_a_wrong_datatype_or_a_missing_column_names_it(stub):
    wrong = one_row()
    wrong.inputs[2].datatype = "BYTES"
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(wrong)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'Age'" in error.value.details()
    missing = one_row()
    del missing.inputs[1]
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(missing)
    assert "'Sex'" in error.value.details()
    latin = one_row()
    latin.inputs[1].contents.bytes_contents[0] = "Zoë".encode("latin-1")
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(latin)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'Sex'" in error.value.details() and "UTF-8" in error.value.details()
    raw = one_row()
    raw.raw_input_contents.append(b"\x00")  # one raw entry for three inputs
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(raw)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_our_messages_and_triton_clients_live_in_one_process():
    """Two definitions of the protocol's `inference` package could not: ours has its own."""
    import tritonclient.grpc  # defines inference.* in the default descriptor pool

    assert pb.DESCRIPTOR.package == "titanic_serving.v2"
    assert tritonclient.grpc.service_pb2.DESCRIPTOR.package == "inference"


def test_health_and_metadata(stub, store):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="titanic")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="titanic", version="999")).ready
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="titanic"))
    assert [i.name for i in metadata.inputs] == store.current.spec.names
    assert [(o.name, o.datatype) for o in metadata.outputs] == [
        ("predict", "INT64"), ("probability", "FP64"),
    ]  # fmt: skip
    assert list(metadata.inputs[0].shape) == [-1]


def test_a_call_past_max_concurrency_is_refused_at_once(store, monkeypatch):
    """With --max-concurrency 1, a second call while one is in progress gets RESOURCE_EXHAUSTED
    (not a place in an unbounded queue); once the first is done, calls are served again."""
    entered, release = threading.Event(), threading.Event()
    live = InferenceService.ServerLive

    def held(self, request, context):  # the first call stays in progress until released
        if not release.is_set():
            entered.set()
            release.wait(30)
        return live(self, request, context)

    monkeypatch.setattr(InferenceService, "ServerLive", held)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.from_env({}, grpc_port=port, max_concurrency=1, threads=2)
    server = start_grpc(settings, Stores([store]), Recorder())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        client = Client(channel)
        first = ThreadPoolExecutor(1).submit(client.ServerLive, pb.ServerLiveRequest(), timeout=30)
        assert entered.wait(10)
        with pytest.raises(grpc.RpcError) as refused:
            client.ServerLive(pb.ServerLiveRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        release.set()
        assert first.result(10).live
        assert client.ServerLive(pb.ServerLiveRequest(), timeout=10).live
    finally:
        release.set()
        channel.close()
        server.stop(0)


@pytest.mark.parametrize("method", ["ModelInfer", "ModelMetadata"])
def test_bytes_that_are_no_message_are_invalid_argument_not_internal(channel, method, caplog):
    call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
    with pytest.raises(grpc.RpcError) as error:
        call(b"\xff\xff\xff\xff not a protobuf")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid" in error.value.details() and method in error.value.details()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
