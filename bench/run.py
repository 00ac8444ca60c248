"""Benchmark this server against the gunicorn front it had before, the front matrix, `mlflow
models serve`, MLServer and BentoML on one version.

    python -m bench.run [--without mlserver] [--without bentoml] [--seconds 15]
                        [--front-seconds 8] [--stalled 1000] [--soak 100000] [--only-v2]

`make bench` runs this. It pins the model URI's alias to its version, bakes that version into a
directory (`python -m serving.bake`, for the front matrix); starts every server of
bench/servers.py (the gunicorn front among them: bench/gunicorn_reference.py) in turn on that
version and drives each through the load cases of bench/load.py (and this server with
`--shadow` through the 32-connection one, alternated with the same server without the flag:
bench/shadow.py), then this server's /predict,
V2 REST and V2 gRPC in turn on one process (bench/protocols.py); runs the front matrix of
bench/fronts.py through its shorter cases; measures the lane's own cost with no HTTP
(bench/lane_cost.py); runs the slow-client case (bench/stall.py) against
this server and the gunicorn front; soaks this server; judges the goals (bench/verdict.py) and
writes bench/report.py's report (Markdown, JSON and a PNG under bench/results/, the Markdown on
stdout too). It exits 1 if a judged goal is missed, the soak fails or a server with a model
answers the 100-row request with other labels than ours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.fronts import NOOP, matrix
from bench.lane_cost import measure_lane
from bench.load import CASES, FRONT_CASES, ServerResult, Soak, measure, soak
from bench.noop_pyfunc import noop_copy
from bench.protocols import measure_protocols
from bench.report import write
from bench.servers import BIN, PEER_BIN, PEERS, ROOT, contract_body, servers, with_args
from bench.shadow import bench_aliases, shadowed, side_by_side
from bench.slow import SlowClients, slow_clients
from bench.stall import ensure_fd_limit
from bench.verdict import all_met, judge

STALL_TIMEOUT = 60  # s: this server's header and body timeouts in the slow-client case


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-uri",
        default="models:/titanic@champion",
        help="registered model every server loads (an alias is pinned to its version)",
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration of each case")
    parser.add_argument(
        "--front-seconds", type=int, default=8, help="wrk duration of each front matrix case"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="workers of this server, the gunicorn front and each front of the matrix",
    )
    parser.add_argument(
        "--stalled", type=int, default=1000, help="stalled connections in the slow-client case"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--soak",
        type=int,
        default=100_000,
        help="requests in the soak against this server (0: no soak)",
    )
    parser.add_argument(
        "--only-v2",
        action="store_true",
        help="measure only this server: /predict, V2 REST and V2 gRPC (a quick check)",
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=sorted(PEER_BIN),
        default=[],
        help="leave this peer out (repeatable)",
    )
    return parser.parse_args(argv)


def bake(model_uri: str, env: dict[str, str], output: Path) -> Path:
    """`model_uri`'s version baked into `output` by `python -m serving.bake`."""
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "serving.bake",
            "--model-uri",
            model_uri,
            "--output",
            str(output),
        ],
        env={**env, "TQDM_DISABLE": "1"},
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return output


def plain_flavor(model_uri: str, env: dict[str, str], output: Path) -> Path:
    """A copy of the model whose pyfunc is the plain scikit-learn pipeline: what `mlflow models
    serve` ran before the registered model's own flavor ran the fast path."""
    command = [str(BIN / "python"), "-m", "training.flavor", "plain", model_uri, str(output)]
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return output


def registered_version(model_uri: str, client: Any) -> tuple[str, str]:
    """The registered model's name and version a `models:/name@alias` or `models:/name/version`
    URI names (an alias read from the registry now: the run stays on that version)."""
    path = model_uri.removeprefix("models:/")
    name, at, alias = path.partition("@")
    if at:
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = path.partition("/")
    if not name or not version.isdigit():
        sys.exit(f"bench: {model_uri!r} names no registered version (models:/NAME@ALIAS or /N)")
    return name, version


