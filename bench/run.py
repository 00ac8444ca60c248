"""Benchmark this server against `mlflow models serve`, MLServer and BentoML on one version.

    python -m bench.run [--without mlserver] [--without bentoml] [--seconds 15] [--soak 100000]

`make bench` runs this. It pins the model URI's alias to its version, starts every server of
bench/servers.py in turn on that version, drives each through the load cases of bench/load.py,
soaks this server, judges the goals of bench/goals.py and writes bench/report.py's report
(Markdown, JSON and a PNG under bench/results/, the Markdown on stdout too). It exits 1 if a goal
is missed, the soak fails or a server answers the 100-row request with other labels than ours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.goals import judge
from bench.load import CASES, ServerResult, measure, soak
from bench.report import write
from bench.servers import BIN, PEER_BIN, PEERS, ROOT, servers


def main(argv: list[str] | None = None) -> int:
    """Run the whole bench; 0 if every goal is met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-uri",
        default="models:/titanic@champion",
        help="registered model every server loads (an alias is pinned to its version)",
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration of each case")
    parser.add_argument("--workers", type=int, default=2, help="this server's gunicorn workers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--soak",
        type=int,
        default=100_000,
        help="requests in the soak against this server (0: no soak)",
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=sorted(PEER_BIN),
        default=[],
        help="leave this peer out (repeatable)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install -y wrk)")
    for peer in set(PEERS) - set(args.without):
        if not (PEER_BIN[peer] / peer).exists():
            sys.exit(f"bench: {peer} is not installed (make bench installs .venv-{peer})")

    import mlflow
    from mlflow import MlflowClient

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name, _, alias = args.model_uri.removeprefix("models:/").partition("@")
    version = client.get_model_version_by_alias(name, alias).version if alias else "?"
    pinned = f"models:/{name}/{version}" if alias else args.model_uri

    test = pd.read_csv(ROOT / "data" / "raw" / "test.csv")
    bodies = {1: test.iloc[[0]], 100: test.iloc[:100]}
    results: list[ServerResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        lineup = servers(pinned, args.workers)
        uri = env["MLFLOW_TRACKING_URI"]
        model_dir = mlflow.artifacts.download_artifacts(
            pinned, dst_path=f"{tmp}/model", tracking_uri=uri, registry_uri=uri
        )
        for peer, make_server in PEERS.items():
            if peer not in args.without:
                lineup.append(make_server(Path(model_dir), Path(tmp), os.cpu_count() or 1))
        for server in lineup:
            print(f"bench: {server.name}", flush=True)
            results.append(measure(server, env, bodies, args.seconds, Path(tmp)))
        endurance = None
        if args.soak:
            print(f"bench: soak, {args.soak} requests at 32 connections", flush=True)
            rate = results[0].case(CASES[1].name).req_per_s
            endurance = soak(lineup[0], env, bodies[1], args.soak, rate, Path(tmp))
    ours, *others = results
    targets = judge(results, PEERS)
    disagree = [r.server for r in others if r.kind != "ceiling" and r.labels != ours.labels]
    meta = {
        "model_uri": pinned,
        "version": version,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
    }
    report = write(args.out, results, targets, meta, endurance)
    print("\n" + report)
    print(f"bench: wrote {args.out}/latest.{{md,json,png}}")
    if disagree:
        print(f"bench: these servers answered the 100-row request differently: {disagree}")
    met = all(g.met for g in targets) and (endurance is None or endurance.met) and not disagree
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
