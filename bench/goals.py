"""The goals a run is judged by: ratios of this server's figures to its peers', all from one run.

Against the gunicorn front the server had before (bench/gunicorn_reference.py: the same app,
model and agent under 2 gunicorn sync workers; the front's goals): 3x its requests per second
at 32 connections with a p99 of at most 10 ms and no errors, 2x its rows per second at 100
rows, a p50 at one connection no worse than its own (within P50_MARGIN, for noise), a cold
start no slower and no more memory (RSS and PSS of all processes); with 1,000 stalled clients a
p99 of at most 20 ms and no errors while all 1,000 stay open. Shown beside them, not judged:
the share of the stack's no-op ceiling (Granian RSGI) this server reaches, how the gunicorn
front fares with the stalled clients (it is expected to fail: its two sync workers block on
them), and the bound on the two rate goals: what the lane may cost per request for 3x (and 2x
the rows) given both fronts' no-op rows, beside what it costs with no HTTP at all
(bench/lane_cost.py).

Against `mlflow models serve` on the plain scikit-learn flavor (what its users had before the
registered model's pyfunc ran the fast path; its best variant): 20x the requests per second and
1/20 of the p99 at 32 connections, 10x the rows per second at 100 rows, 1/5 of the p50 at one
connection, a cold start no slower and no more memory. `mlflow models serve` on the registered
model's own (fast) flavor: a p50 of at most 5 ms at one connection and 10x the plain flavor's
requests per second at 32 connections; this server ahead of it on every load case. Against a
batching peer (MLServer, BentoML, on the same fast flavor): ahead on every load case.

This server's V2 endpoints against its own /predict, all three measured in turn on one process
(bench/protocols.py): V2 REST answers one row at no more cost
(its requests per second at 32 connections at least 1 - V2_MARGIN of /predict's, no errors;
its p50 at one connection within V2_MARGIN); V2 gRPC's figures are shown beside them, not
judged (its load comes from a Python client on the same cores: bench/grpc_load.py).
With `--shadow` (bench/shadow.py), against itself without it: 90% of its rate and a p99 within
+10% at 32 connections.

The goals themselves: bench/peer_goals.py against the peers (`mlflow models serve` on either
flavor, the batching peers), bench/own_goals.py of this server's own cases (the front's, the
slow-client case's, V2's, the shadow's); bench/verdict.py judges a run by all of them. This
module holds what they share: the thresholds, the `Goal` and the helpers that build one.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.fronts import CEILING, NOOP
from bench.load import ServerResult

P50_MARGIN = 0.10  # the p50 at one connection may be this much above the reference's: wrk's noise
P99_MS = 10.0  # the p99 at 32 connections, at most
SLOW_P99_MS = 20.0  # the p99 at 32 connections with the stalled clients, at most
FAST_P50_MS = 5.0  # mlflow models serve on the fast flavor: its one-row p50, at most
V2_MARGIN = 0.10  # V2 REST's one-row figures may be this much off /predict's: wrk's noise
V2_KINDS = ("ours-v2-baseline", "ours-v2-rest", "ours-v2-grpc")
SHADOW_RATE = 0.90  # with --shadow: at least this share of the rate without it, 1 row, 32 conns
SHADOW_P99 = 0.10  # with --shadow: a p99 at most this much above the one without it


@dataclass
class Goal:
    """One goal: our figure and the peer's, their ratio (above 1: ours is better), met or not
    (None: shown beside the goals, not judged)."""

    name: str
    peer: str
    ours: float
    baseline: float
    ratio: float
    target: str
    met: bool | None


def ratio(better: float, worse: float) -> float:
    """`better` / `worse`, infinite when `worse` is 0 (nothing to divide by)."""
    return better / worse if worse else float("inf")


def best(peers: list[ServerResult], case: str, attr: str, lowest: bool = False) -> float:
    """The best of the peers' `attr` in `case`: the highest, or the lowest if `lowest`."""
    values = [getattr(r.case(case), attr) for r in peers]
    return min(values) if lowest else max(values)


def goal(
    name: str, peer: str, ours: float, theirs: float, target: str, met: bool | None, lower: bool
) -> Goal:
    """A goal whose ratio is ours over theirs, or theirs over ours if `lower` is better."""
    over = ratio(theirs, ours) if lower else ratio(ours, theirs)
    return Goal(name, peer, ours, theirs, over, target, met)


def noop_of(results: list[ServerResult], front: str) -> ServerResult | None:
    """The no-op app on `front` among `results` (the front matrix), if it ran."""
    return next((r for r in results if r.front == front and r.app == NOOP), None)


def ceiling_of(results: list[ServerResult]) -> ServerResult | None:
    """The stack's ceiling among `results`: the no-op app on Granian RSGI, if it ran."""
    return noop_of(results, CEILING)