def main(argv: list[str] | None = None) -> int:
    """Run the whole bench; 0 if every judged goal is met, else 1."""
    args = parse(argv)
    began, load_before = time.monotonic(), os.getloadavg()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install -y wrk)")
    for peer in set() if args.only_v2 else set(PEERS) - set(args.without):
        if not (PEER_BIN[peer] / peer).exists():
            sys.exit(f"bench: {peer} is not installed (make bench installs .venv-{peer})")
    ensure_fd_limit(args.stalled + 1024)  # before any server starts: they inherit it

    import mlflow
    from mlflow import MlflowClient

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name, version = registered_version(args.model_uri, client)
    pinned = f"models:/{name}/{version}"

    test = pd.read_csv(ROOT / "data" / "raw" / "test.csv")
    bodies = {1: test.iloc[[0]], 100: test.iloc[:100]}
    results: list[ServerResult] = []
    slow: list[SlowClients] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        uri = env["MLFLOW_TRACKING_URI"]
        model_dir = mlflow.artifacts.download_artifacts(
            pinned, dst_path=f"{tmp}/model", tracking_uri=uri, registry_uri=uri
        )
        if args.only_v2:
            lineup = servers(pinned, args.workers)[:1]
        else:
            baked = bake(pinned, env, work / "baked")
            plain = plain_flavor(pinned, env, work / "plain")
            lineup = servers(pinned, args.workers, plain, noop_copy(plain, work / "noop"))
            for peer, make_server in PEERS.items():
                if peer not in args.without:
                    lineup.append(make_server(Path(model_dir), work, os.cpu_count() or 1))
        for i, server in enumerate(lineup):
            print(f"bench: {server.name}", flush=True)
            cases = CASES[:2] if server.kind == "mlflow-noop" else CASES  # one row: the ceiling
            results.append(measure(server, env, bodies, args.seconds, work, cases))
            if i == 0 and not args.only_v2:  # with --shadow and without, side by side
                pair = [shadowed(server, name, args.workers, shadow=s) for s in (False, True)]
                print(f"bench: {pair[1].name}, beside the same without it", flush=True)
                with bench_aliases(client, name, version):
                    results += side_by_side(pair, env, bodies, args.front_seconds, work)
        print("bench: this server's /predict, V2 REST and V2 gRPC in turn", flush=True)
        results += measure_protocols(lineup[0], env, bodies, args.seconds, work)
        if args.only_v2:
            return report_and_verdict(
                args, results, [], None, meta_of(args, pinned, version, began, load_before)
            )
        print(f"bench: front matrix, {args.front_seconds} s per case", flush=True)
        for server in matrix(baked, work, args.workers):
            cases = FRONT_CASES[server.app]
            results.append(measure(server, env, bodies, args.front_seconds, work, cases))
        print("bench: the lane's own cost, with no HTTP", flush=True)
        raw = {rows: contract_body(frame) for rows, frame in bodies.items()}
        lane = measure_lane(BIN / "python", baked, raw, work, ROOT)
        ours, reference = lineup[0], lineup[1]
        print(f"bench: slow clients, {args.stalled:,} stalled connections", flush=True)
        timeouts = ("--header-timeout", str(STALL_TIMEOUT), "--body-timeout", str(STALL_TIMEOUT))
        for server in (with_args(ours, *timeouts), reference):
            slow.append(
                slow_clients(server, env, bodies[1], args.seconds, work, stalled=args.stalled)
            )
        endurance = None
        if args.soak:
            print(f"bench: soak, {args.soak} requests at 32 connections", flush=True)
            rate = results[0].case(CASES[1].name).req_per_s
            endurance = soak(ours, env, bodies[1], args.soak, rate, work)
    meta = {**meta_of(args, pinned, version, began, load_before), "lane_cost_us": lane}
    return report_and_verdict(args, results, slow, endurance, meta)


def meta_of(
    args: argparse.Namespace, pinned: str, version: str, began: float, load_before: tuple
) -> dict:
    """What the report says of the run itself."""
    return {
        "model_uri": pinned,
        "version": version,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": " -> ".join(
            "/".join(f"{v:.2f}" for v in load) for load in (load_before, os.getloadavg())
        ),
        "seconds": args.seconds,
        "front_seconds": args.front_seconds,
        "stall_timeouts_s": STALL_TIMEOUT,
        "elapsed_s": round(time.monotonic() - began),
    }


def report_and_verdict(
    args: argparse.Namespace,
    results: list[ServerResult],
    slow: list[SlowClients],
    endurance: Soak | None,
    meta: dict,
) -> int:
    """Judge the goals, write the report; 0 if every judged goal is met and every server with
    a model answered the 100-row request as this server did, else 1."""
    targets = judge(results, PEERS, slow, meta.get("lane_cost_us"), meta["cpus"])
    disagree = [r.server for r in results[1:] if r.app != NOOP and r.labels != results[0].labels]
    report = write(args.out, results, targets, meta, endurance, slow)
    print("\n" + report)
    print(f"bench: wrote {args.out}/latest.{{md,json,png}} in {meta['elapsed_s'] / 60:.1f} min")
    if disagree:
        print(f"bench: these servers answered the 100-row request differently: {disagree}")
    met = all_met(targets) and (endurance is None or endurance.met) and not disagree
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
