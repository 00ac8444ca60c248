"""V2 over gRPC under load: a gRPC client of our own (wrk speaks only HTTP/1.1).

The client is grpcio's asyncio API in the bench's process: `connections` channels, each on a
connection of its own, each sending the same ModelInferRequest back to back (raw little-endian
tensors, as Triton's client sends them). It is Python, on the same two cores as the server, so
its figures are a floor of what the server can do (bench/protocols.py runs it).
"""

from __future__ import annotations

import asyncio
import struct
import time

import grpc
import numpy as np
import pandas as pd

from serving.v2.grpc_service import Client
from serving.v2.proto import open_inference_pb2 as pb

MODEL = "titanic"
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel


def infer_request(frame: pd.DataFrame) -> pb.ModelInferRequest:
    """The rows as a ModelInferRequest: one raw tensor per column, typed by pandas (a missing
    number NaN, a missing string empty, which the model reads as missing)."""
    request = pb.ModelInferRequest(model_name=MODEL)
    for name in frame.columns:
        values = frame[name]
        if values.dtype.kind == "i":
            datatype, raw = "INT64", values.to_numpy("<i8").tobytes()
        elif values.dtype.kind == "f":
            datatype, raw = "FP64", values.to_numpy("<f8").tobytes()
        else:
            texts = [b"" if pd.isna(v) else str(v).encode() for v in values]
            datatype = "BYTES"
            raw = b"".join(struct.pack("<I", len(t)) + t for t in texts)
        request.inputs.add(name=name, datatype=datatype, shape=[len(frame)])
        request.raw_input_contents.append(raw)
    return request


def labels(answer: pb.ModelInferResponse) -> list[int]:
    """The `predict` output of an answer."""
    return np.frombuffer(answer.raw_output_contents[0], dtype="<i8").tolist()


async def drive(
    target: str, request: pb.ModelInferRequest, connections: int, seconds: float,
    timeout: float = 10,
) -> dict:  # fmt: skip
    """`connections` clients sending `request` back to back for `seconds`: a summary in the
    shape wrk's (bench/post.lua) has."""
    channels = [grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
                for _ in range(connections)]  # fmt: skip
    latencies: list[float] = []
    failed = {"status": 0, "timeout": 0}
    end = time.perf_counter() + seconds

    async def client(channel: grpc.aio.Channel) -> None:
        infer = Client(channel).ModelInfer
        while time.perf_counter() < end:
            began = time.perf_counter()
            try:
                await infer(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                late = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                failed["timeout" if late else "status"] += 1
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client(channel) for channel in channels))
    duration = time.perf_counter() - began
    for channel in channels:
        await channel.close()
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (0.0, 0.0)
    return {
        "requests": len(latencies) + sum(failed.values()),
        "duration_us": duration * 1e6,
        "p50_us": p50 * 1e6,
        "p99_us": p99 * 1e6,
        "errors": {"connect": 0, "read": 0, "write": 0, **failed},
    }
