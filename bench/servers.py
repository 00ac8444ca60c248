"""The servers the bench runs, each as a `Server`: its command, ready and predict paths, its
request body for a set of rows and how to read labels back from its answer.

This server (`python -m serving`: Granian, RSGI, the model agent; also through its V2 REST
endpoint, `v2_rest`, and V2 gRPC: bench/protocols.py), the gunicorn front it had
before the front changed (bench/gunicorn_reference.py: gunicorn's master, the model agent and
sync workers serving the same app on the same model), `mlflow models serve` (1 and 2 workers;
and on a model that does nothing, bench/noop_pyfunc.py: MLflow's own ceiling), and two peers
with adaptive batching and one worker per core, each run from a venv of its own (.venv-mlserver,
.venv-bentoml, pinned by bench/*.lock) on the version's downloaded model directory: MLServer 1.7
(its MLflow runtime) and BentoML 1.4 (bench/bentoml_service.py). The front matrix (the HTTP
servers this one could run on, each with a no-op app and with this server's app) is
bench/fronts.py. Every server gets the same rows in its own request format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PEER_BIN = {"mlserver": ROOT / ".venv-mlserver" / "bin", "bentoml": ROOT / ".venv-bentoml" / "bin"}


NOOP, MODEL = "no-op", "model"  # what a server answers with: nothing (a ceiling), or the model


def contract_body(frame: pd.DataFrame) -> bytes:
    """The article's /predict body: pandas column-oriented JSON with string row keys."""
    return frame.to_json(orient="columns").encode()


@dataclass(frozen=True)
class Server:
    """One server to benchmark: how to start it on a port, and how to talk to it. The paths and
    the body default to this server's own contract (the no-op apps mimic it)."""

    name: str
    kind: str  # "ours", "reference", "mlflow", "mlserver", "bentoml" or "front" (the matrix)
    command: Callable[[int], list[str]]
    labels: Callable[[Any], list[int]]  # the predicted labels in a decoded answer
    ready_path: str = "/ready"
    predict_path: str = "/predict"
    body: Callable[[pd.DataFrame], bytes] = contract_body
    env: Callable[[int], dict[str, str]] = lambda port: {}  # what the port needs, besides argv
    front: str = ""  # in the front matrix: the HTTP server and interface ("Granian RSGI")
    app: str = ""  # NOOP for a ceiling (the front matrix, MLflow's no-op); MODEL in the matrix


def with_args(server: Server, *args: str) -> Server:
    """`server` with `args` added to its command line."""
    command = server.command
    return replace(server, command=lambda port: [*command(port), *args])


def prediction(answer: Any) -> list[int]:
    """The labels in this server's /predict answer."""
    return answer["prediction"]


def listen(port: int) -> list[str]:
    """The --host/--port arguments every server here takes: loopback only."""
    return ["--host", "127.0.0.1", "--port", str(port)]


def venv_command(program: str, *args: str, workers: int) -> Callable[[int], list[str]]:
    """The command line of the venv's `program` with `args`, on loopback at the port it is given,
    with `workers` workers."""
    return lambda port: [str(BIN / program), *args, *listen(port), "--workers", str(workers)]


def mlflow_body(frame: pd.DataFrame) -> bytes:
    """The rows as `mlflow models serve` takes them: a `dataframe_split` object."""
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split"))}).encode()


def v2_body(frame: pd.DataFrame) -> bytes:
    """The rows as an Open Inference (V2) request that MLServer decodes back into a DataFrame:
    one input per column, nulls as JSON null (what this server's V2 REST is sent too)."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        kind = {"i": "INT64", "f": "FP64"}.get(values.dtype.kind, "BYTES")
        data = values.tolist() if kind == "INT64" else [None if pd.isna(v) else v for v in values]
        spec = {"name": column, "shape": [len(frame)], "datatype": kind, "data": data}
        if kind == "BYTES":
            spec["parameters"] = {"content_type": "str"}
        inputs.append(spec)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def v2_labels(answer: dict) -> list[int]:
    """The labels in an Open Inference (V2) answer: its first output's data."""
    return [int(v) for v in answer["outputs"][0]["data"]]


def v2_rest(ours: Server) -> Server:
    """This server driven through its V2 REST infer endpoint, with MLServer's request body."""
    return replace(
        ours,
        name=ours.name.replace("this server", "this server, V2 REST"),
        kind="ours-v2-rest",
        predict_path="/v2/models/titanic/infer",
        body=v2_body,
        labels=v2_labels,
    )


def records_body(frame: pd.DataFrame) -> bytes:
    """The rows as bench/bentoml_service.py takes them: a list of records, nulls as null."""
    return json.dumps({"rows": json.loads(frame.to_json(orient="records"))}).encode()


def mlserver(model_dir: Path, workdir: Path, workers: int) -> Server:
    """MLServer serving `model_dir` with its MLflow runtime and adaptive batching (up to 32
    requests or 20 ms: the best of the settings tried here), `workers` inference processes."""
    root = workdir / "mlserver"
    (root / "titanic").mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(
        json.dumps({"debug": False, "host": "127.0.0.1", "parallel_workers": workers})
    )
    (root / "titanic" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "titanic",
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "max_batch_size": 32,
                "max_batch_time": 0.02,
                "parameters": {"uri": str(model_dir)},
            }
        )
    )
    return Server(
        name=f"MLServer 1.7 ({workers} workers, batching)",
        kind="mlserver",
        command=lambda port: [str(PEER_BIN["mlserver"] / "mlserver"), "start", str(root)],
        ready_path="/v2/models/titanic/ready",
        predict_path="/v2/models/titanic/infer",
        body=v2_body,
        labels=v2_labels,
        env=lambda port: {
            "MLSERVER_HTTP_PORT": str(port),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
        },
    )


def bentoml(model_dir: Path, workdir: Path, workers: int) -> Server:
    """BentoML serving `model_dir` through MLflow's pyfunc with adaptive batching."""
    return Server(
        name=f"BentoML 1.4 ({workers} workers, batching)",
        kind="bentoml",
        command=lambda port: [
            str(PEER_BIN["bentoml"] / "bentoml"),
            "serve",
            "bench.bentoml_service:Titanic",
            *listen(port),
        ],
        ready_path="/readyz",
        predict_path="/predict",
        body=records_body,
        labels=lambda answer: [int(v) for v in answer],
        env=lambda port: {
            "BENCH_MODEL_DIR": str(model_dir),
            "BENCH_WORKERS": str(workers),
            "BENTOML_HOME": str(workdir / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        },
    )


MLFLOW_KINDS = {"fast flavor": "mlflow", "plain sklearn flavor": "mlflow-plain",
                "no-op model": "mlflow-noop"}  # fmt: skip


def mlflow_serve(model: str, workers: int, flavor: str) -> Server:
    """`mlflow models serve` on `model` (a URI or a model directory), in this venv; `flavor` is
    one of MLFLOW_KINDS."""
    return Server(
        name=f"mlflow models serve, {flavor} ({workers} worker{'s' if workers > 1 else ''})",
        kind=MLFLOW_KINDS[flavor],
        app=NOOP if flavor == "no-op model" else "",
        command=venv_command(
            "mlflow", "models", "serve", "-m", model, "--env-manager", "local", workers=workers
        ),
        ready_path="/ping",
        predict_path="/invocations",
        body=mlflow_body,
        labels=lambda answer: [int(v) for v in answer["predictions"]],
    )


def servers(
    model_uri: str, workers: int, plain_dir: Path | None = None, noop_dir: Path | None = None
) -> list[Server]:
    """This server first (every other is compared with it), then the gunicorn front it had
    before (bench/gunicorn_reference.py), then `mlflow models serve` with 1 and 2 workers on the
    registered model's own flavor (the fast path) and, given `plain_dir` (a copy of the model
    whose pyfunc is the plain scikit-learn pipeline: `python -m training.flavor plain`), on
    that, and given `noop_dir` (a copy whose pyfunc does nothing: bench/noop_pyfunc.py), on
    that with 2 workers; `workers` is ours and the reference's."""
    ours = Server(
        name=f"this server ({workers} workers)",
        kind="ours",
        command=venv_command("python", "-m", "serving", "--model-uri", model_uri, workers=workers),
        labels=prediction,
    )
    reference = Server(
        name=f"gunicorn front (the server before the front change: {workers} sync workers, "
        "same app, model and agent)",
        kind="reference",
        command=venv_command(
            "python", "-m", "bench.gunicorn_reference", "--model-uri", model_uri, workers=workers
        ),
        labels=prediction,
    )
    theirs = [mlflow_serve(model_uri, n, "fast flavor") for n in (1, 2)]
    if plain_dir is not None:
        theirs += [mlflow_serve(str(plain_dir), n, "plain sklearn flavor") for n in (1, 2)]
    if noop_dir is not None:
        theirs.append(mlflow_serve(str(noop_dir), 2, "no-op model"))
    return [ours, reference, *theirs]


PEERS: dict[str, Callable[[Path, Path, int], Server]] = {"mlserver": mlserver, "bentoml": bentoml}
"""The peers by name, each made from (model directory, work directory, workers)."""
